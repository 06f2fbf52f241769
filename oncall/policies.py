"""Escalation policies and channels, declared in the on-call file beside the schedules:

    channels:                     # where a step may post besides people
      - id: data-alerts
        slack_channel: C0DATA0001 # a Slack channel id, and/or
        email: data-alerts@example.com
    policies:                     # the first whose match fits an incident is its policy
      - name: sev1-data
        match: {severity: [sev1, sev2], kind: [invariant, alert], key: "data_*"}  # all given
        steps:                    # in order; each waits for an acknowledgement, then the next
          - notify: {schedule: data-platform}   # exactly one of schedule, person, channel
            wait_minutes: 5
          - notify: {person: grace}
            wait_minutes: 10
          - notify: {channel: data-alerts}

A step naming a schedule, person or channel the file does not declare is refused at start with
its line (oncall/schedules.py checks the names), never found missing when an incident pages.
"""

from fnmatch import fnmatchcase

from pydantic import BaseModel, ConfigDict, Field, model_validator

from models.enums import IncidentKind, Severity

NAME = r"^[a-z0-9][a-z0-9_.-]*$"


class Channel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=64, pattern=NAME)
    slack_channel: str | None = Field(default=None, pattern=r"^[CGD][A-Z0-9]{2,20}$")
    email: str | None = Field(default=None, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")

    @model_validator(mode="after")
    def _somewhere(self) -> "Channel":
        if self.slack_channel is None and self.email is None:
            raise ValueError("give slack_channel, email or both")
        return self


class Target(BaseModel):
    """Whom a step notifies: the schedule's person on call then, a person, or a channel."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schedule: str | None = None
    person: str | None = None
    channel: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> "Target":
        if sum(v is not None for v in (self.schedule, self.person, self.channel)) != 1:
            raise ValueError("name exactly one of schedule, person and channel")
        return self


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    notify: Target
    wait_minutes: int = Field(default=5, ge=1, le=24 * 60)  # for an acknowledgement, then on


class PolicyMatch(BaseModel):
    """Every field given must fit; none given fits every incident."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    severity: list[Severity] = Field(default_factory=list)
    kind: list[IncidentKind] = Field(default_factory=list)
    key: str | None = Field(default=None, min_length=1, max_length=200)  # a glob

    def fits(self, kind: IncidentKind, severity: Severity, key: str) -> bool:
        return (
            (not self.severity or severity in self.severity)
            and (not self.kind or kind in self.kind)
            and (self.key is None or fnmatchcase(key, self.key))
        )


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64, pattern=NAME)
    match: PolicyMatch = Field(default_factory=PolicyMatch)
    steps: list[Step] = Field(min_length=1, max_length=20)


def policy_for(
    policies: list[Policy], kind: IncidentKind, severity: Severity, key: str
) -> Policy | None:
    """The first policy whose match fits the incident, or None (nobody is paged)."""
    return next((p for p in policies if p.match.fits(kind, severity, key)), None)
