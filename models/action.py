"""Playbook actions: one row per dry-run, execution or rollback, in the incident's history.

Status only moves forward (pending -> scheduled -> running -> a terminal status): updates come
from the API, from flow state hooks in the worker and from the reconciler, in any order and
possibly twice, so `advance()` ignores anything that would move an action backwards. One
exception, `settle()`: the flow's own outcome replaces a crash declared while it still worked.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, JsonDoc, utcnow
from models.enums import ActionStatus, EventType
from models.event import Event


class Action(Base):
    __tablename__ = "actions"
    __table_args__ = (
        UniqueConstraint("incident_id", "idempotency_key", name="uq_actions_idempotency"),
        Index("ix_actions_incident_kind_created", "incident_id", "dry_run", "created_at"),
        Index("ix_actions_status", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    action_type: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]]
    dry_run: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(32))
    message: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    changes: Mapped[list[str]] = mapped_column(JsonDoc, default=list)
    result: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc)
    requires_approval: Mapped[bool] = mapped_column(Boolean, default=False)
    approved_by: Mapped[str | None] = mapped_column(String(320))
    requested_by: Mapped[str] = mapped_column(String(320))
    estimated_duration: Mapped[int] = mapped_column(default=0)
    estimated_cost: Mapped[float] = mapped_column(Float, default=0.0)
    actual_duration: Mapped[float | None] = mapped_column(Float)
    rollback_available: Mapped[bool] = mapped_column(Boolean, default=False)
    rollback_of: Mapped[int | None] = mapped_column(ForeignKey("actions.id", ondelete="SET NULL"))
    prior_state: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    flow_run_id: Mapped[str | None] = mapped_column(String(64))
    flow_run_url: Mapped[str | None] = mapped_column(String(1000))
    heartbeat_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def action_status(self) -> ActionStatus:
        return ActionStatus(self.status)

    def advance(
        self,
        status: ActionStatus,
        *,
        at: datetime,
        message: str | None = None,
        result: dict[str, Any] | None = None,
    ) -> Event | None:
        """Move to `status` unless that is a step back; return the event to record, if any."""
        if status.rank <= self.action_status.rank:
            return None
        return self._move(status, at=at, message=message, result=result)

    def settle(
        self,
        status: ActionStatus,
        *,
        at: datetime,
        message: str | None = None,
        result: dict[str, Any] | None = None,
    ) -> Event | None:
        """The flow's own final word, written as its work ends: it moves forward as `advance`
        does, and it also replaces a crash declared while the flow was still working (silence
        misjudged, a runner that lost its Prefect server): the work was done, this is how it
        ended. Another final status stays."""
        if not self.open_to_outcome:
            return None
        if self.action_status is ActionStatus.CRASHED and status is not ActionStatus.CRASHED:
            return self._move(status, at=at, message=message, result=result)
        return self.advance(status, at=at, message=message, result=result)

    @property
    def open_to_outcome(self) -> bool:
        """Whether the flow's own outcome may still be recorded (settle): not final yet, or
        only declared crashed."""
        status = self.action_status
        return not status.is_terminal or status is ActionStatus.CRASHED

    def _move(
        self,
        status: ActionStatus,
        *,
        at: datetime,
        message: str | None,
        result: dict[str, Any] | None,
    ) -> Event | None:
        self.status = status.value
        if message is not None:
            self.message = message
        if result is not None:
            self.result = result
        if status is ActionStatus.RUNNING:
            self.started_at = self.started_at or at
            self.heartbeat_at = at
        if status.is_terminal:
            self.completed_at = at
            if self.started_at is not None:
                self.actual_duration = round((at - self.started_at).total_seconds(), 3)
        self.updated_at = at
        if status in (ActionStatus.PENDING, ActionStatus.SCHEDULED):
            return None  # not news: the execute response already says so
        return self.executed_event()

    def executed_event(self) -> Event:
        event = Event.of(
            EventType.ACTION_EXECUTED,
            {
                "incident_id": self.incident_id,
                "action_id": self.id,
                "action_type": self.action_type,
                "status": self.status,
                "dry_run": self.dry_run,
                "rollback_of": self.rollback_of,
            },
        )
        event.incident_id = self.incident_id
        return event
