"""Alerts that opened nothing yet, and the silences that keep some of them quiet.

A firing alert whose key has no active incident either opens one or is *held*:
- `silenced`: a silence (maintenance window) matches it. When the silence ends while the alert
  still fires, the hold is released into an incident, once (models/services/alert_holds.py);
- `pending`: its routing rule opens only after N occurrences within a window (Alertmanager's
  `for`), and it has not reached N yet;
- `related`: a failure downstream (dbt lineage) of a node whose incident is active: it is listed
  on that incident (`incident_id`) instead of opening its own.

A hold is counted (`occurrences`) and visible; at most one unreleased hold per (kind, key), which
the database enforces like the one active incident per key.
"""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, utcnow

_UNRELEASED_SQL = "released_at IS NULL"


class HoldReason(StrEnum):
    SILENCED = "silenced"
    PENDING = "pending"
    RELATED = "related"


class Silence(Base):
    """Matchers (kind, key glob, source, labels) and a window: alerts it matches open nothing."""

    __tablename__ = "silences"
    __table_args__ = (Index("ix_silences_ends_at", "ends_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # {"kind": str | None, "key": glob | None, "source": str | None, "labels": {name: value}}
    matchers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_by: Mapped[str | None] = mapped_column(String(320))  # ended early, through the API

    def active_at(self, at: datetime) -> bool:
        return self.starts_at <= at < self.ends_at


class AlertHold(Base):
    __tablename__ = "alert_holds"
    __table_args__ = (
        Index(
            "uq_alert_holds_unreleased",
            "kind",
            "key",
            unique=True,
            sqlite_where=text(_UNRELEASED_SQL),
            postgresql_where=text(_UNRELEASED_SQL),
        ),
        Index("ix_alert_holds_silence", "silence_id"),
        Index("ix_alert_holds_incident", "incident_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(16))
    silence_id: Mapped[int | None] = mapped_column(ForeignKey("silences.id", ondelete="SET NULL"))
    # the active incident a related alert joined (the upstream one)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    occurrences: Mapped[int] = mapped_column(default=1)
    firing: Mapped[bool] = mapped_column(default=True)  # the source's last word
    first_seen_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    # what to open when it is released: severity, summary, details, playbooks, metadata
    opens: Mapped[dict[str, Any]] = mapped_column(default=dict)
    released_at: Mapped[datetime | None]
    opened_incident_id: Mapped[int | None] = mapped_column(BigId)  # what its release opened
