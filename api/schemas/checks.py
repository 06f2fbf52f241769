"""Bodies of the Checks API."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from models.enums import RunTrigger


class CheckRunRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    check_id: str
    started_at: datetime
    duration_ms: float
    value: float | None
    threshold: float
    passed: bool | None
    error: str | None
    context: dict[str, Any]
    incident_id: int | None
    trigger: RunTrigger  # what started it: only the schedule's runs count for stale and next run
    flow_run_id: str | None = None  # the Prefect flow run it ran in; None: in the API's process
    flow_run_url: str | None = None  # that flow run in the Prefect UI


class CheckRunStarted(BaseModel):
    """Run now with `?wait=0` on Prefect: the flow run is created; its check run follows."""

    check_id: str
    flow_run_id: str
    flow_run_url: str | None


class CheckRead(BaseModel):
    id: str
    kind: str
    agent: str
    description: str
    query: str
    comparison: str
    threshold: float
    severity: str
    playbooks: list[str]
    every: float
    auto_resolve: bool
    budget: str | None
    last_run: CheckRunRead | None
    next_run_at: datetime | None
    stale: bool


class CheckList(BaseModel):
    checks: list[CheckRead]


class CheckRuns(BaseModel):
    check_id: str
    runs: list[CheckRunRead]
