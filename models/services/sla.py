"""Announcing SLA breaches: a timeline row and an `sla_breached` event, once per timer.

Any number of sweepers (one per API process) may run at once. Candidates are found without
locks, then locked together in id order (PostgreSQL: `FOR UPDATE`; SQLite: the writer's
`BEGIN IMMEDIATE` already serializes) and judged again under the lock, so of two sweeps that
saw the same breach the second finds it announced. All rows are locked before any event is
written: events take the ordering lock (models/event.py) and must come after the row locks.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import load_only
from sqlalchemy.sql.elements import ColumnElement

from models.base import isoformat
from models.enums import ACTIVE_STATUSES, Severity, SlaState, SlaTimer
from models.incident import SLA_BREACH_FIELDS, Incident
from models.sla import SlaTargets, TimerStatus, sla_status

# What judging a timer reads (here and in the stats): the severity and times, no documents.
TIMES = (
    Incident.severity,
    Incident.created_at,
    Incident.acknowledged_at,
    Incident.mitigated_at,
    Incident.resolved_at,
    Incident.closed_at,
    *(getattr(Incident, name) for name in SLA_BREACH_FIELDS.values()),
)


@dataclass(frozen=True)
class Breach:
    incident_id: int
    timer: SlaTimer
    due_at: datetime


async def record_sla_breaches(
    session: AsyncSession,
    *,
    now: datetime,
    targets: dict[Severity, SlaTargets],
    limit: int = 200,
) -> list[Breach]:
    """Announce every breached, unannounced timer of an active incident as of `now`.

    A timer done late counts too (the sweep may not have run between its due time and the
    transition). At most `limit` incidents per call; the next sweep takes the rest.
    """
    overdue = _maybe_overdue(now, targets)
    if overdue is None:
        return []
    seen = await session.scalars(
        select(Incident)
        .where(Incident.status.in_(ACTIVE_STATUSES), overdue)
        .options(load_only(*TIMES))
    )
    ids = sorted(i.id for i in seen if _unannounced(i, now, targets))[:limit]
    if not ids:
        return []
    locked = await session.scalars(
        select(Incident)
        .where(Incident.id.in_(ids), Incident.status.in_(ACTIVE_STATUSES))
        .order_by(Incident.id)
        .with_for_update()
        .execution_options(populate_existing=True)  # the rows as they are now, not as seen
    )
    breaches = []
    for incident in list(locked):
        for timer in _unannounced(incident, now, targets):
            incident.record_sla_breach(
                timer=timer.timer, due_at=timer.due_at, at=now, notes=_notes(incident, timer)
            )
            breaches.append(Breach(incident.id, timer.timer, timer.due_at))
    await session.flush()
    return breaches


def _maybe_overdue(
    now: datetime, targets: dict[Severity, SlaTargets]
) -> ColumnElement[bool] | None:
    """Incidents old enough for a timer to have run out that has not been announced: a cheap
    filter in SQL, before the timers are judged in Python. None: no target at all."""
    clauses = [
        and_(
            Incident.severity == severity,
            getattr(Incident, SLA_BREACH_FIELDS[timer]).is_(None),
            Incident.created_at < now - timedelta(seconds=seconds),
        )
        for severity, table in targets.items()
        for timer in SlaTimer
        if (seconds := table.of(timer)) is not None
    ]
    return or_(*clauses) if clauses else None


def _unannounced(
    incident: Incident, now: datetime, targets: dict[Severity, SlaTargets]
) -> list[TimerStatus]:
    return [
        timer
        for timer in sla_status(incident, targets=targets, now=now).values()
        if timer is not None
        and timer.state is SlaState.BREACHED
        and incident.sla_breach_announced(timer.timer) is None
    ]


def _notes(incident: Incident, timer: TimerStatus) -> str:
    late = "done late" if timer.done_at is not None else "not done"
    return (
        f"SLA breached: {timer.timer.value} within {_duration(timer.target_seconds)} "
        f"({incident.severity.value}), due {isoformat(timer.due_at)}, {late}"
    )


def _duration(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"
