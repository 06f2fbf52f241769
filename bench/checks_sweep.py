"""Check sweep benchmark: 1,000 declared invariants against a PostgreSQL warehouse.

    python bench/checks_sweep.py [--checks 1000] [--rows-per-agent 200] [--failing 0.1]

Creates two throwaway PostgreSQL databases (the warehouse and the app database), fills the
warehouse with agent runs (one agent per check), declares the checks in a YAML file (loaded
with the real loader), then times one sweep (checks/runner.py: measure every check through
one warehouse connection, pipelined, while recording the runs and opening the incidents, a
transaction per chunk) against its floor: the same queries run back to back through one psycopg
connection, in the same run. Each round starts from an app database with no incident, so every
sweep opens its incidents (the costlier case); every round is reported with the incidents its
sweep opened. Target: the median round's sweep within 1.5x of its floor. Exits 1 when missed.
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
from sqlalchemy.orm import configure_mappers

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.incidents_api import create_database, drop_database  # noqa: E402
from checks.config import CheckSpec  # noqa: E402
from checks.runner import sweep  # noqa: E402
from models import migrate  # noqa: E402
from models.db import Database, connect, transaction  # noqa: E402
from models.incident import Incident  # noqa: E402
from models.settings import Settings  # noqa: E402
from playbooks.catalog import load_checks  # noqa: E402

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


def forget_incidents(url: str) -> None:
    """Empty the app database's incidents (and what refers to them), so that every round's
    sweep opens its incidents: the costlier sweep, not the one that only counts repeats."""
    conninfo = url.replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("TRUNCATE incidents RESTART IDENTITY CASCADE")


async def count_incidents(database: Database) -> int:
    async with transaction(database.reader) as session:
        return int(await session.scalar(select(func.count()).select_from(Incident)) or 0)


async def timed_sweep(settings: Settings, checks: list[CheckSpec]) -> tuple[float, int]:
    """One sweep's time and how many incidents it opened (not how many the database holds)."""
    database = connect(settings.database_url)
    try:
        before = await count_incidents(database)
        started = time.perf_counter()
        runs = await sweep(checks, database, settings)
        elapsed = time.perf_counter() - started
        assert all(r.error is None for r in runs), [r.error for r in runs if r.error][:3]
        return elapsed, await count_incidents(database) - before
    finally:
        await database.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checks", type=int, default=1000)
    parser.add_argument("--rows-per-agent", type=int, default=200)
    parser.add_argument("--failing", type=float, default=0.1, help="share of failing checks")
    parser.add_argument("--rounds", type=int, default=5)
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
        configure_mappers()  # once per process, like the imports: not a sweep's cost
        rounds = []  # (floor, sweep, incidents the sweep opened)
        for _ in range(args.rounds):
            forget_incidents(app_db)
            floor_seconds = floor(warehouse, queries)
            rounds.append((floor_seconds, *asyncio.run(timed_sweep(settings, checks))))
    finally:
        drop_database(warehouse)
        drop_database(app_db)

    print(
        f"\n{args.checks} invariants on PostgreSQL, {args.rows_per_agent} rows per agent, "
        f"{args.failing:.0%} failing; {args.rounds} rounds (floor, then sweep)\n"
    )
    print("round   floor (s)   sweep (s)   ratio   incidents opened by the sweep")
    for number, (f, s, opened) in enumerate(rounds, 1):
        print(f"{number:5}   {f:9.2f}   {s:9.2f}   {s / f:5.2f}   {opened}")
    ratios = [s / f for f, s, _ in rounds]
    median = statistics.median(ratios)
    print(
        f"\nmedian ratio {median:.2f}, best {min(ratios):.2f}, worst {max(ratios):.2f} "
        "(every round starts with no incident, so every sweep opens them)"
    )
    print("floor: the same queries run back to back through one psycopg connection")
    ok = median <= 1.5
    print("\ntarget: the median round's sweep within 1.5x of its floor (a single round's floor")
    print("moves by a third from round to round on a shared 2-core machine)")
    print("result: " + ("target met" if ok else "MISSED: the median sweep above 1.5x its floor"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
