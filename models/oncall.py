"""On-call overrides: someone covers a schedule for a while, made through the API (who covers
whom, from when to when, by whom). The schedules themselves are a file (oncall/schedules.py)."""

from datetime import datetime

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, utcnow


class OnCallOverride(Base):
    __tablename__ = "oncall_overrides"
    __table_args__ = (Index("ix_oncall_overrides_schedule_ends_at", "schedule", "ends_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    schedule: Mapped[str] = mapped_column(String(64))
    person: Mapped[str] = mapped_column(String(64))  # on call instead, for the window
    covers: Mapped[str | None] = mapped_column(String(64))  # the rotation's person, when made
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    cancelled_by: Mapped[str | None] = mapped_column(String(320))
    cancelled_at: Mapped[datetime | None]

    def holds(self, at: datetime) -> bool:
        return self.cancelled_at is None and self.starts_at <= at < self.ends_at
