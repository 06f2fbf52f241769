"""PostgreSQL's wake-up for readers of the events table: every commit that wrote events sends a
NOTIFY on NOTIFY_CHANNEL (models/event.py); a reader that LISTENs is woken at once instead of
polling. Used by the SSE broadcaster (api/sse.py) and the notifier (deployments/notifier.py)."""

import asyncio
import logging

import psycopg
from sqlalchemy.engine import make_url

from models.event import NOTIFY_CHANNEL

log = logging.getLogger("intervene.listen")

LISTEN_WAIT_SECONDS = 5.0  # short waits: a cancel (shutdown) never finds it stuck


async def wake_on_events(database_url: str, wake: asyncio.Event) -> None:
    """Set `wake` on every NOTIFY, forever; a lost connection is made again after 2 s, and
    `wake` is set once connected (to catch up on anything written while not listening)."""
    url = make_url(database_url).set(drivername="postgresql")
    conninfo = url.render_as_string(hide_password=False)
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
                await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                wake.set()
                while True:
                    async for _ in conn.notifies(timeout=LISTEN_WAIT_SECONDS):
                        wake.set()
        except (psycopg.Error, OSError):
            log.warning("LISTEN connection lost; polling until it is back", exc_info=True)
            await asyncio.sleep(2)
