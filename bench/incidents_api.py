"""Incidents API benchmark on PostgreSQL: 10,000 incidents, uvicorn, load from a second process.

    python bench/incidents_api.py [--incidents 10000] [--seconds 10] [--concurrency 16]

Creates a throwaway database on the PostgreSQL at INTERVENE_BENCH_POSTGRES_URL (default
postgresql://127.0.0.1:5432/test), fills it, starts `uvicorn api.main:create_app` on it and
drives GET /api/health, GET /api/incidents?limit=50, GET /api/incidents/{id} and POST
/api/incidents (the dedup path: the key is active, so each call counts an occurrence) with
bench/loadgen.py in its own process. Prints requests/s, p50 and p99 for each, each throughput as a
ratio of /api/health's, and whether the targets hold. Exits 1 when a target is missed.
"""

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import psycopg
from sqlalchemy import create_engine, insert, pool
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deployments.stack import free_port  # noqa: E402
from models import migrate  # noqa: E402
from models.db import sync_url  # noqa: E402
from models.enums import Severity  # noqa: E402
from models.incident import SLA_BREACH_FIELDS, Incident  # noqa: E402
from models.sla import DEFAULT_SLA_TARGETS, STAMPS, sla_status  # noqa: E402

ADMIN_URL = os.environ.get("INTERVENE_BENCH_POSTGRES_URL", "postgresql://127.0.0.1:5432/test")
TARGETS = {"list": 0.25, "get": 0.40}  # minimum throughput as a share of /api/health
P99_OVER_P50 = 10.0
STATUSES = (
    ["closed"] * 60 + ["resolved"] * 15 + ["open"] * 10 + ["acknowledged"] * 10 + ["mitigated"] * 5
)


def create_database() -> str:
    name = f"intervene_bench_{uuid.uuid4().hex[:8]}"
    admin = make_url(ADMIN_URL).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return (
        make_url(ADMIN_URL)
        .set(drivername="postgresql+psycopg", database=name)
        .render_as_string(hide_password=False)
    )


def bench_token(url: str) -> str:
    """An admin token on the benchmark's database (the API is measured with auth on)."""
    import asyncio

    from models.db import connect, transaction
    from models.enums import Role
    from models.services.tokens import create_token

    async def issue() -> str:
        database = connect(url)
        try:
            async with transaction(database.writer) as session:
                new = await create_token(session, name="bench", role=Role.ADMIN, created_by="bench")
                return new.secret
        finally:
            await database.dispose()

    return asyncio.run(issue())


# one client address makes every request of a benchmark: the per-address limit would cap it
BENCH_ENV = {"INTERVENE_RATE_LIMIT": "100000000/hour"}


def drop_database(url: str) -> None:
    admin = make_url(ADMIN_URL).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')


def announced(row: dict[str, Any], now: datetime) -> None:
    """Set the breaches the API's SLA sweep would have announced by `now`. Without them its
    first passes (200 incidents each, every 30 s) would write and log inside the
    measurements."""
    stages = {name: row.get(name) for name in STAMPS}
    incident = SimpleNamespace(**(row | stages | {"severity": Severity(row["severity"])}))
    timers = sla_status(incident, targets=DEFAULT_SLA_TARGETS, now=now)  # type: ignore[arg-type]
    for timer, status in timers.items():  # every row sets every column (one executemany)
        row[SLA_BREACH_FIELDS[timer]] = status.breached_at if status is not None else None


def fill(url: str, count: int) -> tuple[list[int], list[dict[str, object]]]:
    """Insert `count` incidents; return their ids and the alert bodies of some active ones."""
    rng = random.Random(42)
    now = datetime.now(UTC)
    rows = []
    for n in range(count):
        created = now - timedelta(minutes=rng.randint(0, 60 * 24 * 30))
        status = rng.choice(STATUSES)
        kind = rng.choice(["invariant", "budget", "planner"])
        rows.append(
            {
                "kind": kind,
                "key": f"BENCH_{kind}_{n}",
                "severity": rng.choice(["sev1", "sev2", "sev3", "sev4"]),
                "status": status,
                "summary": f"Benchmark incident {n}: a check on agent-{n % 40} failed",
                "details": {"invariant": {"id": f"check_{n % 97}", "threshold": 300, "actual": n}},
                "playbooks": ["rerun_eval", "rerun_dbt"],
                "metadata_": {"agent": f"agent-{n % 40}", "auto_created": True},
                "acknowledged_by": None if status == "open" else "oncall@example.com",
                "acknowledged_at": None if status == "open" else created + timedelta(minutes=4),
                "occurrence_count": 1,
                "reopen_count": 0,
                "last_seen_at": created,
                "created_at": created,
                "updated_at": created,
            }
        )
    for row in rows:  # a live database has announced its breaches: the SLA sweep finds none
        announced(row, now)
    engine = create_engine(sync_url(url), poolclass=pool.NullPool)
    with engine.begin() as conn:
        conn.execute(insert(Incident), rows)
        ids = [row[0] for row in conn.exec_driver_sql("SELECT id FROM incidents")]
        active = conn.exec_driver_sql(
            "SELECT kind, key, severity FROM incidents"
            " WHERE status IN ('open', 'acknowledged', 'mitigated') LIMIT 100"
        ).all()
    engine.dispose()
    vacuum = create_engine(sync_url(url), poolclass=pool.NullPool, isolation_level="AUTOCOMMIT")
    with vacuum.connect() as conn:  # what autovacuum would have done on a live database
        conn.exec_driver_sql("VACUUM ANALYZE")
    vacuum.dispose()
    alerts = [
        {"kind": kind, "key": key, "severity": severity, "summary": "Benchmark repeat alert"}
        for kind, key, severity in active
    ]
    return ids, alerts


def start_server(url: str, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        **BENCH_ENV,
        "INTERVENE_DATABASE_URL": url,
        "INTERVENE_AUTO_MIGRATE": "false",
    }
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "api.main:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    server = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.terminate()
    raise SystemExit("the API did not become healthy within 30 s")


def load(
    port: int,
    requests: list[dict[str, object]],
    seconds: float,
    concurrency: int,
    token: str,
    *,
    once: bool = False,
) -> dict:
    """bench/loadgen.py's figures; with `once`, each request sent exactly once."""
    command = [
        sys.executable,
        str(ROOT / "bench" / "loadgen.py"),
        "127.0.0.1",
        str(port),
        str(seconds),
        str(concurrency),
        token,
        *(["once"] if once else []),
    ]
    done = subprocess.run(
        command, input=json.dumps(requests).encode(), capture_output=True, check=True
    )
    result: dict = json.loads(done.stdout)
    return result


def summarize(result: dict) -> dict[str, float]:
    latencies = sorted(result["latencies_ms"])
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "rps": result["requests"] / result["seconds"],
        "p50": statistics.median(latencies),
        "p99": q[98],
        "requests": result["requests"],
        "errors": result["errors"],
        "non_2xx": sum(v for k, v in result["statuses"].items() if not k.startswith("2")),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--incidents", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()

    url = create_database()
    server = None
    try:
        started = time.perf_counter()
        migrate.upgrade(url)
        ids, alerts = fill(url, args.incidents)
        token = bench_token(url)
        print(
            f"filled {len(ids)} incidents in {time.perf_counter() - started:.1f} s "
            f"({make_url(url).database})"
        )
        port = free_port()
        server = start_server(url, port)
        rng = random.Random(7)
        scenarios: dict[str, list[dict[str, object]]] = {
            "health": [{"method": "GET", "path": "/api/health"}],
            "list": [{"method": "GET", "path": "/api/incidents?limit=50"}],
            "get": [{"method": "GET", "path": f"/api/incidents/{i}"} for i in rng.sample(ids, 500)],
            "create (dedup)": [
                {"method": "POST", "path": "/api/incidents", "body": a} for a in alerts
            ],
        }
        for requests in scenarios.values():  # warm up connections, caches and code paths
            load(port, requests, 1.0, args.concurrency, token)
        results = {
            name: summarize(load(port, reqs, args.seconds, args.concurrency, token))
            for name, reqs in scenarios.items()
        }
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
        if not args.keep:
            drop_database(url)

    health = results["health"]["rps"]
    print(
        f"\n{args.incidents} incidents, {args.concurrency} connections, {args.seconds:.0f} s each,"
        f" 1 uvicorn worker, {os.cpu_count()} cores\n"
    )
    columns = ["req/s", "p50 ms", "p99 ms", "p99/p50"]
    print(
        f"{'endpoint':<16}"
        + "".join(f"{c:>9}" for c in columns)
        + f"{'vs health':>11}{'non-2xx':>9}"
    )
    for name, r in results.items():
        print(
            f"{name:<16}{r['rps']:>9.0f}{r['p50']:>9.2f}{r['p99']:>9.2f}"
            f"{r['p99'] / r['p50']:>9.1f}{r['rps'] / health:>10.0%}{r['non_2xx']:>9}"
        )
    failures = []
    for name, share in TARGETS.items():
        if results[name]["rps"] / health < share:
            failures.append(f"{name} throughput below {share:.0%} of health")
    for name, r in results.items():
        if r["p99"] > P99_OVER_P50 * r["p50"]:
            failures.append(f"{name} p99 above {P99_OVER_P50:.0f}x p50")
        if r["non_2xx"]:
            failures.append(f"{name} had {r['non_2xx']} non-2xx responses")
    print("\ntargets: list >= 25% and get >= 40% of health throughput, p99 < 10x p50, no errors")
    print("result: " + ("all targets met" if not failures else "MISSED: " + "; ".join(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
