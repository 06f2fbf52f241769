"""The production path for tests: a Prefect server, `intervene prefect setup`, `prefect deploy
--all` from prefect.yaml, a process work pool worker (`prefect worker start --pool intervene`)
and `intervene services`, each its own process, stopped and killed by pid.

Nothing here serves a deployment: the pool worker runs the flows as `prefect deploy` declared
them. Short thresholds keep the crash tests bounded: Intervene's own heartbeat every second,
stale after 4 s; Prefect's flow-run heartbeat every 30 s (its minimum) and the zombie
automation at ZOMBIE_SECONDS; the pool worker polls every second.
"""

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from deployments.stack import (
    free_port,
    isolated_environment,
    start,
    start_prefect_server,
    stop,
    wait_healthy,
)
from models.settings import Settings
from tests.receiver import Receiver, serve_receiver

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "intervene_cli"]
PREFECT = str(Path(sys.executable).with_name("prefect"))
ZOMBIE_SECONDS = 40  # Prefect's heartbeat is every 30 s at least: the threshold must exceed it
PLANNER_STEP_SECONDS = 600  # a planner action sleeps between its steps: killed mid-run there
# what `serve()` rewrote when it took a pool's deployments over (not `updated` nor `status`: the
# pool worker's polling marks its deployments ready)
DEPLOYMENT_FIELDS = ("name", "entrypoint", "pull_steps", "schedules", "paused", "work_pool_name",
                     "path", "parameters", "tags", "concurrency_limit")  # fmt: skip
TOKEN = "prefect-automation-token"


@dataclass
class PoolStack:
    env: dict[str, str]
    settings: Settings
    logs: Path
    server: subprocess.Popen[bytes]
    reports: Receiver  # stands in for Intervene's POST /api/prefect/flow-runs
    setup_args: list[str] = field(default_factory=list)
    worker: subprocess.Popen[bytes] | None = None
    services: subprocess.Popen[bytes] | None = None
    deployments_before_services: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def api_url(self) -> str:
        return self.env["PREFECT_API_URL"]

    def cli(self, *args: str) -> str:
        done = subprocess.run([*CLI, *args], env=self.env, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def start_worker(self) -> None:
        command = [PREFECT, "worker", "start", "--pool", "intervene", "--type", "process"]
        self.worker = start(command, self.env, self.logs / "pool-worker.log")

    def kill_worker_and_its_flows(self) -> list[int]:
        """SIGKILL the pool worker and every process under it (the flow runs): no hook, no
        final state, no heartbeat: only Prefect's automation or the reconciler can tell."""
        assert self.worker is not None
        pids = [self.worker.pid, *descendants(self.worker.pid)]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.worker.wait()
        self.worker = None
        return pids

    def start_services(self) -> None:
        self.services = start([*CLI, "services"], self.env, self.logs / "services.log")

    def stop_services(self) -> None:
        if self.services is not None:
            stop([self.services])
            self.services = None

    def deployments(self) -> dict[str, dict[str, Any]]:
        response = httpx.post(f"{self.api_url}/deployments/filter", json={}, timeout=10)
        response.raise_for_status()
        return {d["name"]: {k: d.get(k) for k in DEPLOYMENT_FIELDS} for d in response.json()}


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def pool_environment(base: Path, port: int) -> dict[str, str]:
    env = isolated_environment(base, port) | {
        "INTERVENE_HOME": str(ROOT),  # prefect.yaml's pull step changes into the checkout
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_WORKER_PREFETCH_SECONDS": "5",
        "INTERVENE_HEARTBEAT_SECONDS": "1",
        "INTERVENE_STALE_HEARTBEAT_SECONDS": "4",
        "INTERVENE_RECONCILE_INTERVAL_SECONDS": "1",
        "INTERVENE_WEBHOOK_POLL_SECONDS": "0.5",
        "INTERVENE_WEBHOOK_ALLOW_PRIVATE": "true",  # the tests' receivers are on 127.0.0.1
        "INTERVENE_PLANNER_STEP_SECONDS": str(PLANNER_STEP_SECONDS),
        "INTERVENE_CHECKS_FILE": str(ROOT / "warehouse" / "checks.yml"),
    }
    env.pop("INTERVENE_DBT_SOCKET")  # no warm executor on a pool: dbt runs in the flow run
    return env


async def pause_checks(api_url: str) -> None:
    """The shipped checks' schedules, paused: their runs would compete with the tests' for
    the one DuckDB writer and the machine's two cores."""
    async with httpx.AsyncClient(timeout=30) as http:
        response = await _through_busy(lambda: http.post(f"{api_url}/deployments/filter", json={}))
        for deployment in response.json():
            if "check" in deployment["tags"]:
                url = f"{api_url}/deployments/{deployment['id']}"
                await _through_busy(lambda url=url: http.patch(url, json={"paused": True}))


async def _through_busy(
    request: Callable[[], Awaitable[httpx.Response]], seconds: float = 120
) -> httpx.Response:
    """A request to Prefect's server, made again while it answers 503: its SQLite database is
    locked by another writer on a busy machine, which passes."""
    deadline = time.monotonic() + seconds
    while True:
        response = await request()
        if response.status_code != 503 or time.monotonic() > deadline:
            response.raise_for_status()
            return response
        await asyncio.sleep(1)


@pytest.fixture(scope="module")
def pool_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PoolStack]:
    base = tmp_path_factory.mktemp("pool")
    port = free_port()
    env = pool_environment(base, port)
    logs = base / "logs"
    logs.mkdir()
    server = start_prefect_server(env, port, logs / "prefect-server.log")
    settings = Settings(
        database_url=env["INTERVENE_DATABASE_URL"],
        warehouse_url=env["INTERVENE_WAREHOUSE_URL"],
        dbt_target_dir=Path(env["INTERVENE_DBT_TARGET_DIR"]),
        checks_file=Path(env["INTERVENE_CHECKS_FILE"]),
        webhook_allow_private=True,
        self_approval=["*"],
        watchdog_interval_seconds=24 * 3600,  # the shipped checks never run here (paused)
        sla_sweep_interval_seconds=24 * 3600,
        _env_file=None,  # type: ignore[call-arg]
    )
    receiving = serve_receiver()
    reports = next(receiving)
    token_file = base / "token"
    token_file.write_text(TOKEN)
    pool = PoolStack(env=env, settings=settings, logs=logs, server=server, reports=reports)
    pool.setup_args = [
        "prefect", "setup", "--zombie-threshold", str(ZOMBIE_SECONDS),
        "--intervene-url", reports.url.removesuffix("/hook"), "--token-file", str(token_file),
    ]  # fmt: skip
    try:
        subprocess.run([*CLI, "db", "upgrade"], env=env, check=True, capture_output=True)
        subprocess.run([*CLI, "warehouse", "prepare"], env=env, check=True, capture_output=True)
        wait_healthy(f"{pool.api_url}/health", server, seconds=120)
        pool.cli(*pool.setup_args)
        deploy = subprocess.run(
            [PREFECT, "--no-prompt", "deploy", "--all"], cwd=ROOT, env=env,
            capture_output=True, text=True,
        )  # fmt: skip
        assert deploy.returncode == 0, deploy.stdout + deploy.stderr
        asyncio.run(pause_checks(pool.api_url))
        pool.start_worker()
        pool.deployments_before_services = pool.deployments()
        pool.start_services()
        yield pool
    finally:
        pool.stop_services()
        stop([p for p in (pool.server, pool.worker) if p is not None])
        receiving.close()


async def wait_until(
    what: str, check: Callable[[], Awaitable[Any]], seconds: float, every: float = 0.5
) -> Any:
    """`await check()` until it is truthy (returned); fails after `seconds`, naming `what`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if result := await check():
            return result
        await asyncio.sleep(every)
    raise AssertionError(f"{what}: not within {seconds:.0f} s")
