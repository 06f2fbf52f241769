"""One row per evaluation of a declared check: what was measured, and what it led to."""

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, utcnow
from models.enums import RunTrigger


class CheckRun(Base):
    __tablename__ = "check_runs"
    __table_args__ = (
        Index("ix_check_runs_check_started", "check_id", "started_at"),
        # an incident's runs: the remediation loop's newest violation of each active incident
        Index("ix_check_runs_incident", "incident_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    check_id: Mapped[str] = mapped_column(String(120))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    duration_ms: Mapped[float] = mapped_column(Float)
    value: Mapped[float | None] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    passed: Mapped[bool | None] = mapped_column(Boolean)  # None: the query failed
    error: Mapped[str | None] = mapped_column(Text)
    context: Mapped[dict[str, Any]] = mapped_column(default=dict)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id", ondelete="SET NULL"))
    trigger: Mapped[str] = mapped_column(
        String(16), default=RunTrigger.SCHEDULE.value, server_default=RunTrigger.SCHEDULE.value
    )
    flow_run_id: Mapped[str | None] = mapped_column(String(64))  # None: run in-process
