"""`intervene dev`: the whole stack for a first look, stopped cleanly with Ctrl-C.

A Prefect server (SQLite under .intervene/prefect, UI on :4200), the demo warehouse and its
feed of new emails, the worker (serving the actions and scheduled checks), Intervene's services
(reconciler, webhook delivery) and the API, each its own process
in its own session: Prefect turns SIGTERM into SIGINT and a
background child of a script ignores SIGINT, so children are started here and stopped by pid.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from deployments.dev_token import DEV_TOKEN_FILE, dev_token
from models.settings import DEFAULT_DATA_DIR, get_settings

PREFECT_PORT = 4200


def stack_environment(prefect_port: int = PREFECT_PORT) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("PREFECT_HOME", str((DEFAULT_DATA_DIR / "prefect").resolve()))
    env.setdefault("PREFECT_API_URL", f"http://127.0.0.1:{prefect_port}/api")
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    env.setdefault("PREFECT_RUNNER_POLL_FREQUENCY", "1")
    env.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    env.setdefault("INTERVENE_SELF_APPROVAL", '["*"]')  # the demo has one person
    # one address for everything local (browser, curl, scripts): a roomier budget than 1000/hour
    env.setdefault("INTERVENE_RATE_LIMIT", "10000/hour")
    env.setdefault("INTERVENE_LOG_FORMAT", "text")  # the API logs to a person's terminal here
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def isolated_environment(base: Path, prefect_port: int) -> dict[str, str]:
    """A whole stack's settings under `base` (Prefect home, app database, warehouse, dbt):
    the tests and the benchmarks run one beside anything else on the machine."""
    return {
        **os.environ,
        "PREFECT_HOME": str(base / "prefect"),
        "PREFECT_API_URL": f"http://127.0.0.1:{prefect_port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "INTERVENE_DATABASE_URL": f"sqlite:///{base / 'intervene.db'}",
        "INTERVENE_WAREHOUSE_URL": f"duckdb:///{base / 'warehouse.duckdb'}",
        "INTERVENE_DBT_TARGET_DIR": str(base / "dbt" / "target"),
        "INTERVENE_DBT_SOCKET": str(base / "dbt" / "warm.sock"),
    }


def start_prefect_server(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    prefect = str(Path(sys.executable).with_name("prefect"))
    return start([prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)], env, log)


def start(
    command: Sequence[str], env: dict[str, str], log: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start `command` in its own session, its output appended to `log` (or inherited)."""
    if log is None:
        return subprocess.Popen(list(command), env=env, start_new_session=True)
    with open(log, "ab") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            list(command), env=env, start_new_session=True, stdout=out, stderr=subprocess.STDOUT
        )


def wait_healthy(url: str, process: subprocess.Popen[bytes], seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} not healthy after {seconds:.0f} s")


def wait_for_deployment(api_url: str, name: str, seconds: float = 60) -> None:
    flow, deployment = name.split("/")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        response = httpx.get(f"{api_url}/deployments/name/{flow}/{deployment}", timeout=5)
        if response.status_code == 200:
            return
        time.sleep(0.5)
    raise RuntimeError(f"deployment {name} not served after {seconds:.0f} s")


def stop(processes: Sequence[subprocess.Popen[bytes]], timeout: float = 15) -> None:
    for process in reversed(processes):
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in reversed(processes):
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def run_stack(host: str, port: int) -> None:
    # Ctrl-C and SIGTERM stop the children; SIGINT explicitly too, since a background job of a
    # non-interactive shell starts with SIGINT ignored.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    env = stack_environment()
    logs = DEFAULT_DATA_DIR / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    intervene = [sys.executable, "-m", "intervene_cli"]
    processes: list[subprocess.Popen[bytes]] = []
    try:
        print("starting the Prefect server (first start takes about 15 s) ...", flush=True)
        server = start_prefect_server(env, PREFECT_PORT, logs / "prefect-server.log")
        processes.append(server)
        token = dev_token(env.get("INTERVENE_DATABASE_URL") or get_settings().database_url)
        print("preparing the demo warehouse (dbt seed + run) ...", flush=True)
        subprocess.run([*intervene, "warehouse", "prepare"], env=env, check=True)
        wait_healthy(f"{env['PREFECT_API_URL']}/health", server)
        # the flow runs' own INFO lines reach the Prefect UI; the terminal stays quiet
        worker_env = env | {"PREFECT_LOGGING_LEVEL": "INFO"}
        processes.append(start([*intervene, "worker"], worker_env, logs / "worker.log"))
        processes.append(start([*intervene, "services"], env, logs / "services.log"))
        processes.append(start([*intervene, "warehouse", "feed"], env, logs / "feed.log"))
        api = start([*intervene, "api", "--host", host, "--port", str(port), "--seed-demo"], env)
        processes.append(api)
        wait_healthy(f"http://{host}:{port}/api/health", api)
        ui = env["PREFECT_API_URL"].removesuffix("/api")
        api_url = f"http://{host}:{port}/api"
        auth = f'-H "Authorization: Bearer {token}"'
        print(
            f"\nIntervene is running\n"
            f"  console    http://{host}:{port}/   (paste the token below when it asks)\n"
            f"  API        {api_url}   (docs: http://{host}:{port}/docs)\n"
            f"  Prefect UI {ui}\n"
            f"  token      {token}   (local admin; kept in {DEV_TOKEN_FILE})\n"
            f"  logs       {logs}/ (Prefect server, worker, services, feed); the API logs below\n"
            f"  try        curl {auth} {api_url}/incidents\n"
            f"             curl {auth} {api_url}/checks\n"
            f"             curl -N '{api_url}/sse/events?access_token={token}'\n"
            "Stop with Ctrl-C.\n",
            flush=True,
        )
        while all(p.poll() is None for p in processes):
            time.sleep(0.5)
        failed = next(p for p in processes if p.poll() is not None)
        print(f"{failed.args!r} stopped (exit {failed.returncode}); stopping the rest", flush=True)
    except KeyboardInterrupt:
        print("\nstopping ...", flush=True)
    finally:
        stop(processes)
