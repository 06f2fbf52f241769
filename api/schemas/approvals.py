"""Approval requests: one person asks, another approves (or rejects), the action runs once."""

from datetime import datetime
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.schemas.incidents import Body, JsonObject, Notes
from api.schemas.playbooks import ActionRead, ActionType


class ApprovalCreate(Body):
    """Either an execution (`action_type` and `params`) or a rollback (`rollback_of`)."""

    action_type: ActionType | None = None
    params: JsonObject = Field(default_factory=dict)
    rollback_of: int | None = Field(default=None, ge=1, le=2**63 - 1)
    reason: Notes | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        if (self.action_type is None) == (self.rollback_of is None):
            raise ValueError("give either action_type (an execution) or rollback_of (a rollback)")
        if self.rollback_of is not None and self.params:
            raise ValueError("a rollback takes no params: it restores what its action captured")
        return self


class Decision(Body):
    notes: Notes | None = None


class ApprovalRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    incident_id: int
    action_type: str
    params: dict[str, Any]
    rollback_of: int | None
    plan: dict[str, Any]
    reason: str | None
    status: str
    requested_by: str
    requested_at: datetime
    expires_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    decision_notes: str | None
    action_id: int | None


class ApprovalList(BaseModel):
    incident_id: int
    approvals: list[ApprovalRead]


class ApprovalDecided(BaseModel):
    approval: ApprovalRead
    action: ActionRead | None = None
