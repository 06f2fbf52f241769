"""On-call schedules from a file (`INTERVENE_ONCALL_FILE`), refused at start with each problem's
line like the checks file:

    people:
      - id: ada                   # how the rest of the file (and the API) names the person
        name: Ada Lovelace
        email: ada@example.com
        slack_user_id: U0ADA      # optional: Slack's id of the person (U...)
        role: approver            # optional: what they may do from Slack (default responder)
    schedules:
      - name: data-platform
        time_zone: Europe/Paris   # hand-offs happen at this zone's wall-clock time
        rotation:
          members: [ada, grace]   # in turn, from `start`
          length_days: 7          # or length_hours: 12 (whole days keep the hand-off time
          handoff: "09:00"        #   across daylight saving changes; hours count real time)
          start: 2026-11-30       # the first member's first shift begins that day at handoff

Who is on call is computed (oncall/rotation.py), never stored. The same file declares the
escalation policies and channels (oncall/policies.py).
"""

from datetime import date, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from checks import yaml_lines
from checks.config import ConfigError
from models.enums import Role
from oncall.policies import Channel, Policy

NAME = r"^[a-z0-9][a-z0-9_.-]*$"


class Person(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=64, pattern=NAME)
    name: str = Field(min_length=1, max_length=200)
    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    slack_user_id: str | None = Field(default=None, pattern=r"^[UW][A-Z0-9]{2,20}$")
    # what the person may do from Slack (Acknowledge: responder; Approve / Deny: approver)
    role: Role = Role.RESPONDER


class Rotation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    members: list[str] = Field(min_length=1, max_length=100)
    length_days: int | None = Field(default=None, ge=1, le=366)
    length_hours: int | None = Field(default=None, ge=1, le=24 * 366)
    handoff: time = time(9, 0)
    start: date

    @field_validator("handoff", mode="before")
    @classmethod
    def _clock_time(cls, value: object) -> object:
        if isinstance(value, int):  # YAML reads an unquoted 09:00 as sexagesimal 540
            raise ValueError('write the hand-off time in quotes, e.g. "09:00"')
        return value

    @model_validator(mode="after")
    def _one_length(self) -> "Rotation":
        if (self.length_days is None) == (self.length_hours is None):
            raise ValueError("give exactly one of length_days and length_hours")
        return self


class Schedule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64, pattern=NAME)
    time_zone: str = "UTC"
    rotation: Rotation

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (e.g. UTC, Europe/Paris)") from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


class OnCallFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    people: list[Person] = Field(default_factory=list)
    schedules: list[Schedule] = Field(default_factory=list)
    channels: list[Channel] = Field(default_factory=list)
    policies: list[Policy] = Field(default_factory=list)  # oncall/policies.py

    def person(self, person_id: str) -> Person | None:
        return next((p for p in self.people if p.id == person_id), None)

    def by_slack(self, user_id: str) -> Person | None:
        """The person Slack knows as `user_id` (the loader refuses an id given twice)."""
        return next((p for p in self.people if p.slack_user_id == user_id), None)

    def schedule(self, name: str) -> Schedule | None:
        return next((s for s in self.schedules if s.name == name), None)


def load_oncall(path: Path | None) -> OnCallFile:
    """The schedules in `path` (none: no one is on call), or ConfigError naming each problem's
    line: fields, unknown people in a rotation, names given twice."""
    if path is None:
        return OnCallFile()
    document = _document(path)
    oncall, problems = yaml_lines.validated(path, document, OnCallFile)
    if oncall is None:
        raise ConfigError(_listed(problems))
    problems += _reference_problems(path, document, oncall)
    if problems:
        raise ConfigError(_listed(problems))
    return oncall


def _reference_problems(path: Path, document: yaml_lines.Lined, oncall: OnCallFile) -> list[str]:
    problems = []
    for kind, names in (
        ("people", [p.id for p in oncall.people]),
        ("schedules", [s.name for s in oncall.schedules]),
        ("channels", [c.id for c in oncall.channels]),
        ("policies", [p.name for p in oncall.policies]),
    ):
        seen: dict[str, int] = {}
        for index, name in enumerate(names):
            if name in seen:
                line = _line(document, (kind, index))
                problems.append(
                    f"{path}:{line}: {kind}.{index}: {name!r} is also {kind}.{seen[name]}"
                )
            seen.setdefault(name, index)
    slack_ids: dict[str, int] = {}
    for index, person in enumerate(oncall.people):
        if person.slack_user_id is None:
            continue
        if person.slack_user_id in slack_ids:
            line = _line(document, ("people", index, "slack_user_id"))
            problems.append(
                f"{path}:{line}: people.{index}.slack_user_id: "
                f"{person.slack_user_id!r} is also people.{slack_ids[person.slack_user_id]}'s"
            )
        slack_ids.setdefault(person.slack_user_id, index)
    known = {p.id for p in oncall.people}
    for index, schedule in enumerate(oncall.schedules):
        for position, member in enumerate(schedule.rotation.members):
            if member not in known:
                loc = ("schedules", index, "rotation", "members", position)
                problems.append(
                    f"{path}:{_line(document, loc)}: {'.'.join(map(str, loc))}: unknown person "
                    f"{member!r} (people: {', '.join(sorted(known)) or 'none'})"
                )
    return problems + _step_problems(path, document, oncall)


def _step_problems(path: Path, document: yaml_lines.Lined, oncall: OnCallFile) -> list[str]:
    """Each policy step names a schedule, person or channel the file declares."""
    declared = {
        "schedule": {s.name for s in oncall.schedules},
        "person": {p.id for p in oncall.people},
        "channel": {c.id for c in oncall.channels},
    }
    problems = []
    for index, policy in enumerate(oncall.policies):
        for position, step in enumerate(policy.steps):
            for field, names in declared.items():
                name = getattr(step.notify, field)
                if name is None or name in names:
                    continue
                loc = ("policies", index, "steps", position, "notify", field)
                problems.append(
                    f"{path}:{_line(document, loc)}: {'.'.join(map(str, loc))}: unknown {field} "
                    f"{name!r} (declared: {', '.join(sorted(names)) or 'none'})"
                )
    return problems


def _line(document: yaml_lines.Lined, loc: tuple[Any, ...]) -> int:
    return yaml_lines.line_through(document, loc)


def _document(path: Path) -> yaml_lines.Lined:
    try:
        return yaml_lines.read_document(
            path, "on-call file", "a mapping with `people:` and `schedules:`"
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def _listed(problems: list[str]) -> str:
    return "invalid on-call file:\n  " + "\n  ".join(problems)
