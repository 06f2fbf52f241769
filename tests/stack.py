"""A real stack for end-to-end and browser tests: a Prefect server, the demo warehouse, an
Intervene worker and Intervene's services.

Started once per session (about 20 s): `prefect server start` on a free port with its own
PREFECT_HOME, `intervene warehouse prepare` on a DuckDB file, `intervene worker` (serving the
flows) and `intervene services` (reconciler, webhook delivery). Tests
drive the API in their own process (tests/flows) or start it with uvicorn (tests/console).
"""

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from deployments.stack import (
    free_port,
    isolated_environment,
    start,
    start_prefect_server,
    stop,
    wait_for_deployment,
    wait_healthy,
)
from models.settings import Settings

E2E_CHECKS = Path(__file__).parent / "flows" / "e2e_checks.yml"


CLI = [sys.executable, "-m", "intervene_cli"]


@dataclass
class Stack:
    env: dict[str, str]
    settings: Settings
    logs: Path
    worker: subprocess.Popen[bytes]
    server: subprocess.Popen[bytes]
    port: int
    services: subprocess.Popen[bytes] | None = None

    def start_worker(self) -> None:
        self.worker = start([*CLI, "worker"], self.env, self.logs / "worker.log")

    def kill_worker(self) -> None:
        os.killpg(self.worker.pid, 9)
        self.worker.wait()

    def start_services(self) -> None:
        self.services = start([*CLI, "services"], self.env, self.logs / "services.log")

    def stop_services(self) -> None:
        if self.services is not None:
            stop([self.services])
            self.services = None

    def stop_prefect(self) -> None:
        """SIGTERM the Prefect server, as an operator's restart or a crash would end it."""
        stop([self.server])

    def start_prefect(self) -> None:
        """The Prefect server again, on its port and database; back once healthy."""
        self.server = start_prefect_server(self.env, self.port, self.logs / "prefect-server.log")
        wait_healthy(f"{self.env['PREFECT_API_URL']}/health", self.server, seconds=120)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    base = tmp_path_factory.mktemp("stack")
    port = free_port()
    env = isolated_environment(base, port) | {
        "INTERVENE_CHECKS_FILE": str(E2E_CHECKS),
        "INTERVENE_HEARTBEAT_SECONDS": "1",
        "INTERVENE_STALE_HEARTBEAT_SECONDS": "4",
        "INTERVENE_RECONCILE_INTERVAL_SECONDS": "1",
        "INTERVENE_WEBHOOK_ALLOW_PRIVATE": "true",  # the tests' receivers are on 127.0.0.1
    }
    logs = base / "logs"
    logs.mkdir()
    server = start_prefect_server(env, port, logs / "prefect-server.log")
    api_url = env["PREFECT_API_URL"]
    the_stack: Stack | None = None
    try:
        subprocess.run([*CLI, "db", "upgrade"], env=env, check=True, capture_output=True)
        subprocess.run([*CLI, "warehouse", "prepare"], env=env, check=True, capture_output=True)
        wait_healthy(f"{api_url}/health", server, seconds=120)
        settings = Settings(
            database_url=env["INTERVENE_DATABASE_URL"],
            warehouse_url=env["INTERVENE_WAREHOUSE_URL"],
            dbt_target_dir=Path(env["INTERVENE_DBT_TARGET_DIR"]),
            checks_file=Path(env["INTERVENE_CHECKS_FILE"]),
            webhook_allow_private=True,
            _env_file=None,  # type: ignore[call-arg]
        )
        the_stack = Stack(env=env, settings=settings, logs=logs, worker=server, server=server,
                          port=port)  # fmt: skip
        the_stack.start_worker()
        the_stack.start_services()
        wait_for_deployment(api_url, "rerun_dbt/rerun_dbt")
        yield the_stack
    finally:
        if the_stack is None:
            stop([server])
        else:
            the_stack.stop_services()
            stop([the_stack.server, the_stack.worker])
