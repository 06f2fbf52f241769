"""Automatic remediation as the API shows it: the switch and its budgets (GET /api/automation),
and an incident's attempts (`remediation` of GET /api/incidents/{id}); remediation/view.py
builds both."""

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from api.schemas.incidents import Body, IncidentRead, SlaClock, Text
from models.alert_hold import AlertHold
from models.incident import Incident
from remediation import view

Reason = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500), Text]


class SwitchRequest(Body):
    """Body of pause and resume (optional): why, for whoever finds it switched."""

    reason: Reason | None = None


class ActionBudgetRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    per_hour: int = Field(description="Automatic executions of this action type per hour")
    left: int = Field(description="What is left of them in the last hour")


class BudgetsRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    per_hour: int = Field(description="Automatic executions per hour, all actions together")
    left: int
    actions: dict[str, ActionBudgetRead] = Field(
        description="Each action type an auto policy names or that ran in the last hour"
    )


class InFlightRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    incident_id: int
    check_id: str | None = Field(description="The check whose policy it runs (null: an alert's)")
    rule: str | None = Field(
        default=None, description="The alert routing rule whose policy it runs (a routed alert's)"
    )
    step: str
    action_type: str
    action_id: int | None


class AutomationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    paused: bool = Field(description="Paused: no attempt starts or executes until resumed")
    changed_by: str | None
    changed_at: datetime | None
    reason: str | None
    budgets: BudgetsRead
    in_flight: list[InFlightRead]

    @classmethod
    def of(cls, automation: view.Automation) -> "AutomationRead":
        return cls.model_validate(automation)


class AttemptRead(BaseModel):
    """One automatic attempt, with the ids of what it did (actions, approval, check run)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    attempt: int = Field(description="1, 2, ... within its round (a release starts a new one)")
    step: str
    action_type: str
    action_id: int | None
    dry_run_action_id: int | None
    approval_id: int | None
    verify_check_run_id: int | None
    rollback_action_id: int | None
    outcome: str | None
    detected_at: datetime
    executed_at: datetime | None
    verified_at: datetime | None
    finished_at: datetime | None
    gave_up: bool
    released_at: datetime | None
    released_by: str | None


class VerificationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    check_run_id: int | None
    passed: bool


class RemediationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    policy: dict[str, Any] | None = Field(
        description="The remediation policy of its check, or of the rule that routed its alert"
    )
    mode: str | None = Field(description="auto or propose")
    attempts: int = Field(description="Attempts in the current round")
    max_attempts: int | None
    step: str | None = Field(description="The newest attempt's step")
    in_flight: bool
    held: bool = Field(description="Automation gave up and no one released it: retry does")
    attempts_history: list[AttemptRead]
    verification: VerificationRead | None = Field(
        description="The newest verification: whether the check passed after the action (an"
        " alert's: whether its source resolved it in time; check_run_id null)"
    )

    @classmethod
    def of(cls, remediation: view.IncidentRemediation | None) -> "RemediationRead | None":
        return None if remediation is None else cls.model_validate(remediation)


class RelatedRead(BaseModel):
    """A failure downstream of this incident's (dbt lineage) that joined it instead of opening
    its own incident."""

    model_config = ConfigDict(from_attributes=True)

    kind: str
    key: str
    source: str
    occurrences: int
    firing: bool = Field(description="The source's last word: still failing")
    first_seen_at: datetime
    last_seen_at: datetime


class IncidentDetail(IncidentRead):
    """One incident as GET /api/incidents/{id} reads it: the listed fields, `remediation` where
    its check has a remediation policy or automation tried, and `related` where downstream
    failures joined it. Each is left out otherwise, so that such an incident reads exactly as
    every other answer (and the list) shows it."""

    remediation: RemediationRead | None = Field(
        default=None, description="Automatic remediation; absent where there is none"
    )
    related: list[RelatedRead] | None = Field(
        default=None, description="Downstream failures listed here; absent where there are none"
    )

    @classmethod
    def read(
        cls,
        incident: Incident,
        clock: SlaClock,
        remediation: view.IncidentRemediation | None,
        related: Sequence[AlertHold] = (),
    ) -> "IncidentDetail":
        row = incident.as_row()
        row["sla"] = clock.sla(row)
        row["remediation"] = RemediationRead.of(remediation)
        row["related"] = [RelatedRead.model_validate(hold) for hold in related] or None
        return cls.model_validate(row)

    def json_bytes(self) -> bytes:
        left_out = {name for name in ("remediation", "related") if getattr(self, name) is None}
        return self.model_dump_json(exclude=left_out or None).encode()
