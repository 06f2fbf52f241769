"""Closed-loop remediation on a warm stack: from a failing check run to its incident resolved
by verification, against its floor measured in the same run.

    python bench/remediation_loop.py [--loops 10] [--poll 1.0]

Starts a Prefect server, the DuckDB demo warehouse, `intervene worker` (serving the actions and
the checks), `intervene services` (the remediation loop, polling every --poll s, the
INTERVENE_REMEDIATION_POLL_SECONDS default) and the API, in a temporary directory, with one
check: `bench_triage_built` (triage_results has rows; remediation: rerun_dbt of triage_results,
auto, verified). Each loop empties triage_results, runs the check (Run now: a Prefect run of its
deployment), and waits for the incident to be resolved by the loop: loop time = the incident's
`resolved_at` minus the end of the failing check's flow run. Its floor, measured in the same
run as many times: the action's own execute -> success (`rerun_dbt` of the same model through
the API, the action's `completed_at` minus the request) plus one run of the check (Run now,
request to answer). Target: loop p50 and p99 within 1.3x of the floor's. Exits 1 when missed.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
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

CHECK = "bench_triage_built"
CHECKS_YML = f"""
checks:
  - id: {CHECK}
    kind: invariant
    agent: bench
    description: triage_results has rows; rebuilding it with dbt fixes an emptied table.
    query: select count(*) as value from triage_results
    comparison: ">"
    threshold: 0
    severity: sev3
    playbooks: [rerun_dbt]
    params: {{rerun_dbt: {{models: [triage_results]}}}}
    every: 3600
    remediation: {{action: rerun_dbt, mode: auto, verify: true, max_attempts: 1}}
"""
TARGET = 1.3


def ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def empty_table(warehouse: Path) -> None:
    """Break the invariant, taking turns with the worker's dbt and checks (one writer)."""
    deadline = time.monotonic() + 120
    while True:
        try:
            with duckdb.connect(str(warehouse)) as conn:
                conn.execute("delete from triage_results")
            return
        except duckdb.IOException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def run_check(http: httpx.Client) -> dict[str, Any]:
    response = http.post(f"/checks/{CHECK}/run?wait=180")
    response.raise_for_status()
    run: dict[str, Any] = response.json()
    return run


def flow_run_end(prefect_api: str, flow_run_id: str) -> float:
    run = httpx.get(f"{prefect_api}/flow_runs/{flow_run_id}", timeout=10).json()
    return ts(run["end_time"])


def wait_resolved(http: httpx.Client, incident_id: int, seconds: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        incident: dict[str, Any] = http.get(f"/incidents/{incident_id}").json()
        if incident["status"] == "resolved":
            return incident
        if incident["status"] not in ("open", "acknowledged", "mitigated"):
            raise RuntimeError(f"incident {incident_id} is {incident['status']}")
        time.sleep(0.1)
    raise RuntimeError(f"incident {incident_id} not resolved within {seconds:.0f} s")


def one_loop(http: httpx.Client, prefect_api: str, warehouse: Path) -> float:
    empty_table(warehouse)
    failing = run_check(http)
    assert failing["passed"] is False, failing
    failed_at = flow_run_end(prefect_api, failing["flow_run_id"])
    resolved = wait_resolved(http, failing["incident_id"])
    timeline = http.get(f"/incidents/{failing['incident_id']}/timeline").json()["entries"]
    assert any(e["verb"] == "remediation_verified" for e in timeline), timeline
    return ts(resolved["resolved_at"]) - failed_at


def one_floor(http: httpx.Client, actions: str) -> tuple[float, float]:
    """The action's own execute -> success, and one (passing) run of the check."""
    body = {"action_type": "rerun_dbt", "params": {"models": ["triage_results"]}}
    t0 = time.time()
    result = http.post(f"{actions}/execute?wait=180", json=body).json()
    assert result["status"] == "success", result
    history = http.get(f"{actions}/history").json()["actions"]
    action = next(a for a in history if a["id"] == result["action_id"])
    execute = ts(action["completed_at"]) - t0
    t0 = time.perf_counter()
    passing = run_check(http)
    assert passing["passed"] is True, passing
    return execute, time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--loops", type=int, default=10)
    parser.add_argument("--poll", type=float, default=None, help="remediation poll, seconds")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="intervene-bench-remediation-"))
    checks = base / "checks.yml"
    checks.write_text(CHECKS_YML)
    prefect_port, api_port = free_port(), free_port()
    prefect_api = f"http://127.0.0.1:{prefect_port}/api"
    env = (
        isolated_environment(base, prefect_port)
        | BENCH_ENV
        | {
            "INTERVENE_CHECKS_FILE": str(checks),
            "INTERVENE_ACTION_DRY_RUNS_PER_HOUR": "100000",
            "INTERVENE_ACTION_EXECUTIONS_PER_HOUR": "100000",
            "INTERVENE_INCIDENT_CAP_PER_KEY": "100000",
            "INTERVENE_REMEDIATION_BUDGET_PER_HOUR": "100000",
            "INTERVENE_REMEDIATION_ACTION_BUDGET_PER_HOUR": "100000",
        }
    )
    if args.poll is not None:
        env["INTERVENE_REMEDIATION_POLL_SECONDS"] = str(args.poll)
    os.environ.update({k: env[k] for k in ("PREFECT_API_URL", "PREFECT_HOME")})
    cli = [sys.executable, "-m", "intervene_cli"]
    processes = []
    try:
        processes.append(start_prefect_server(env, prefect_port, base / "prefect.log"))
        subprocess.run([*cli, "db", "upgrade"], env=env, check=True, capture_output=True)
        subprocess.run([*cli, "warehouse", "prepare"], env=env, check=True, capture_output=True)
        wait_healthy(f"{prefect_api}/health", processes[0], 120)
        processes.append(start([*cli, "worker"], env, base / "worker.log"))
        processes.append(start([*cli, "services"], env, base / "services.log"))
        processes.append(start([*cli, "api", "--port", str(api_port)], env, base / "api.log"))
        api = f"http://127.0.0.1:{api_port}/api"
        wait_healthy(f"{api}/health", processes[-1])
        wait_for_deployment(prefect_api, "rerun_dbt/rerun_dbt")
        wait_for_deployment(prefect_api, f"check/{CHECK}")
        warehouse = Path(env["INTERVENE_WAREHOUSE_URL"].removeprefix("duckdb:///"))

        token = bench_token(env["INTERVENE_DATABASE_URL"])
        http = httpx.Client(base_url=api, timeout=240, headers={"Authorization": f"Bearer {token}"})
        incident = http.post(
            "/incidents",
            json={"kind": "invariant", "key": "INV_bench_floor", "severity": "sev3",
                  "summary": "bench floor", "playbooks": ["rerun_dbt"]},
        ).json()  # fmt: skip
        actions = f"/playbooks/incidents/{incident['id']}/actions"

        one_floor(http, actions)  # warm-up: imports, caches, connections
        one_loop(http, prefect_api, warehouse)
        loops, executes, checks_ = [], [], []
        for _ in range(args.loops):  # interleaved: both see the same machine
            loops.append(one_loop(http, prefect_api, warehouse))
            execute, check = one_floor(http, actions)
            executes.append(execute)
            checks_.append(check)
    finally:
        stop(processes)
    return report(loops, executes, checks_, base)


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98]


def report(loops: list[float], executes: list[float], checks: list[float], base: Path) -> int:
    floors = [e + c for e, c in zip(executes, checks, strict=True)]
    med = statistics.median
    print(f"\nremediation loop on DuckDB, {len(loops)} loops; {os.cpu_count()} cores")
    print(f"logs: {base}\n")
    print("failing check run -> resolved by verification")
    print(f"  loop                     p50 {med(loops):6.2f} s   p99 {p99(loops):6.2f} s")
    print(f"  floor: execute->success  p50 {med(executes):6.2f} s   p99 {p99(executes):6.2f} s")
    print(f"         + one check run   p50 {med(checks):6.2f} s   p99 {p99(checks):6.2f} s")
    print(f"         = floor           p50 {med(floors):6.2f} s   p99 {p99(floors):6.2f} s")
    ratios = (med(loops) / med(floors), p99(loops) / p99(floors))
    print(f"  ratio                    p50 {ratios[0]:6.2f}x   p99 {ratios[1]:6.2f}x")
    missed = [name for name, r in zip(("p50", "p99"), ratios, strict=True) if r > TARGET]
    print(f"target: within {TARGET}x of the floor, p50 and p99")
    print("result: " + ("all targets met" if not missed else f"MISSED: {', '.join(missed)}"))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
