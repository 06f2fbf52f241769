"""A launcher that records what would have been started, for API tests where Prefect is not
the point. The end-to-end tests use the real PrefectLauncher against a real server."""

import uuid
from dataclasses import dataclass, field
from typing import Any

from playbooks.launcher import Launched, LaunchError


@dataclass
class Launch:
    deployment: str
    parameters: dict[str, Any]
    key: str
    tags: list[str]
    name: str | None = None


@dataclass
class RecordingLauncher:
    launches: list[Launch] = field(default_factory=list)
    fail_with: str | None = None
    maybe_started: bool = False  # the failure is a timeout: Prefect may have the run

    async def launch(
        self,
        deployment: str,
        parameters: dict[str, Any],
        *,
        key: str,
        tags: list[str],
        name: str | None = None,
    ) -> Launched:
        if self.fail_with:
            raise LaunchError(self.fail_with, maybe_started=self.maybe_started)
        self.launches.append(Launch(deployment, parameters, key, tags, name))
        run_id = str(uuid.uuid4())
        return Launched(flow_run_id=run_id, url=f"http://prefect.test/runs/flow-run/{run_id}")

    def reset(self) -> None:
        self.launches.clear()
        self.fail_with = None
        self.maybe_started = False
