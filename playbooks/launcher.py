"""How the playbook service starts an action's run: a Launcher (Prefect's is api/launcher.py;
tests swap in their own)."""

from dataclasses import dataclass
from typing import Any, Protocol


class LaunchError(Exception):
    """Prefect could not be asked to run the action. `maybe_started`: the request may have
    reached Prefect (it timed out), so a flow run may exist after all."""

    def __init__(self, message: str, *, maybe_started: bool = False) -> None:
        super().__init__(message)
        self.maybe_started = maybe_started


@dataclass(frozen=True)
class Launched:
    flow_run_id: str
    url: str | None


class Launcher(Protocol):
    async def launch(
        self, deployment: str, parameters: dict[str, Any], *, key: str, tags: list[str]
    ) -> Launched: ...
