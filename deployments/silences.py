"""Releasing alerts held by silences that ended: an alert still firing when its silence ends
opens its incident then, once (models/services/alert_holds.py), whichever of the services
processes gets there first (the holds are locked, skipping those another process holds)."""

import asyncio
import logging

from models.base import utcnow
from models.db import Database, connect, transaction
from models.services.alert_holds import release_ended
from models.services.incidents import IncidentCap
from models.settings import Settings

log = logging.getLogger("intervene.silences")


async def release_once(database: Database, settings: Settings) -> list[int]:
    """The incidents opened (or counted) for holds whose silence ended, one batch."""
    cap = IncidentCap(limit=settings.incident_cap_per_key, window=settings.incident_cap_window)
    async with transaction(database.writer) as session:
        return await release_ended(session, at=utcnow(), cap=cap)


async def release_forever(settings: Settings) -> None:
    database = connect(settings.database_url, pool_size=1, max_overflow=1)
    try:
        while True:
            try:
                opened = await release_once(database, settings)
                if opened:
                    log.info("silences ended: opened or counted incidents %s", opened)
                    continue  # perhaps more than one batch
            except Exception:  # keep going: the next pass may succeed
                log.exception("releasing silenced alerts failed")
            await asyncio.sleep(settings.silence_poll_seconds)
    finally:
        await database.dispose()
