"""SLA timers: how long an incident of each severity may take to be acknowledged, mitigated
and resolved.

Every timer starts at the incident's `created_at`. A stage counts as done once the incident
reached it or any later one: an incident mitigated straight from open was acknowledged then
too, and a closed one was resolved. Timers are computed, never stored, from the incident's
timestamps, the targets and a `now` the caller passes (the sweep and the tests choose their
clock). Only the announcement of a breach is stored (`Incident.sla_*_breached_at`), so that
it is written once.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

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

# The timestamps that mark each stage as done, the stage's own first.
_DONE_BY: dict[SlaTimer, tuple[str, ...]] = {
    SlaTimer.ACKNOWLEDGE: ("acknowledged_at", "mitigated_at", "resolved_at", "closed_at"),
    SlaTimer.MITIGATE: ("mitigated_at", "resolved_at", "closed_at"),
    SlaTimer.RESOLVE: ("resolved_at", "closed_at"),
}


@dataclass(frozen=True)
class TimerStatus:
    timer: SlaTimer
    target_seconds: int
    due_at: datetime
    state: SlaState
    done_at: datetime | None

    @property
    def breached_at(self) -> datetime | None:
        """The moment the timer ran out, if it did (done late or not done at all)."""
        return self.due_at if self.state is SlaState.BREACHED else None


def done_at(incident: "Incident", timer: SlaTimer) -> datetime | None:
    """When the incident first reached `timer`'s stage or a later one."""
    stamps = [getattr(incident, name) for name in _DONE_BY[timer]]
    return min((stamp for stamp in stamps if stamp is not None), default=None)


def timer_status(
    incident: "Incident", timer: SlaTimer, *, targets: dict[Severity, SlaTargets], now: datetime
) -> TimerStatus | None:
    """`timer` of `incident` as of `now`; None when its severity sets no target for it."""
    seconds = targets.get(incident.severity, SlaTargets()).of(timer)
    if seconds is None:
        return None
    due = incident.created_at + timedelta(seconds=seconds)
    done = done_at(incident, timer)
    if done is not None:
        state = SlaState.MET if done <= due else SlaState.BREACHED
    else:
        state = SlaState.BREACHED if now > due else SlaState.PENDING
    return TimerStatus(timer=timer, target_seconds=seconds, due_at=due, state=state, done_at=done)


def sla_status(
    incident: "Incident", *, targets: dict[Severity, SlaTargets], now: datetime
) -> dict[SlaTimer, TimerStatus | None]:
    """Every timer of `incident` as of `now` (None where its severity sets no target)."""
    return {timer: timer_status(incident, timer, targets=targets, now=now) for timer in SlaTimer}
