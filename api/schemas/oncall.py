"""Who is on call, as GET /api/oncall shows it (oncall/rotation.py computes it), and the
overrides made through the API."""

from datetime import UTC, datetime, timedelta
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, Field, StringConstraints, model_validator

from api.schemas.incidents import Body, Text
from models.oncall import OnCallOverride
from models.services.oncall_overrides import MAX_DURATION, OverrideState, state_of
from oncall.policies import Channel, Policy
from oncall.rotation import Shift, covers_of, on_duty
from oncall.schedules import OnCallFile

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64), Text]


class PersonRead(BaseModel):
    id: str = Field(description="How schedules, policies and overrides name the person")
    name: str
    email: str
    slack_user_id: str | None

    @classmethod
    def named(cls, people: OnCallFile, person_id: str) -> "PersonRead":
        """The person of the file, or for one an override named and the file no longer has,
        the id alone."""
        person = people.person(person_id)
        if person is None:
            return cls(id=person_id, name=person_id, email="", slack_user_id=None)
        return cls(**person.model_dump())


class ShiftRead(BaseModel):
    person: PersonRead
    starts_at: datetime
    ends_at: datetime
    override_id: int | None = Field(
        default=None, description="The override that put this person on call (else the rotation)"
    )

    @classmethod
    def of(cls, duty: Shift, people: OnCallFile) -> "ShiftRead":
        return cls(
            person=PersonRead.named(people, duty.person_id),
            starts_at=duty.starts_at,
            ends_at=duty.ends_at,
            override_id=duty.override_id,
        )


class ScheduleRead(BaseModel):
    name: str
    time_zone: str = Field(description="Hand-offs happen at this zone's wall-clock time")
    members: list[str] = Field(description="The rotation's people, in turn")
    now: ShiftRead = Field(description="Who is on call at `at`, overrides applied")
    next: ShiftRead = Field(description="Who comes after")


class OnCallRead(BaseModel):
    at: datetime = Field(description="The instant asked about (default: now)")
    schedules: list[ScheduleRead]
    people: list[PersonRead] = Field(description="Everyone the on-call file knows")

    @classmethod
    def of(cls, oncall: OnCallFile, at: datetime, overrides: list[OnCallOverride]) -> "OnCallRead":
        """Each schedule's duty at `at` and the next, with the overrides in force (what the API
        and `intervene oncall` show)."""
        instant = at.astimezone(UTC)
        schedules = []
        for schedule in oncall.schedules:
            now, after = on_duty(schedule, covers_of(overrides, schedule), instant)
            schedules.append(
                ScheduleRead(
                    name=schedule.name,
                    time_zone=schedule.time_zone,
                    members=list(schedule.rotation.members),
                    now=ShiftRead.of(now, oncall),
                    next=ShiftRead.of(after, oncall),
                )
            )
        people = [PersonRead(**person.model_dump()) for person in oncall.people]
        return cls(at=instant, schedules=schedules, people=people)


class PoliciesRead(BaseModel):
    """The escalation policies and channels of the on-call file, as declared (the first
    policy whose match fits an incident is its policy)."""

    policies: list[Policy]
    channels: list[Channel]


class OverrideCreate(Body):
    """`person` is on call for `schedule` from `starts_at` (default: now) until `ends_at` (or for
    `duration_seconds`), in place of whoever the rotation has then."""

    schedule: Name
    person: Name
    starts_at: AwareDatetime | None = Field(default=None, description="Default: now")
    ends_at: AwareDatetime | None = None
    duration_seconds: int | None = Field(default=None, ge=60, le=int(MAX_DURATION.total_seconds()))
    reason: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000), Text] = ""

    @model_validator(mode="after")
    def _one_end(self) -> "OverrideCreate":
        if (self.ends_at is None) == (self.duration_seconds is None):
            raise ValueError("give ends_at or duration_seconds (one of them)")
        return self

    def window(self, now: datetime) -> tuple[datetime, datetime]:
        starts = (self.starts_at or now).astimezone(UTC)
        ends = self.ends_at or starts + timedelta(seconds=self.duration_seconds or 0)
        return starts, ends.astimezone(UTC)


class OverrideRead(BaseModel):
    id: int
    schedule: str
    person: PersonRead = Field(description="On call instead, for the window")
    covers: PersonRead | None = Field(description="Whom the rotation had on call when it starts")
    starts_at: datetime
    ends_at: datetime
    state: OverrideState
    reason: str
    created_by: str
    created_at: datetime
    cancelled_by: str | None
    cancelled_at: datetime | None

    @classmethod
    def of(cls, override: OnCallOverride, people: OnCallFile, at: datetime) -> "OverrideRead":
        return cls(
            id=override.id,
            schedule=override.schedule,
            person=PersonRead.named(people, override.person),
            covers=None if override.covers is None else PersonRead.named(people, override.covers),
            starts_at=override.starts_at,
            ends_at=override.ends_at,
            state=state_of(override, at),
            reason=override.reason,
            created_by=override.created_by,
            created_at=override.created_at,
            cancelled_by=override.cancelled_by,
            cancelled_at=override.cancelled_at,
        )


class OverrideList(BaseModel):
    overrides: list[OverrideRead]
    total: int
    limit: int
    offset: int
