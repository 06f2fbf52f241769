"""Automatic remediation: one row per attempt to fix an incident, and the automation switch.

An attempt moves through its steps, only forward:

    planned -> awaiting_approval -> executing -> verifying -> verified | ineffective
            \\-----------------------^          \\-> done (no verification asked for)
    any step in flight -> failed (the action failed, was refused or rejected) | cancelled

`finished_at` is null while it is in flight, and the database allows one attempt in flight per
incident key (`uq_remediations_in_flight`): racing openers, duplicate events and several
service processes never start two. The attempt that ends a round without a fix carries
`gave_up`; no automatic attempt follows it until a person releases the incident (acknowledges
it, or asks for a retry), which stamps `released_at`.

`executed_at` marks the attempts that ran an action: the hourly budgets count those. An attempt
runs the policy of a check (`check_id`, verified by running the check again) or of an alert
routing rule (`rule`, verified by the alert's source resolving it: alerts/rules.py).
"""

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, utcnow
from models.enums import RemediationStep

_IN_FLIGHT_SQL = "finished_at IS NULL"


class Remediation(Base):
    __tablename__ = "remediations"
    __table_args__ = (
        Index(
            "uq_remediations_in_flight",
            "key",
            unique=True,
            sqlite_where=text(_IN_FLIGHT_SQL),
            postgresql_where=text(_IN_FLIGHT_SQL),
        ),
        Index("ix_remediations_incident", "incident_id", "id"),
        Index("ix_remediations_executed_at", "executed_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(220))  # `<kind>:<key>` of the incident
    check_id: Mapped[str | None] = mapped_column(String(120))  # whose policy: a check's...
    rule: Mapped[str | None] = mapped_column(String(100))  # ...or an alert routing rule's
    attempt: Mapped[int]  # 1, 2, ... within the round (a release starts a new round)
    step: Mapped[str] = mapped_column(String(24), default=RemediationStep.PLANNED.value)
    action_type: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    policy: Mapped[dict[str, Any]] = mapped_column(default=dict)  # as it was when it started
    trigger_run_id: Mapped[int | None] = mapped_column(BigId)  # the failing check run, if any
    detected_at: Mapped[datetime]  # when that run found the failure (an alert: it fired)
    dry_run_action_id: Mapped[int | None] = mapped_column(
        ForeignKey("actions.id", ondelete="SET NULL")
    )
    approval_id: Mapped[int | None] = mapped_column(
        ForeignKey("approval_requests.id", ondelete="SET NULL")
    )
    action_id: Mapped[int | None] = mapped_column(ForeignKey("actions.id", ondelete="SET NULL"))
    verify_flow_run_id: Mapped[str | None] = mapped_column(String(64))
    verify_check_run_id: Mapped[int | None] = mapped_column(BigId)
    rollback_action_id: Mapped[int | None] = mapped_column(
        ForeignKey("actions.id", ondelete="SET NULL")
    )
    outcome: Mapped[str | None] = mapped_column(Text)  # what happened, in words
    gave_up: Mapped[bool] = mapped_column(default=False)
    released_at: Mapped[datetime | None]
    released_by: Mapped[str | None] = mapped_column(String(320))
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    step_started_at: Mapped[datetime] = mapped_column(default=utcnow)
    executed_at: Mapped[datetime | None]
    verified_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    @property
    def origin(self) -> str:
        """Whose policy it runs: the check's id, or `rule:<name>` for a routed alert's."""
        return self.check_id if self.check_id is not None else f"rule:{self.rule}"

    @property
    def origin_words(self) -> str:
        return f"check {self.check_id}" if self.check_id is not None else f"alert rule {self.rule}"

    @property
    def in_flight(self) -> bool:
        return self.finished_at is None

    @property
    def blocks(self) -> bool:
        """Whether it holds automation off its incident: it gave up, and no one released it."""
        return self.gave_up and self.released_at is None


class AutomationState(Base):
    """The kill switch: one row (id 1), made by the migration that created the table."""

    __tablename__ = "automation_state"

    id: Mapped[int] = mapped_column(primary_key=True, default=1)
    paused: Mapped[bool] = mapped_column(default=False)
    changed_by: Mapped[str | None] = mapped_column(String(320))
    changed_at: Mapped[datetime | None]
    reason: Mapped[str | None] = mapped_column(Text)
