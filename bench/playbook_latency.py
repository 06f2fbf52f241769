"""Playbook benchmark on a warm stack: dry-run latency, and execute latency against its floors.

    python bench/playbook_latency.py [--runs 5] [--dry-runs 200] [--path serve|pool|both]

Starts a Prefect server, prepares the DuckDB demo warehouse, and runs the flows one of two ways:
  - serve (default): one runner serving the action deployments plus an empty flow
    (bench/bench_worker.py), as `intervene worker` does (1 s poll, a warm dbt process);
  - pool: the production path, `intervene prefect setup`, `prefect deploy --all` from
    prefect.yaml plus the empty flow on the same pool, and `prefect worker start --pool
    intervene` (PREFECT_WORKER_QUERY_SECONDS=1) beside `intervene dbt-executor`, the host's
    warm dbt that the pool's flow processes use (INTERVENE_DBT_SOCKET, docs/operations.md);
then the API (uvicorn), all in a temporary directory. Then measures, for
`rerun_dbt --select +triage_results`:
  - dry-run latency over HTTP (p50, p99);
  - execute -> running and execute -> success (the action's own started/completed stamps);
  - floor 1: run_deployment of the empty flow to the same runner or pool -> running;
  - floor 2: `dbt run --select +triage_results` from the command line (the whole job).
Targets: dry-run p50 <= 150 ms; execute -> running at most 20% over floor 1;
execute -> success no slower than floor 2. Exits 1 when one is missed; with `both`, prints
each path's figures and the pool's over serve's.
"""

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.incidents_api import BENCH_ENV, bench_token  # noqa: E402
from deployments.stack import (  # noqa: E402
    free_port,
    isolated_environment,
    start,
    start_prefect_server,
    stop,
    wait_for_deployment,
    wait_healthy,
)

SELECTION = {"task_id": "bench", "models": ["triage_results"], "upstream": True}


def ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


async def empty_flow_floor(runs: int) -> list[float]:
    from prefect import get_client
    from prefect.deployments import run_deployment

    floors = []
    async with get_client() as client:
        for _ in range(runs):
            t0 = time.time()
            run = await run_deployment("bench_noop/bench", timeout=0)  # type: ignore[misc]
            while True:
                fresh = await client.read_flow_run(run.id)
                if fresh.state and fresh.state.is_final():
                    break
                await asyncio.sleep(0.05)
            assert fresh.start_time is not None
            floors.append(fresh.start_time.timestamp() - t0)
    return floors


def start_pool(env: dict[str, str], base: Path) -> "subprocess.Popen[bytes]":
    """The work pool, prefect.yaml's deployments (the checks' schedules paused: they would
    compete for the warehouse) and the empty flow on the same pool, then the pool worker."""
    cli = [sys.executable, "-m", "intervene_cli"]
    prefect = str(Path(sys.executable).with_name("prefect"))
    subprocess.run([*cli, "prefect", "setup"], env=env, check=True, capture_output=True)
    for command in (
        [prefect, "--no-prompt", "deploy", "--all"],
        [prefect, "--no-prompt", "deploy", "bench/noop_flow.py:bench_noop", "-n", "bench",
         "-p", "intervene"],
    ):  # fmt: skip
        subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True)
    api = env["PREFECT_API_URL"]
    for deployment in httpx.post(f"{api}/deployments/filter", json={}, timeout=10).json():
        if "check" in deployment["tags"]:
            httpx.patch(f"{api}/deployments/{deployment['id']}", json={"paused": True}, timeout=10)
    command = [prefect, "worker", "start", "--pool", "intervene", "--type", "process"]
    return start(command, env, base / "pool-worker.log")


Figures = dict[str, list[float]]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dry-runs", type=int, default=200)
    parser.add_argument("--path", choices=["serve", "pool", "both"], default="serve")
    args = parser.parse_args()
    paths = ["serve", "pool"] if args.path == "both" else [args.path]
    results = {path: measure(path, args.runs, args.dry_runs) for path in paths}
    missed = [
        f"{path}: {miss}"
        for path, figures in results.items()
        for miss in report(path, figures, args.runs)
    ]
    if len(results) == 2:
        med = statistics.median
        serve, pool = results["serve"], results["pool"]
        print("\npool over serve (medians)")
        for key in ("to_running", "to_success", "floor_trigger"):
            print(f"  {key:<14} {med(pool[key]):6.2f} s / {med(serve[key]):6.2f} s = "
                  f"{med(pool[key]) / med(serve[key]):.2f}x")  # fmt: skip
    print("result: " + ("all targets met" if not missed else "MISSED: " + "; ".join(missed)))
    return 1 if missed else 0


def measure(path: str, runs: int, dry_runs: int) -> Figures:
    base = Path(tempfile.mkdtemp(prefix=f"intervene-bench-{path}-"))
    prefect_port, api_port = free_port(), free_port()
    prefect_api = f"http://127.0.0.1:{prefect_port}/api"
    env = (
        isolated_environment(base, prefect_port)
        | BENCH_ENV
        | {
            "INTERVENE_ACTION_DRY_RUNS_PER_HOUR": "100000",
            "INTERVENE_ACTION_EXECUTIONS_PER_HOUR": "100000",
        }
    )
    if path == "pool":
        env = env | {"INTERVENE_HOME": str(ROOT), "PREFECT_WORKER_QUERY_SECONDS": "1"}
    os.environ.update({k: env[k] for k in ("PREFECT_API_URL", "PREFECT_HOME")})
    cli = [sys.executable, "-m", "intervene_cli"]
    processes = []
    try:
        processes.append(start_prefect_server(env, prefect_port, base / "prefect.log"))
        subprocess.run([*cli, "db", "upgrade"], env=env, check=True, capture_output=True)
        subprocess.run([*cli, "warehouse", "prepare"], env=env, check=True, capture_output=True)
        wait_healthy(f"{prefect_api}/health", processes[0], 120)
        if path == "pool":  # the pool's flow processes use the host's warm dbt, as documented
            executor = [*cli, "dbt-executor"]
            processes.append(start(executor, env, base / "dbt-executor.log"))
            processes.append(start_pool(env, base))
        else:
            worker = [sys.executable, str(ROOT / "bench" / "bench_worker.py")]
            processes.append(start(worker, env, base / "worker.log"))
        processes.append(start([*cli, "api", "--port", str(api_port)], env, base / "api.log"))
        api = f"http://127.0.0.1:{api_port}/api"
        wait_healthy(f"{api}/health", processes[-1])
        wait_for_deployment(prefect_api, "rerun_dbt/rerun_dbt")
        wait_for_deployment(prefect_api, "bench_noop/bench")

        token = bench_token(env["INTERVENE_DATABASE_URL"])
        http = httpx.Client(base_url=api, timeout=180, headers={"Authorization": f"Bearer {token}"})
        incident = http.post(
            "/incidents",
            json={
                "kind": "invariant",
                "key": "INV_bench",
                "severity": "sev3",
                "summary": "bench",
                "playbooks": ["rerun_dbt"],
            },
        ).json()
        actions = f"/playbooks/incidents/{incident['id']}/actions"
        body = {"action_type": "rerun_dbt", "params": SELECTION}

        # warm-up: one of each, so imports, caches and connections are hot
        http.post(f"{actions}/dry-run", json=body).raise_for_status()
        http.post(f"{actions}/execute?wait=120", json=body).raise_for_status()
        asyncio.run(empty_flow_floor(1))

        dry = []
        for _ in range(dry_runs):
            t0 = time.perf_counter()
            http.post(f"{actions}/dry-run", json=body).raise_for_status()
            dry.append((time.perf_counter() - t0) * 1000)

        to_running, to_success = [], []
        for _ in range(runs):
            t0 = time.time()
            result = http.post(f"{actions}/execute?wait=120", json=body).json()
            assert result["status"] == "success", result
            history = http.get(f"{actions}/history").json()["actions"]
            action = next(a for a in history if a["id"] == result["action_id"])
            to_running.append(ts(action["started_at"]) - t0)
            to_success.append(ts(action["completed_at"]) - t0)

        floor_trigger = asyncio.run(empty_flow_floor(runs))

        dbt_env = {
            **env,
            "INTERVENE_DBT_TARGET": "duckdb",
            "INTERVENE_DBT_DUCKDB_PATH": str(base / "warehouse.duckdb"),
        }
        dbt = str(Path(sys.executable).with_name("dbt"))
        floor_dbt = []
        project = ROOT / "warehouse"
        for _ in range(runs):
            t0 = time.perf_counter()
            subprocess.run(
                [
                    dbt,
                    "run",
                    "--select",
                    "+triage_results",
                    "--threads",
                    "4",
                    "--project-dir",
                    str(project),
                    "--profiles-dir",
                    str(project),
                    "--target-path",
                    str(base / "dbt-cli" / "target"),
                    "--log-path",
                    str(base / "dbt-cli" / "logs"),
                ],
                env=dbt_env,
                check=True,
                capture_output=True,
            )
            floor_dbt.append(time.perf_counter() - t0)
    finally:
        stop(processes)
    return {"dry": dry, "to_running": to_running, "to_success": to_success,
            "floor_trigger": floor_trigger, "floor_dbt": floor_dbt}  # fmt: skip


def report(path: str, figures: Figures, runs: int) -> list[str]:
    """Print one path's figures; returns the targets it missed."""
    dry, to_running, to_success = figures["dry"], figures["to_running"], figures["to_success"]
    floor_trigger, floor_dbt = figures["floor_trigger"], figures["floor_dbt"]
    med = statistics.median
    q = statistics.quantiles(dry, n=100, method="inclusive")
    print(
        f"\n[{path}] rerun_dbt --select +triage_results on DuckDB; {runs} runs each, "
        f"medians; {os.cpu_count()} cores\n"
    )
    print(
        f"dry-run over HTTP          p50 {med(dry):7.1f} ms   p99 {q[98]:7.1f} ms  (n={len(dry)})"
    )
    print(f"execute -> running         {med(to_running):7.2f} s")
    print(
        f"  floor: empty flow        {med(floor_trigger):7.2f} s   "
        f"overhead {med(to_running) / med(floor_trigger) - 1:+.0%}"
    )
    print(f"execute -> success         {med(to_success):7.2f} s")
    print(
        f"  floor: dbt command line  {med(floor_dbt):7.2f} s   "
        f"ratio {med(to_success) / med(floor_dbt):.2f}"
    )
    missed = []
    if med(dry) > 150:
        missed.append("dry-run p50 above 150 ms")
    if med(to_running) > 1.2 * med(floor_trigger):
        missed.append("trigger overhead above 20% of the empty-flow floor")
    if med(to_success) > med(floor_dbt):
        missed.append("execute -> success slower than the dbt command line")
    print("targets: dry-run p50 <= 150 ms; trigger overhead <= 20%; success <= dbt CLI")
    return missed


if __name__ == "__main__":
    sys.exit(main())
