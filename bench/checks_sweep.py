"""Check sweep benchmark: 1,000 declared invariants against a PostgreSQL warehouse.

    python bench/checks_sweep.py [--checks 1000] [--rows-per-agent 200] [--failing 0.1]

Creates two throwaway PostgreSQL databases (the warehouse and the app database), fills the
warehouse with agent runs (one agent per check), declares the checks in a YAML file (loaded
with the real loader), then times one sweep (flows/checks/runner.py: measure every check through
one warehouse connection, pipelined, while recording the runs and opening the incidents, a
transaction per chunk) against its floor: the same queries run back to back through one psycopg
connection. Target: the sweep within 1.5x of the floor. Exits 1 when it is missed.
"""

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.incidents_api import create_database, drop_database  # noqa: E402
from flows.checks.config import load_checks  # noqa: E402
from flows.checks.runner import sweep  # noqa: E402
from models import migrate  # noqa: E402
from models.db import connect, transaction  # noqa: E402
from models.incident import Incident  # noqa: E402
from models.settings import Settings  # noqa: E402

PROFILE = False
QUERY = (
    "select avg(quality_score) as value, count(*) as runs from agent_runs"
    " where agent = '{agent}' and started_at > now() - interval '24 hours'"
)


def fill_warehouse(url: str, agents: int, rows: int, failing: float) -> None:
    conninfo = url.replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE agent_runs (agent text, started_at timestamptz, quality_score float8)"
        )
        bad = int(agents * failing)
        conn.execute(
            """INSERT INTO agent_runs
               SELECT 'agent-' || a, now() - (r || ' minutes')::interval,
                      CASE WHEN a < %s THEN 70 ELSE 90 END + (r %% 7)
               FROM generate_series(0, %s - 1) a, generate_series(1, %s) r""",
            (bad, agents, rows),
        )
        conn.execute("CREATE INDEX ON agent_runs (agent, started_at)")
        conn.execute("ANALYZE agent_runs")


def declare(path: Path, agents: int) -> None:
    lines = ["checks:"]
    for a in range(agents):
        lines += [
            f"  - id: quality_agent_{a}",
            "    kind: invariant",
            f"    agent: agent-{a}",
            f'    query: "{QUERY.format(agent=f"agent-{a}")}"',
            '    comparison: ">="',
            "    threshold: 85",
            "    severity: sev3",
            "    every: 300",
        ]
    path.write_text("\n".join(lines) + "\n")


def floor(url: str, queries: list[str]) -> float:
    conninfo = url.replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        started = time.perf_counter()
        for query in queries:
            conn.execute(query).fetchone()
        return time.perf_counter() - started


async def timed_sweep(settings: Settings, checks: list) -> tuple[float, int]:  # type: ignore[type-arg]
    database = connect(settings.database_url)
    try:
        started = time.perf_counter()
        runs = await sweep(checks, database, settings)
        elapsed = time.perf_counter() - started
        if PROFILE:
            from flows.checks.evaluate import measure_many
            from flows.checks.runner import record_many

            t = time.perf_counter()
            ms = await asyncio.to_thread(measure_many, checks, settings.warehouse_url)
            t2 = time.perf_counter()
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.0005)
            profiler.start()
            await record_many(list(zip(checks, ms, strict=True)), database, settings)
            profiler.stop()
            print(profiler.output_text(unicode=False, color=False)[:5000])
            print(f"measure {t2 - t:.3f} s, record {time.perf_counter() - t2:.3f} s")
        async with transaction(database.reader) as session:
            incidents = await session.scalar(select(func.count()).select_from(Incident))
        assert all(r.error is None for r in runs), [r.error for r in runs if r.error][:3]
        return elapsed, int(incidents or 0)
    finally:
        await database.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checks", type=int, default=1000)
    parser.add_argument("--rows-per-agent", type=int, default=200)
    parser.add_argument("--failing", type=float, default=0.1, help="share of failing checks")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    warehouse, app_db = create_database(), create_database()
    try:
        fill_warehouse(warehouse, args.checks, args.rows_per_agent, args.failing)
        migrate.upgrade(app_db)
        checks_file = Path(tempfile.mkdtemp()) / "checks.yml"
        declare(checks_file, args.checks)
        checks = list(load_checks(checks_file).values())
        settings = Settings(
            database_url=app_db,
            warehouse_url=warehouse.replace("postgresql+psycopg", "postgresql") + "?schema=public",
            checks_file=checks_file,
            _env_file=None,  # type: ignore[call-arg]
        )
        queries = [c.query for c in checks]
        floor(warehouse, queries)  # warm the warehouse's caches
        floors, sweeps, opened = [], [], 0
        for _ in range(args.rounds):
            floors.append(floor(warehouse, queries))
            elapsed, opened = asyncio.run(timed_sweep(settings, checks))
            sweeps.append(elapsed)
    finally:
        drop_database(warehouse)
        drop_database(app_db)

    f, s = statistics.median(floors), statistics.median(sweeps)
    print(f"\n{args.checks} invariants on PostgreSQL, {args.rows_per_agent} rows per agent, "
          f"{args.failing:.0%} failing; median of {args.rounds} rounds\n")  # fmt: skip
    print(f"floor: queries back to back on one connection  {f:7.2f} s")
    print(f"sweep: measure + record + incidents             {s:7.2f} s   ratio {s / f:.2f}")
    print(f"incidents opened: {opened} (later rounds count occurrences on the same incidents)")
    ok = s <= 1.5 * f
    print("\ntarget: sweep within 1.5x of the floor")
    print("result: " + ("target met" if ok else "MISSED: sweep above 1.5x the floor"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
