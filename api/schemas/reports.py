"""The incident report as data (GET /api/incidents/{id}/report?format=json) and the body that
saves what people wrote in it (PUT)."""

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints

from api.schemas.incidents import Body, Person, Text

Writing = Annotated[str, StringConstraints(max_length=50_000), Text]


class ReportStage(BaseModel):
    stage: str = Field(description="opened, acknowledged, mitigated, resolved or closed")
    at: datetime | None = Field(description="When it happened (null: not yet)")
    after_seconds: float | None = Field(description="Seconds from the opening")
    target_seconds: int | None = Field(description="The SLA target for it, if its severity has one")
    due_at: datetime | None
    state: str | None = Field(description="met, breached or pending (null: no target)")


class ReportMeasurement(BaseModel):
    check_id: str
    at: datetime
    value: float | None
    threshold: float
    passed: bool | None = Field(description="null: the query failed")
    trigger: str
    run_id: int


class ReportAction(BaseModel):
    id: int
    action_type: str
    dry_run: bool
    status: str
    params: dict[str, Any]
    plan: list[str] = Field(description="The changes its dry-run planned")
    message: str | None
    requested_by: str
    approved_by: str | None
    rollback_of: int | None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    duration_seconds: float | None
    flow_run_url: str | None


class ReportStep(BaseModel):
    at: datetime
    actor: str
    verb: str
    from_status: str | None
    to_status: str | None
    notes: str | None


class ReportNotification(BaseModel):
    at: datetime
    recipient: str
    medium: str
    status: str


class ReportWriting(BaseModel):
    root_cause: str
    follow_ups: str
    version: int = Field(description="0 until someone saves; one more at each save")
    updated_by: str | None
    updated_at: datetime | None


class IncidentReport(BaseModel):
    incident_id: int
    summary: str
    key: str
    kind: str
    severity: str
    status: str
    details: dict[str, Any]
    stages: list[ReportStage]
    measurements: list[ReportMeasurement]
    actions: list[ReportAction]
    timeline: list[ReportStep]
    notifications: list[ReportNotification]
    writing: ReportWriting
    generated_at: datetime


class ReportWrite(Body):
    """The humans' sections, saved whole as the next version. `base_version`: the version
    this text was edited from (a 409 if someone saved another meanwhile); omit to overwrite."""

    root_cause: Writing = ""
    follow_ups: Writing = ""
    base_version: int | None = Field(default=None, ge=0, le=2**31, strict=True)
    actor: Person = "api"
