"""The `events` table: the transactional outbox and the log that the SSE stream reads.

A row is written in the same transaction as the change it describes, so a committed change
always has its event and a rolled-back one never does.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, event, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import Base, BigId, utcnow
from models.bulk import insert_many
from models.enums import EventType


class Event(Base):
    __tablename__ = "events"
    # Never reuse an id (SQLite would after the newest rows were deleted): ids are positions.
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    type: Mapped[str] = mapped_column(String(64), index=True)
    incident_id: Mapped[int | None] = mapped_column(
        ForeignKey("incidents.id", ondelete="SET NULL"), index=True
    )
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @classmethod
    def of(cls, type_: EventType, payload: dict[str, Any]) -> "Event":
        return cls(type=type_.value, payload=payload)


class EventRetention(Base):
    """One row: the highest event id pruned so far. A client whose Last-Event-ID is older than
    that missed events that no longer exist, and gets a `reset` event first."""

    __tablename__ = "event_retention"

    id: Mapped[int] = mapped_column(primary_key=True, default=1)
    pruned_through: Mapped[int] = mapped_column(BigId, default=0)
    pruned_at: Mapped[datetime | None]


NOTIFY_CHANNEL = "intervene_events"
_ORDER_LOCK = 0x1A7E_E7E7  # one constant for every Intervene process


# one round trip for both: the NOTIFY is only delivered at commit, whichever runs first
_LOCK_AND_NOTIFY = text("SELECT pg_advisory_xact_lock(:key), pg_notify(:channel, '')")
_LOCK_AND_NOTIFY_PARAMS = {"key": _ORDER_LOCK, "channel": NOTIFY_CHANNEL}
# the same, for a statement that takes the lock itself before it draws event ids
# (models/services/incidents.py, count_repeats)
ORDER_PARAMS = {"order_key": _ORDER_LOCK, "order_channel": NOTIFY_CHANNEL}


def order_new_events(session: Session, _context: object, _instances: object) -> None:
    """Make event ids follow commit order on PostgreSQL, and wake the SSE readers.

    A sequence hands out ids at insert time, so two transactions can commit out of id order
    and a reader of `id > last` would skip the late one forever. Taking a transaction-level
    advisory lock before inserting events makes event-writing transactions take turns from
    their first event to their commit; NOTIFY is delivered on commit. Events are therefore
    written last in a transaction (after its row locks), which keeps the lock short and the
    lock order fixed. SQLite needs neither: its writers already take turns (BEGIN IMMEDIATE).
    """
    if not any(isinstance(obj, Event) for obj in session.new):
        return
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        return
    connection.execute(_LOCK_AND_NOTIFY, _LOCK_AND_NOTIFY_PARAMS)


event.listen(Session, "before_flush", order_new_events)


async def insert_events(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Insert many event rows (`type`, `incident_id`, `payload`, `created_at`) in one
    statement, with what `order_new_events` does for the ORM's: on PostgreSQL the advisory lock
    that keeps ids in commit order, and the NOTIFY that wakes the SSE readers."""
    if not rows:
        return
    await order_events(session)
    await insert_many(session, Event, rows)


async def order_events(session: AsyncSession) -> None:
    """What `order_new_events` does before events are written by a statement of one's own: on
    PostgreSQL the advisory lock that keeps ids in commit order, and the NOTIFY."""
    if (await session.connection()).dialect.name == "postgresql":
        await session.execute(_LOCK_AND_NOTIFY, _LOCK_AND_NOTIFY_PARAMS)
