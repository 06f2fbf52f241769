"""SLA timers: how long an incident of each severity may take to be acknowledged, mitigated
and resolved.

Every timer starts at the incident's `created_at`. A stage counts as done once the incident
reached it or any later one: an incident mitigated straight from open was acknowledged then
too, and a closed one was resolved. Timers are computed, never stored, from the incident's
timestamps, the targets and a `now` the caller passes (the sweep and the tests choose their
clock). Only the announcement of a breach is stored (`Incident.sla_*_breached_at`), so that
it is written once.
"""

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from pydantic import BaseModel, ConfigDict, PositiveInt

from models.enums import Severity, SlaState, SlaTimer

if TYPE_CHECKING:
    from models.incident import Incident

MINUTE = 60
HOUR = 60 * MINUTE
DAY = 24 * HOUR


class SlaTargets(BaseModel):
    """Seconds from creation to each stage; None: no target."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    acknowledge: PositiveInt | None = None
    mitigate: PositiveInt | None = None
    resolve: PositiveInt | None = None

    def of(self, timer: SlaTimer) -> int | None:
        seconds: int | None = getattr(self, timer.value)
        return seconds


# The severity runbook's targets. Severities missing from a configured table keep these.
DEFAULT_SLA_TARGETS: dict[Severity, SlaTargets] = {
    Severity.SEV1: SlaTargets(acknowledge=5 * MINUTE, mitigate=30 * MINUTE, resolve=4 * HOUR),
    Severity.SEV2: SlaTargets(acknowledge=15 * MINUTE, mitigate=4 * HOUR, resolve=DAY),
    Severity.SEV3: SlaTargets(acknowledge=HOUR, mitigate=DAY, resolve=7 * DAY),
    Severity.SEV4: SlaTargets(),
}

# The timestamps that mark each stage as done, in lifecycle order: a stage is done at its own
# timestamp or any later one, so each timer reads this tuple from its own position on.
STAMPS = ("acknowledged_at", "mitigated_at", "resolved_at", "closed_at")
_FIRST_STAMP: dict[SlaTimer, int] = {
    SlaTimer.ACKNOWLEDGE: 0,
    SlaTimer.MITIGATE: 1,
    SlaTimer.RESOLVE: 2,
}
_NO_TARGETS = SlaTargets()


class TimerStatus(NamedTuple):  # a tuple: a list of incidents makes three per row
    timer: SlaTimer
    target_seconds: int
    due_at: datetime
    state: SlaState
    done_at: datetime | None

    @property
    def breached_at(self) -> datetime | None:
        """The moment the timer ran out, if it did (done late or not done at all)."""
        return self.due_at if self.state is SlaState.BREACHED else None


def stage_times(incident: "Incident") -> tuple[datetime | None, ...]:
    """The incident's `STAMPS`, in order."""
    return tuple(getattr(incident, name) for name in STAMPS)


def done_at(incident: "Incident", timer: SlaTimer) -> datetime | None:
    """When the incident first reached `timer`'s stage or a later one."""
    return _first(stage_times(incident)[_FIRST_STAMP[timer] :])


def _first(stamps: tuple[datetime | None, ...]) -> datetime | None:
    return min(filter(None, stamps), default=None)  # datetimes are never false


def _state(due: datetime, done: datetime | None, now: datetime) -> SlaState:
    """Met when done by the due time; breached when done late, or not done and past it."""
    if done is not None:
        return SlaState.MET if done <= due else SlaState.BREACHED
    return SlaState.BREACHED if now > due else SlaState.PENDING


def _judge(
    timer: SlaTimer,
    seconds: int | None,
    created_at: datetime,
    stamps: tuple[datetime | None, ...],
    now: datetime,
) -> TimerStatus | None:
    if seconds is None:
        return None
    due = created_at + timedelta(seconds=seconds)
    done = _first(stamps[_FIRST_STAMP[timer] :])
    state = _state(due, done, now)
    return TimerStatus(timer=timer, target_seconds=seconds, due_at=due, state=state, done_at=done)


def timer_status(
    incident: "Incident", timer: SlaTimer, *, targets: dict[Severity, SlaTargets], now: datetime
) -> TimerStatus | None:
    """`timer` of `incident` as of `now`; None when its severity sets no target for it."""
    seconds = targets.get(incident.severity, _NO_TARGETS).of(timer)
    return _judge(timer, seconds, incident.created_at, stage_times(incident), now)


def sla_status(
    incident: "Incident", *, targets: dict[Severity, SlaTargets], now: datetime
) -> dict[SlaTimer, TimerStatus | None]:
    """Every timer of `incident` as of `now` (None where its severity sets no target). Reads
    each timestamp once: a list of incidents computes this for every row."""
    plan = targets.get(incident.severity, _NO_TARGETS)
    stamps, created_at = stage_times(incident), incident.created_at
    return {timer: _judge(timer, plan.of(timer), created_at, stamps, now) for timer in SlaTimer}


# -- the same judgement for a page of incidents, as the API's `sla` field -------------------

# Per severity: (timer name, first stamp, seconds, as a timedelta) for each timer with a target.
SlaPlan = tuple[tuple[str, int, int | None, timedelta | None], ...]


def plans(targets: dict[Severity, SlaTargets]) -> dict[Severity, SlaPlan]:
    """The targets laid out once per request, so each incident costs a few comparisons."""
    return {
        severity: tuple(
            (timer.value, _FIRST_STAMP[timer], s, None if s is None else timedelta(seconds=s))
            for timer in SlaTimer
            for s in [targets.get(severity, _NO_TARGETS).of(timer)]
        )
        for severity in Severity
    }


def sla_document(
    created_at: datetime, stamps: tuple[datetime | None, ...], plan: SlaPlan, now: datetime
) -> dict[str, Any]:
    """`sla_status` as plain data (what the API returns), from `created_at` and the `STAMPS`
    in order; a list of incidents makes one per row, so no objects are built on the way
    (bench/incidents_api.py)."""
    document: dict[str, Any] = {}
    for name, first, seconds, delta in plan:
        if delta is None:
            document[name] = None
            continue
        due = created_at + delta
        done = _first(stamps[first:])
        state = _state(due, done, now)
        document[name] = {
            "target_seconds": seconds,
            "due_at": due,
            "state": state,
            "done_at": done,
            "breached_at": due if state is SlaState.BREACHED else None,
        }
    return document
