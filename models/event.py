"""The `events` table: the transactional outbox and the log that the SSE stream reads.

A row is written in the same transaction as the change it describes, so a committed change
always has its event and a rolled-back one never does.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, utcnow
from models.enums import EventType


class Event(Base):
    __tablename__ = "events"

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
