"""Request and response bodies of the Playbooks API, as the contract shows them."""

from datetime import datetime
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from api.schemas.incidents import Body, JsonObject, Person, Text
from models.action import Action

ActionType = Annotated[str, StringConstraints(min_length=1, max_length=64), Text]


class AvailableAction(BaseModel):
    action_type: str
    display_name: str
    description: str
    params: dict[str, str]
    requires_approval: bool
    estimated_duration: str
    estimated_cost: str
    # what the estimates are: "default, for one model, incremental" or "from the last 3 runs, ..."
    estimate_basis: str
    rollback_supported: bool


class AvailableActions(BaseModel):
    incident_id: int
    available_actions: list[AvailableAction]


class DryRunRequest(Body):
    action_type: ActionType
    params: JsonObject = Field(default_factory=dict)
    requested_by: Person = "api"


class ExecuteRequest(DryRunRequest):
    approved_by: Person | None = None


class RollbackRequest(Body):
    approved_by: Person | None = None
    requested_by: Person = "api"


class DryRunResponse(BaseModel):
    action_type: str
    status: str
    message: str
    details: dict[str, Any]
    estimated_duration: int
    estimated_cost: float
    changes: list[str]
    requires_approval: bool
    action_id: int
    rollback_available: bool


class ExecuteResponse(BaseModel):
    action_id: int
    action_type: str
    status: str
    message: str | None
    details: dict[str, Any]
    estimated_duration: int
    actual_duration: float | None
    estimated_cost: float
    logs_url: str | None
    rollback_available: bool
    created_at: datetime
    completed_at: datetime | None
    approved_by: str | None
    result: dict[str, Any] | None
    flow_run_id: str | None
    flow_run_url: str | None


class RollbackResponse(BaseModel):
    action_id: int
    action_type: str
    status: str
    message: str | None
    rollback_of: int
    flow_run_id: str | None
    flow_run_url: str | None
    created_at: datetime
    completed_at: datetime | None


class ActionRead(BaseModel):
    """An action in the history. An execution's `result` is what its run produced, with the
    contract's `actual_duration` and `logs_url` added (they are also top-level, as
    `actual_duration` and `flow_run_url`), once it has one or has ended; before that, and for a
    dry-run, which ran nothing, it is null."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    action_type: str
    params: dict[str, Any]
    dry_run: bool
    status: str
    approved_by: str | None
    result: dict[str, Any] | None
    created_at: datetime
    message: str | None
    requested_by: str
    requires_approval: bool
    rollback_of: int | None
    rollback_available: bool
    estimated_duration: int
    estimated_cost: float
    actual_duration: float | None
    started_at: datetime | None
    completed_at: datetime | None
    flow_run_id: str | None
    flow_run_url: str | None

    @classmethod
    def of(cls, action: Action, *, rollback_available: bool) -> Self:
        """`action` as shown, with whether it can be rolled back now (playbooks/rollbacks.py), which
        its row alone does not say."""
        return cls.model_validate(action).model_copy(
            update={"rollback_available": rollback_available}
        )

    @model_validator(mode="after")
    def _result_as_the_contract_shows_it(self) -> Self:
        if not self.dry_run and (self.result is not None or self.completed_at is not None):
            self.result = (self.result or {}) | {
                "actual_duration": self.actual_duration,
                "logs_url": self.flow_run_url,
            }
        return self


class ActionHistory(BaseModel):
    incident_id: int
    actions: list[ActionRead]
