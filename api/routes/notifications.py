"""Who was told about an incident: its notifications, by escalation step (oncall/escalation.py),
each with where it went, by which medium, and whether it was delivered or why not yet."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from api.deps import SessionDep
from models.services import notifications as service
from models.services.incidents import get_incident

router = APIRouter(tags=["oncall"])

IncidentId = Annotated[int, Path(ge=1, le=2**63 - 1, description="Incident ID")]


class NotificationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    policy: str
    round: int = Field(description="0, then one more each time the incident was reopened")
    step: int = Field(description="The policy's step (0 is the first)")
    target: str = Field(description="What the step names: schedule:…, person:… or channel:…")
    recipient: str = Field(description="Whom it reached: person:… or channel:…")
    medium: str
    address: str
    status: str = Field(description="pending, delivered or failed (after every retry)")
    attempts: int
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime
    delivered_at: datetime | None


class NotificationList(BaseModel):
    notifications: list[NotificationRead]


@router.get("/incidents/{incident_id}/notifications")
async def list_notifications(incident_id: IncidentId, session: SessionDep) -> NotificationList:
    """Every notification of the incident, in escalation order."""
    await get_incident(session, incident_id)  # 404 for an unknown incident
    rows = await service.of_incident(session, incident_id)
    return NotificationList(notifications=[NotificationRead.model_validate(r) for r in rows])
