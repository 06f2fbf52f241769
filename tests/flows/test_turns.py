"""One run at a time of an action, held in Intervene's database (flows/turns.py), on both
databases: a second holder waits, other actions do not, and a holder that dies frees the turn."""

import asyncio
import os
import signal
import sys
import textwrap
import time
from collections.abc import AsyncIterator

import pytest

from flows.turns import one_at_a_time
from models.db import Database, connect


@pytest.fixture
async def two_processes(database_url: str) -> AsyncIterator[tuple[Database, Database]]:
    """Two engines on one database, as two workers' runs have."""
    first, second = connect(database_url), connect(database_url)
    yield first, second
    await first.dispose()
    await second.dispose()


async def test_a_second_run_of_the_action_waits_for_the_first(
    two_processes: tuple[Database, Database], database_url: str
) -> None:
    first, second = two_processes
    order: list[str] = []
    released = asyncio.Event()

    async def holder() -> None:
        async with one_at_a_time(first, database_url, "rerun_dbt"):
            order.append("first in")
            await released.wait()
            order.append("first out")

    async def waiter() -> None:
        async with one_at_a_time(second, database_url, "rerun_dbt"):
            order.append("second in")

    holding = asyncio.create_task(holder())
    while not order:
        await asyncio.sleep(0.05)
    waiting = asyncio.create_task(waiter())
    await asyncio.sleep(2.5)  # two of the waiter's tries: it stays out while the first holds
    assert order == ["first in"]
    released.set()
    await asyncio.wait_for(asyncio.gather(holding, waiting), timeout=30)
    assert order == ["first in", "first out", "second in"]


async def test_other_actions_do_not_wait(
    two_processes: tuple[Database, Database], database_url: str
) -> None:
    first, second = two_processes
    async with one_at_a_time(first, database_url, "rerun_dbt"):
        await asyncio.wait_for(
            _enter_and_leave(second, database_url, "rollback_planner"), timeout=10
        )


async def _enter_and_leave(database: Database, url: str, action_type: str) -> None:
    async with one_at_a_time(database, url, action_type):
        pass


HOLD = textwrap.dedent(
    """
    import asyncio, sys
    from flows.turns import one_at_a_time
    from models.db import connect

    async def main(url: str) -> None:
        database = connect(url)
        async with one_at_a_time(database, url, "rerun_dbt"):
            print("holding", flush=True)
            await asyncio.sleep(3600)

    asyncio.run(main(sys.argv[1]))
    """
)


async def test_a_run_killed_while_holding_the_turn_frees_it(
    database_url: str, two_processes: tuple[Database, Database]
) -> None:
    held = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOLD, database_url, stdout=asyncio.subprocess.PIPE, cwd=os.getcwd()
    )
    try:
        assert held.stdout is not None
        assert await held.stdout.readline() == b"holding\n"
        entering = asyncio.create_task(
            _enter_and_leave(two_processes[0], database_url, "rerun_dbt")
        )
        await asyncio.sleep(2.5)
        assert not entering.done()  # the live holder keeps it
        held.send_signal(signal.SIGKILL)
        started = time.monotonic()
        await asyncio.wait_for(entering, timeout=60)  # the kernel or PostgreSQL freed it
        assert time.monotonic() - started < 60
    finally:
        if held.returncode is None:
            held.kill()
        await held.wait()
