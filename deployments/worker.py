"""`intervene worker`: serve every action flow and every check as deployments, and nothing else.

The deployments are `<action_type>/<action_type>`, served by one Prefect runner that polls about
every second (PREFECT_RUNNER_POLL_FREQUENCY, set by the CLI), so an execute starts in about
2 s. Each flow run gets its own subprocess, with Prefect's flow-run heartbeats on
(deployments/prefect_env.py); an action that must not overlap itself (dbt) takes its turn in
Intervene's database (flows/turns.py), not through a Prefect concurrency limit. The reconciler
and webhook delivery are `intervene services` (deployments/services.py).

`serve()` registers the deployments it serves, so never run a worker against a Prefect server
whose deployments `prefect deploy` owns (a work pool): it would take them over. Use pool
workers and `intervene services` there.
"""

import asyncio
import atexit
import logging
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from prefect import get_client, serve
from prefect.exceptions import ObjectNotFound
from prefect.types.entrypoint import EntrypointType

from flows.checks.flow import FLOW_NAME as CHECK_FLOW
from flows.checks.flow import check_deployments
from flows.checks.trigger import STARTUP_TAGS
from flows.registry import FLOWS
from models.settings import get_settings
from playbooks.catalog import ACTIONS, load_checks

log = logging.getLogger("intervene.worker")


def action_deployments() -> list[Any]:
    return [
        FLOWS[spec.action_type].to_deployment(
            name=spec.action_type,
            description=spec.description,
            entrypoint_type=EntrypointType.MODULE_PATH,
            tags=["intervene", "playbook"],
        )
        for spec in ACTIONS.values()
    ]


def parse_project() -> None:
    """A fresh manifest for the API, parsed in a child: the runner itself never loads dbt,
    whose DuckDB adapter would keep the warehouse file locked for as long as it lives."""
    subprocess.run(
        [sys.executable, "-m", "intervene_cli", "warehouse", "prepare", "--no-build"], check=True
    )


def start_warm_dbt(socket_path: Path, timeout: float = 90) -> subprocess.Popen[bytes]:
    """The worker's warm dbt executor (flows/warm_dbt.py); it parses the project first."""
    socket_path = socket_path.resolve()
    socket_path.unlink(missing_ok=True)
    process = subprocess.Popen([sys.executable, "-m", "flows.warm_dbt", str(socket_path)])
    atexit.register(process.terminate)
    deadline = time.monotonic() + timeout
    while not socket_path.exists():
        if process.poll() is not None:
            raise RuntimeError(f"the warm dbt executor exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the warm dbt executor was not ready after {timeout:.0f} s")
        time.sleep(0.1)
    return process


async def kick_checks(check_ids: list[str], wait: float = 120) -> None:
    """Run every check once as soon as its deployment exists, then leave it to its schedule
    (an interval schedule's first run can be a whole interval away)."""
    from prefect.deployments import run_deployment

    deadline = time.monotonic() + wait
    pending = list(check_ids)
    async with get_client() as client:
        while pending and time.monotonic() < deadline:
            for check_id in list(pending):
                name = f"{CHECK_FLOW}/{check_id}"
                try:
                    await client.read_deployment_by_name(name)
                except ObjectNotFound:
                    continue
                await run_deployment(name, timeout=0, tags=STARTUP_TAGS)  # type: ignore[misc]
                pending.remove(check_id)
            await asyncio.sleep(1)


def run_worker() -> None:
    settings = get_settings()
    checks = load_checks(settings.checks_file)  # a bad file stops here, with its lines
    if settings.dbt_socket is not None:
        start_warm_dbt(settings.dbt_socket)
    else:
        parse_project()
    threading.Thread(
        target=asyncio.run, args=(kick_checks(list(checks)),), name="kick-checks", daemon=True
    ).start()
    log.info(
        "serving %s and %d checks",
        ", ".join(spec.deployment for spec in ACTIONS.values()),
        len(checks),
    )
    # pause_on_shutdown=False: the check schedules keep running when a worker restarts
    serve(*action_deployments(), *check_deployments(checks), pause_on_shutdown=False)
