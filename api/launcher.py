"""Starting flow runs: the one place the API talks to Prefect.

`PrefectLauncher` (the playbook service's Launcher, playbooks/launcher.py) creates a flow run
of an action's deployment and returns at once (`timeout=0`); a worker picks it up. The
idempotency key is the action id, so a retried launch never starts a second run.
"""

import asyncio
from typing import Any

import httpx
from prefect.deployments.flow_runs import arun_deployment
from prefect.settings import PREFECT_API_URL

from playbooks.launcher import Launched, LaunchError

LAUNCH_TIMEOUT_SECONDS = 15


def prefect_ui_url(configured: str | None) -> str | None:
    if configured:
        return configured.rstrip("/")
    api_url = PREFECT_API_URL.value()
    return api_url.rstrip("/").removesuffix("/api") if api_url else None


class PrefectLauncher:
    def __init__(self, ui_url: str | None = None) -> None:
        self.ui_url = prefect_ui_url(ui_url)

    async def launch(
        self,
        deployment: str,
        parameters: dict[str, Any],
        *,
        key: str,
        tags: list[str],
        name: str | None = None,
    ) -> Launched:
        if not PREFECT_API_URL.value():
            # Without it Prefect would start a throwaway in-process server that no worker sees.
            raise LaunchError("PREFECT_API_URL is not set: no Prefect server to run the action on")
        try:
            run = await asyncio.wait_for(
                arun_deployment(
                    deployment,
                    parameters=parameters,
                    timeout=0,
                    idempotency_key=key,
                    tags=tags,
                    flow_run_name=name,
                    as_subflow=False,
                ),
                LAUNCH_TIMEOUT_SECONDS,
            )
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise LaunchError(
                f"Prefect did not confirm the start of {deployment} in time", maybe_started=True
            ) from exc
        except Exception as exc:  # unreachable server, unknown deployment
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise LaunchError(f"Prefect could not start {deployment}: {reason}") from exc
        url = f"{self.ui_url}/runs/flow-run/{run.id}" if self.ui_url else None
        return Launched(flow_run_id=str(run.id), url=url)
