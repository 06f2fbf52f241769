"""Old events are pruned, and how far that reached is remembered for the `reset` decision."""

from datetime import timedelta

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import insert, select

from api.sse import Broadcaster
from models.base import utcnow
from models.db import Database, transaction
from models.event import Event, EventRetention


async def test_prune_deletes_events_older_than_retention(
    app: FastAPI, client: AsyncClient, db: Database
) -> None:
    broadcaster: Broadcaster = app.state.broadcaster
    old, recent = utcnow() - timedelta(days=8), utcnow() - timedelta(days=1)
    async with transaction(db.writer) as session:
        await session.execute(
            insert(Event),
            [{"type": "incident_updated", "payload": {"n": n}, "created_at": at}
             for n, at in enumerate([old, old, recent])],
        )  # fmt: skip

    deleted = await broadcaster.prune()

    async with transaction(db.reader) as session:
        left = [e.payload["n"] for e in await session.scalars(select(Event).order_by(Event.id))]
        retention = await session.get(EventRetention, 1)
    assert deleted == 2
    assert left == [2]
    assert retention is not None
    assert retention.pruned_through == await broadcaster.pruned_through()
    assert await broadcaster.prune() == 0  # nothing more to do
