"""Paging people: each incident's escalation (which policy, which round, which step is next)
and one notification row per (incident, round, step, recipient, medium), written once however
many services processes run (a unique index), then delivered at least once with retries.

A round is the incident's reopen count: a reopened incident starts its policy over; a
recurrence changes nothing here, so it never pages again.
"""

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, utcnow

POSTED = "message_ts IS NOT NULL"


class Escalation(Base):
    __tablename__ = "escalations"

    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True
    )
    policy: Mapped[str | None] = mapped_column(String(64))  # None: no policy fits, no one paged
    round: Mapped[int] = mapped_column(default=0)
    started_at: Mapped[datetime]  # step n is due started_at + the waits of the steps before it
    next_step: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Notification(Base):
    __tablename__ = "notifications"
    __table_args__ = (
        Index(
            "uq_notifications_once",
            "incident_id",
            "round",
            "step",
            "recipient",
            "medium",
            unique=True,
        ),
        Index("ix_notifications_queue", "status", "next_attempt_at"),
        Index(
            "ix_notifications_posted",
            "incident_id",
            sqlite_where=text(POSTED),
            postgresql_where=text(POSTED),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    policy: Mapped[str] = mapped_column(String(64))
    round: Mapped[int]
    step: Mapped[int]
    target: Mapped[str] = mapped_column(String(140))  # as the step says: "schedule:data-platform"
    recipient: Mapped[str] = mapped_column(String(140))  # "person:ada" or "channel:data-alerts"
    medium: Mapped[str] = mapped_column(String(16))  # email or slack
    address: Mapped[str] = mapped_column(String(320))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # delivered, failed
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]
    # Slack: where the message is (to update it in place) and when it last showed the incident
    message_channel: Mapped[str | None] = mapped_column(String(32))
    message_ts: Mapped[str | None] = mapped_column(String(32))
    synced_at: Mapped[datetime | None]
