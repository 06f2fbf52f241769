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


def run_name(
    action_type: str,
    incident_id: int | None,
    action_id: int,
    *,
    dry_run: bool = False,
    rollback: bool = False,
) -> str:
    """What a flow run is called in the Prefect UI: `rerun_dbt · incident 12 · action 34`.
    For a rollback `action_id` is the action it undoes (`rollback of action 34`); without an
    incident (a run started from the Prefect UI knows only its parameters) that part is left
    out."""
    parts = [action_type]
    if incident_id is not None:
        parts.append(f"incident {incident_id}")
    if rollback:
        parts.append(f"rollback of action {action_id}")
    elif dry_run:
        parts.append(f"dry run of action {action_id}")
    else:
        parts.append(f"action {action_id}")
    return " · ".join(parts)


class Launcher(Protocol):
    async def launch(
        self,
        deployment: str,
        parameters: dict[str, Any],
        *,
        key: str,
        tags: list[str],
        name: str | None = None,
    ) -> Launched: ...
