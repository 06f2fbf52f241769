"""Outgoing webhooks: subscriptions, and one delivery row per event each subscription takes.

A subscription's `position` is the id of the last event it has looked at. Taking events
writes their delivery rows and moves the position in one transaction, so after a restart a
subscription resumes exactly where it was: nothing skipped, nothing queued twice. Deliveries
are sent one at a time per subscription, oldest first (in order); `lease_until` keeps two
workers from sending for the same subscription at once.
"""

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, utcnow
from models.enums import DeliveryStatus


class Webhook(Base):
    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str | None] = mapped_column(Text)
    event_types: Mapped[list[str]] = mapped_column(JSON)
    severities: Mapped[list[str] | None] = mapped_column(JSON)  # None: every severity
    kinds: Mapped[list[str] | None] = mapped_column(JSON)  # None: every kind
    # Kept as given: signing needs the secret itself. It is never returned after creation.
    secret: Mapped[str] = mapped_column(String(200))
    secret_prefix: Mapped[str] = mapped_column(String(16))
    enabled: Mapped[bool] = mapped_column(default=True)
    disabled_at: Mapped[datetime | None]
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    position: Mapped[int] = mapped_column(BigId, default=0)  # the last event id looked at
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(320))
    deleted_at: Mapped[datetime | None]  # kept (with its deliveries) for the record


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_queue", "webhook_id", "status", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(BigId)  # events may be pruned; the body is kept here
    event_type: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)  # the exact JSON sent (and signed) every attempt
    status: Mapped[str] = mapped_column(String(20), default=DeliveryStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    first_attempt_at: Mapped[datetime | None]  # retries are bounded from here
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    latency_ms: Mapped[float | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None]
    redelivery_of: Mapped[int | None] = mapped_column(BigId)
