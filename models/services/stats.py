"""Counts, response times and SLA compliance of the incidents created within a window.

Counts by status and severity are grouped in SQL. Means and SLA outcomes need per-incident
times, so the window's timestamps (not whole rows) are read and judged in Python with the
same functions as each incident's `sla`.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from statistics import fmean
from typing import TypeVar

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, load_only
from sqlalchemy.sql.elements import ColumnElement

from models.enums import IncidentStatus, Severity, SlaState, SlaTimer
from models.incident import Incident
from models.services.sla import TIMES
from models.sla import SlaTargets, timer_status

E = TypeVar("E")


@dataclass
class TimerTally:
    met: int = 0
    breached: int = 0
    pending: int = 0

    @property
    def compliance(self) -> float | None:
        """Met among the decided (met or breached); None when none is decided yet."""
        decided = self.met + self.breached
        return self.met / decided if decided else None

    def add(self, state: SlaState) -> None:
        setattr(self, state.value, getattr(self, state.value) + 1)


@dataclass(frozen=True)
class IncidentStats:
    since: datetime
    until: datetime
    by_status: dict[IncidentStatus, int]
    by_severity: dict[Severity, int]
    mtta_seconds: float | None
    mttr_seconds: float | None
    sla: dict[Severity, dict[SlaTimer, TimerTally | None]] = field(default_factory=dict)


async def incident_stats(
    session: AsyncSession,
    *,
    since: datetime,
    until: datetime,
    targets: dict[Severity, SlaTargets],
) -> IncidentStats:
    """Stats of the incidents created in [since, until]; SLA timers are judged as of `until`.

    MTTA is the mean of `acknowledged_at - created_at` over those acknowledged, MTTR of
    `resolved_at - created_at` over those resolved (closed ones keep their `resolved_at`; a
    reopened one has none until it is resolved again).
    """
    window = (Incident.created_at >= since, Incident.created_at <= until)
    by_status = dict.fromkeys(IncidentStatus, 0)
    by_status.update(await _counts(session, Incident.status, window))
    by_severity = dict.fromkeys(Severity, 0)
    by_severity.update(await _counts(session, Incident.severity, window))

    incidents = await session.scalars(select(Incident).where(*window).options(load_only(*TIMES)))
    to_ack: list[timedelta] = []
    to_resolve: list[timedelta] = []
    sla = {
        severity: {
            timer: TimerTally() if targets.get(severity, SlaTargets()).of(timer) else None
            for timer in SlaTimer
        }
        for severity in Severity
    }
    for incident in incidents:
        if incident.acknowledged_at is not None:
            to_ack.append(incident.acknowledged_at - incident.created_at)
        if incident.resolved_at is not None:
            to_resolve.append(incident.resolved_at - incident.created_at)
        for timer, tally in sla[incident.severity].items():
            status = timer_status(incident, timer, targets=targets, now=until)
            if tally is not None and status is not None:
                tally.add(status.state)
    return IncidentStats(
        since=since,
        until=until,
        by_status=by_status,
        by_severity=by_severity,
        mtta_seconds=_mean_seconds(to_ack),
        mttr_seconds=_mean_seconds(to_resolve),
        sla=sla,
    )


async def _counts(
    session: AsyncSession,
    column: InstrumentedAttribute[E],
    window: tuple[ColumnElement[bool], ...],
) -> dict[E, int]:
    rows = await session.execute(select(column, func.count()).where(*window).group_by(column))
    return {value: count for value, count in rows}


def _mean_seconds(spans: list[timedelta]) -> float | None:
    return fmean(span.total_seconds() for span in spans) if spans else None
