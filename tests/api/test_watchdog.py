"""The stale-check watchdog: one incident per silent check, at most one recurrence per check
interval, and one pass at a time across API processes (each with its own connections)."""

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from checks.service import Checks
from models import migrate
from models.db import Database, connect, transaction
from models.event import Event
from models.incident import Incident
from models.services.check_health import WATCHDOG_LOCK
from models.settings import Settings
from tests.api.test_checks import SHIPPED, at

SPECS = {cid: SHIPPED[cid] for cid in ("data_freshness_inbox", "triage_cost")}  # 60 s, 300 s


@pytest.fixture
async def databases(fresh_database_url: Callable[[], str]) -> AsyncIterator[list[Database]]:
    """Two connections pools on one new database: two API processes' worth."""
    url = fresh_database_url()
    await asyncio.to_thread(migrate.upgrade, url)
    pools = [connect(url), connect(url)]
    yield pools
    for pool in pools:
        await pool.dispose()


def watchdog(database: Database, settings: Settings) -> Checks:
    checks = Checks(SPECS, database, settings)
    checks.started_at = at(-3600)  # nothing has run for an hour
    return checks


async def stale_incidents(database: Database) -> dict[str, Incident]:
    async with transaction(database.reader) as session:
        rows = await session.scalars(select(Incident).where(Incident.key.like("INV_check_%")))
        return {incident.key: incident for incident in rows}


async def events(database: Database) -> int:
    async with transaction(database.reader) as session:
        return int(await session.scalar(select(func.count()).select_from(Event)) or 0)


async def test_a_repeated_pass_counts_a_silence_once_per_check_interval(
    databases: list[Database], settings: Settings
) -> None:
    checks = watchdog(databases[0], settings)
    now = at(0)

    assert await checks.watch(now) == list(SPECS)
    written = await events(databases[0])
    assert await checks.watch(now + timedelta(seconds=30)) == list(SPECS)  # within both intervals
    assert await events(databases[0]) == written
    await checks.watch(now + timedelta(seconds=61))  # past the freshness check's 60 s only

    found = await stale_incidents(databases[0])
    fresh = found["INV_check_data_freshness_inbox_stale"]
    cost = found["INV_check_triage_cost_stale"]
    assert (fresh.occurrence_count, cost.occurrence_count) == (2, 1)
    assert (fresh.severity.value, cost.severity.value) == ("sev1", "sev3")
    assert "check_run_id" not in fresh.metadata_  # it never ran


async def test_concurrent_passes_of_two_processes_write_once(
    backend: str, databases: list[Database], settings: Settings
) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite processes take turns on the write lock (the test above)")
    now = at(0)
    first, second = (watchdog(database, settings) for database in databases)

    outcomes = await asyncio.gather(*(first.watch(now), second.watch(now)) * 2)

    assert list(SPECS) in outcomes
    found = await stale_incidents(databases[0])
    assert sorted(found) == sorted(f"INV_check_{cid}_stale" for cid in SPECS)
    assert all(incident.occurrence_count == 1 for incident in found.values())
    assert await events(databases[0]) == len(SPECS)  # one incident_created each, nothing else


async def test_a_pass_is_skipped_while_another_process_holds_the_turn(
    backend: str, databases: list[Database], settings: Settings
) -> None:
    if backend != "postgresql":
        pytest.skip("the advisory lock is PostgreSQL's")
    async with transaction(databases[1].writer) as holder:
        await holder.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": WATCHDOG_LOCK})

        assert await watchdog(databases[0], settings).watch() is None

    assert await stale_incidents(databases[0]) == {}
    assert await watchdog(databases[0], settings).watch() == list(SPECS)
