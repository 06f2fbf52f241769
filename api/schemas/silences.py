"""Silences (maintenance windows) as the API takes and shows them."""

from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from api.schemas.incidents import Body, Person, Text
from models.alert import Source
from models.alert_hold import AlertHold, Silence
from models.enums import IncidentKind
from models.services.silences import MAX_DURATION, Held, SilenceState, state_of

Glob = Annotated[str, StringConstraints(min_length=1, max_length=200), Text]
LabelValue = Annotated[str, StringConstraints(min_length=1, max_length=200), Text]


class Matchers(Body):
    """What a silence keeps quiet: every matcher given must match (globs: `*`, `?`, `[...]`)."""

    kind: IncidentKind | None = None
    key: Glob | None = Field(default=None, description="A glob on the incident key")
    source: Source | None = None
    labels: dict[Annotated[str, StringConstraints(min_length=1, max_length=128)], LabelValue] = (
        Field(default_factory=dict, max_length=20, description="Label name -> glob on its value")
    )

    @model_validator(mode="after")
    def _something(self) -> "Matchers":
        if not (self.kind or self.key or self.source or self.labels):
            raise ValueError("give at least one matcher (kind, key, source or labels)")
        return self


class SilenceCreate(Body):
    matchers: Matchers
    starts_at: AwareDatetime | None = Field(default=None, description="Default: now")
    ends_at: AwareDatetime | None = None
    duration_seconds: int | None = Field(default=None, ge=60, le=int(MAX_DURATION.total_seconds()))
    reason: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000), Text
    ]
    created_by: Person = "api"

    @model_validator(mode="after")
    def _one_end(self) -> "SilenceCreate":
        if (self.ends_at is None) == (self.duration_seconds is None):
            raise ValueError("give ends_at or duration_seconds (one of them)")
        return self

    def window(self, now: datetime) -> tuple[datetime, datetime]:
        starts = self.starts_at or now
        ends = self.ends_at or starts + timedelta(seconds=self.duration_seconds or 0)
        return starts, ends


class HeldAlertRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    kind: str
    key: str
    source: str
    occurrences: int
    firing: bool
    first_seen_at: datetime
    last_seen_at: datetime
    released_at: datetime | None
    opened_incident_id: int | None


class SilenceRead(BaseModel):
    id: int
    matchers: dict[str, Any]
    starts_at: datetime
    ends_at: datetime
    state: SilenceState
    reason: str
    created_by: str
    created_at: datetime
    ended_by: str | None
    held_alerts: int = Field(description="Alerts (keys) it kept quiet")
    suppressed: int = Field(description="Occurrences of them it kept quiet")
    held: list[HeldAlertRead] | None = Field(
        default=None, description="On GET /api/silences/{id}: the alerts, newest first"
    )

    @classmethod
    def of(
        cls, silence: Silence, at: datetime, held: Held, holds: list[AlertHold] | None = None
    ) -> "SilenceRead":
        return cls(
            id=silence.id,
            matchers=silence.matchers,
            starts_at=silence.starts_at,
            ends_at=silence.ends_at,
            state=state_of(silence, at),
            reason=silence.reason,
            created_by=silence.created_by,
            created_at=silence.created_at,
            ended_by=silence.ended_by,
            held_alerts=held.alerts,
            suppressed=held.occurrences,
            held=None if holds is None else [HeldAlertRead.model_validate(h) for h in holds],
        )


class SilenceList(BaseModel):
    silences: list[SilenceRead]
    total: int
    limit: int
    offset: int
