"""Counts, response times, SLA compliance and the noisiest keys of the incidents created
within a window.

Counts by status and severity, and the noisiest keys, are grouped in SQL. Means and SLA
outcomes need per-incident times, so the window's timestamps (not whole rows) are read and
judged in Python with the same functions as each incident's `sla`.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from statistics import fmean
from typing import TypeVar

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, load_only
from sqlalchemy.sql.elements import ColumnElement

from models.enums import IncidentKind, IncidentStatus, Severity, SlaState, SlaTimer
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


@dataclass
class ResponseTimes:
    """The spans behind an MTTA and an MTTR: one per incident acknowledged, one per resolved."""

    to_ack: list[timedelta] = field(default_factory=list)
    to_resolve: list[timedelta] = field(default_factory=list)

    @property
    def mtta_seconds(self) -> float | None:
        return _mean_seconds(self.to_ack)

    @property
    def mttr_seconds(self) -> float | None:
        return _mean_seconds(self.to_resolve)

    @property
    def acknowledged(self) -> int:
        return len(self.to_ack)

    @property
    def resolved(self) -> int:
        return len(self.to_resolve)

    def add(self, incident: Incident) -> None:
        if incident.acknowledged_at is not None:
            self.to_ack.append(incident.acknowledged_at - incident.created_at)
        if incident.resolved_at is not None:
            self.to_resolve.append(incident.resolved_at - incident.created_at)


@dataclass(frozen=True)
class NoisyKey:
    """One (kind, key) over the window's incidents: how many, how often each recurred and was
    reopened, and the newest of them."""

    kind: IncidentKind
    key: str
    incidents: int
    occurrences: int
    reopens: int
    last_incident_id: int
    last_seen_at: datetime


@dataclass(frozen=True)
class Noisiest:
    by_occurrences: list[NoisyKey]
    by_reopens: list[NoisyKey]  # only keys reopened at least once


@dataclass(frozen=True)
class IncidentStats:
    since: datetime
    until: datetime
    by_status: dict[IncidentStatus, int]
    by_severity: dict[Severity, int]
    mtta_seconds: float | None
    mttr_seconds: float | None
    sla: dict[Severity, dict[SlaTimer, TimerTally | None]] = field(default_factory=dict)
    times: dict[Severity, ResponseTimes] = field(default_factory=dict)
    noisiest: Noisiest = field(default_factory=lambda: Noisiest([], []))


async def incident_stats(
    session: AsyncSession,
    *,
    since: datetime,
    until: datetime,
    targets: dict[Severity, SlaTargets],
    top: int = 10,
) -> IncidentStats:
    """Stats of the incidents created in [since, until]; SLA timers are judged as of `until`.

    MTTA is the mean of `acknowledged_at - created_at` over those acknowledged, MTTR of
    `resolved_at - created_at` over those resolved (closed ones keep their `resolved_at`; a
    reopened one has none until it is resolved again), overall and per severity. The noisiest
    keys are the `top` (kind, key) pairs by occurrences, and by reopens.
    """
    window = (Incident.created_at >= since, Incident.created_at <= until)
    by_status = dict.fromkeys(IncidentStatus, 0)
    by_status.update(await _counts(session, Incident.status, window))
    by_severity = dict.fromkeys(Severity, 0)
    by_severity.update(await _counts(session, Incident.severity, window))

    incidents = await session.scalars(select(Incident).where(*window).options(load_only(*TIMES)))
    overall = ResponseTimes()
    times = {severity: ResponseTimes() for severity in Severity}
    sla = {
        severity: {
            timer: TimerTally() if targets.get(severity, SlaTargets()).of(timer) else None
            for timer in SlaTimer
        }
        for severity in Severity
    }
    for incident in incidents:
        overall.add(incident)
        times[incident.severity].add(incident)
        for timer, tally in sla[incident.severity].items():
            status = timer_status(incident, timer, targets=targets, now=until)
            if tally is not None and status is not None:
                tally.add(status.state)
    return IncidentStats(
        since=since,
        until=until,
        by_status=by_status,
        by_severity=by_severity,
        mtta_seconds=overall.mtta_seconds,
        mttr_seconds=overall.mttr_seconds,
        sla=sla,
        times=times,
        noisiest=await _noisiest(session, window, top),
    )


async def _noisiest(
    session: AsyncSession, window: tuple[ColumnElement[bool], ...], top: int
) -> Noisiest:
    occurrences = func.sum(Incident.occurrence_count)
    reopens = func.sum(Incident.reopen_count)
    # ids grow with creation, so the highest is the newest incident of the key
    grouped = (
        select(
            Incident.kind,
            Incident.key,
            func.count().label("incidents"),
            occurrences.label("occurrences"),
            reopens.label("reopens"),
            func.max(Incident.id).label("last_incident_id"),
            func.max(Incident.last_seen_at).label("last_seen_at"),
        )
        .where(*window)
        .group_by(Incident.kind, Incident.key)
        .limit(top)
    )
    ties = (Incident.key, Incident.kind)
    by_occurrences = await session.execute(grouped.order_by(occurrences.desc(), *ties))
    by_reopens = await session.execute(grouped.having(reopens > 0).order_by(reopens.desc(), *ties))
    return Noisiest(
        by_occurrences=[NoisyKey(**row._asdict()) for row in by_occurrences],
        by_reopens=[NoisyKey(**row._asdict()) for row in by_reopens],
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
