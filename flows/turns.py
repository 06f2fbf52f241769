"""One run at a time of an action that must not overlap itself (ActionSpec.one_at_a_time),
across every worker, held by Intervene's database and never by Prefect.

Prefect's deployment concurrency limit was the turn before. Prefect 3.9 holds its slot with a
lease that the run renews at its start and every 225 s, and cancels the run when three renewals
in a row fail (about 6 s): a Prefect restart at the wrong moment killed a dbt run mid-way, while
the warm dbt process went on changing the warehouse (PLATFORM_NOTES, Prefect #21064). This turn
lives as long as the run's own process and its database connection:

- PostgreSQL: a session advisory lock on a connection held for the run; the server frees it
  when the connection ends, the run's process dies with it. (Not through a pooler in
  transaction mode: a session lock needs its session.)
- SQLite (one machine by definition): an OS file lock beside the database file, which the
  kernel frees when its holder dies.

A run waiting for its turn is still `scheduled` for Intervene and Running in Prefect, and says
so in its log.
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from filelock import FileLock, Timeout
from sqlalchemy import text
from sqlalchemy.engine import make_url

from flows.logs import run_logger
from models.db import Database

LOCK_SPACE = "intervene.action-turn"
POLL_SECONDS = 1.0  # a waiter tries again this often (cancellable between tries)

TakeTurn = Callable[[], Awaitable[bool]]


@asynccontextmanager
async def one_at_a_time(database: Database, url: str, action_type: str) -> AsyncIterator[None]:
    """Wait for `action_type`'s turn, hold it for the block, give it back."""
    if database.dialect == "postgresql":
        async with _advisory_turn(database, action_type):
            yield
        return
    path = make_url(url).database
    if not path or path == ":memory:":  # one process holds an in-memory database: nothing to share
        yield
        return
    lock = FileLock(f"{path}.{action_type}.turn", thread_local=False)
    await _wait(action_type, lambda: _try_file(lock))
    try:
        yield
    finally:
        lock.release()


async def _try_file(lock: FileLock) -> bool:
    try:
        await asyncio.to_thread(lock.acquire, timeout=POLL_SECONDS)
    except Timeout:
        return False
    return True


@asynccontextmanager
async def _advisory_turn(database: Database, action_type: str) -> AsyncIterator[None]:
    keys = {"space": LOCK_SPACE, "action": action_type}
    async with database.engine.connect() as connection:

        async def take() -> bool:
            taken = await connection.scalar(
                text("select pg_try_advisory_lock(hashtext(:space), hashtext(:action))"), keys
            )
            await connection.commit()  # no transaction left open while the run works
            return bool(taken)

        await _wait(action_type, take)
        try:
            yield
        finally:
            await connection.execute(
                text("select pg_advisory_unlock(hashtext(:space), hashtext(:action))"), keys
            )
            await connection.commit()


async def _wait(action_type: str, take: TakeTurn) -> None:
    if await take():
        return
    run_logger().info("waiting for the turn of %s: another run of it is under way", action_type)
    while True:
        await asyncio.sleep(POLL_SECONDS / 2)
        if await take():
            return
