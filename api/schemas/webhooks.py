"""Bodies of the Webhooks API (admin)."""

from datetime import datetime
from typing import Annotated, Literal, get_args

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, StringConstraints, UrlConstraints

from api.schemas.incidents import Body, Notes, Text
from models.enums import IncidentKind, Severity

# The SSE stream's event names that describe a change (connected and heartbeat do not), and
# remediation_failed: automation gave up on an incident (remediation/journal.py).
WebhookEvent = Literal[
    "incident_created", "incident_updated", "action_executed", "remediation_failed"
]
TargetUrl = Annotated[AnyHttpUrl, UrlConstraints(max_length=2048)]
Secret = Annotated[str, StringConstraints(min_length=16, max_length=200), Text]


class WebhookCreate(Body):
    url: TargetUrl
    event_types: list[WebhookEvent] = Field(min_length=1, max_length=len(get_args(WebhookEvent)))
    severities: list[Severity] | None = Field(default=None, max_length=4)
    kinds: list[IncidentKind] | None = Field(default=None, max_length=len(IncidentKind))
    secret: Secret | None = Field(
        default=None, description="Signs every delivery; one is made when left out."
    )
    description: Notes | None = None


class WebhookRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    url: str
    description: str | None
    event_types: list[str]
    severities: list[str] | None
    kinds: list[str] | None
    secret_prefix: str  # to tell secrets apart; the secret itself is never returned again
    enabled: bool
    disabled_at: datetime | None
    disabled_reason: str | None
    consecutive_failures: int
    position: int  # the last event id this subscription has looked at
    created_at: datetime
    created_by: str
    deliveries: dict[str, int] = Field(default_factory=dict)  # counts per delivery status


class WebhookCreated(WebhookRead):
    secret: str  # shown in this answer only


class WebhookList(BaseModel):
    webhooks: list[WebhookRead]


class DeliveryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    webhook_id: int
    event_id: int
    event_type: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    first_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    latency_ms: float | None
    created_at: datetime
    completed_at: datetime | None
    redelivery_of: int | None


class DeliveryList(BaseModel):
    webhook_id: int
    deliveries: list[DeliveryRead]
