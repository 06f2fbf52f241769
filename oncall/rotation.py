"""Who is on call: a schedule's shifts, computed from its rotation at any instant.

A rotation of whole days hands off at its wall-clock time in its zone (a week that spans a
daylight saving change is a day of 23 or 25 hours one day, and the hand-off stays at 09:00); a
rotation of hours counts real time from the first hand-off. Before `start` the rotation runs
backwards the same way, so every instant has someone.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from models.oncall import OnCallOverride
from oncall.schedules import Schedule


@dataclass(frozen=True)
class Shift:
    """Who is on call for a stretch of time: the rotation's person, or an override's."""

    person_id: str
    starts_at: datetime  # UTC
    ends_at: datetime
    override_id: int | None = None  # the override that put them there


def _local_handoff(schedule: Schedule, day: date) -> datetime:
    """The hand-off on `day` in the schedule's zone, as a UTC instant (a wall-clock time that a
    spring-forward skips is taken as the instant after it)."""
    rotation = schedule.rotation
    local = datetime.combine(day, rotation.handoff, tzinfo=schedule.zone)
    return local.astimezone(UTC)


def _shift(schedule: Schedule, index: int) -> Shift:
    rotation = schedule.rotation
    member = rotation.members[index % len(rotation.members)]
    if rotation.length_days is not None:
        first = rotation.start + timedelta(days=index * rotation.length_days)
        last = first + timedelta(days=rotation.length_days)
        return Shift(member, _local_handoff(schedule, first), _local_handoff(schedule, last))
    assert rotation.length_hours is not None  # the loader gives exactly one
    origin = _local_handoff(schedule, rotation.start)
    length = timedelta(hours=rotation.length_hours)
    return Shift(member, origin + index * length, origin + (index + 1) * length)


def shift_index(schedule: Schedule, at: datetime) -> int:
    """The number of the shift that holds `at` (0 is the one that begins at `start`)."""
    rotation = schedule.rotation
    origin = _local_handoff(schedule, rotation.start)
    if rotation.length_hours is not None:
        return (at - origin) // timedelta(hours=rotation.length_hours)
    assert rotation.length_days is not None
    # an estimate in real time, then corrected against the wall-clock hand-offs
    index = (at - origin) // timedelta(days=rotation.length_days)
    while _shift(schedule, index).starts_at > at:
        index -= 1
    while _shift(schedule, index).ends_at <= at:
        index += 1
    return index


def on_call(schedule: Schedule, at: datetime) -> tuple[Shift, Shift]:
    """The shift that holds `at` and the one after it."""
    index = shift_index(schedule, at.astimezone(UTC))
    return _shift(schedule, index), _shift(schedule, index + 1)


@dataclass(frozen=True)
class Cover:
    """An override: `person_id` is on call instead for the window (the newest one wins where
    two overlap)."""

    override_id: int
    person_id: str
    starts_at: datetime
    ends_at: datetime


def covers_of(overrides: list[OnCallOverride], schedule: Schedule) -> list[Cover]:
    """The schedule's overrides not cancelled, as covers."""
    return [
        Cover(o.id, o.person, o.starts_at, o.ends_at)
        for o in overrides
        if o.schedule == schedule.name and o.cancelled_at is None
    ]


def _duty_at(schedule: Schedule, covers: list[Cover], at: datetime) -> Shift:
    holding = [c for c in covers if c.starts_at <= at < c.ends_at]
    if holding:
        cover = max(holding, key=lambda c: c.override_id)
        newer = [c for c in covers if c.override_id > cover.override_id]
        starts = max([cover.starts_at, *(c.ends_at for c in newer if c.ends_at <= at)])
        ends = min([cover.ends_at, *(c.starts_at for c in newer if c.starts_at > at)])
        return Shift(cover.person_id, starts, ends, cover.override_id)
    shift = _shift(schedule, shift_index(schedule, at))
    starts = max([shift.starts_at, *(c.ends_at for c in covers if c.ends_at <= at)])
    ends = min([shift.ends_at, *(c.starts_at for c in covers if c.starts_at > at)])
    return Shift(shift.person_id, starts, ends)


def on_duty(schedule: Schedule, covers: list[Cover], at: datetime) -> tuple[Shift, Shift]:
    """Who is on call at `at` and who comes after, the overrides applied."""
    now = _duty_at(schedule, covers, at.astimezone(UTC))
    return now, _duty_at(schedule, covers, now.ends_at)
