"""Listing, opening, deduplicating and transitioning incidents."""

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Text, bindparam, cast, func, or_, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql.elements import ColumnElement

from models.base import utcnow
from models.bulk import insert_many, update_many
from models.enums import ACTIVE_STATUSES, EventType, IncidentKind, IncidentStatus, Severity, Verb
from models.errors import Conflict, NotFound, RateLimited
from models.event import ORDER_PARAMS, insert_events
from models.incident import COLUMNS, Incident, Recurrence, TimelineEntry


@dataclass(frozen=True)
class NewIncident:
    kind: IncidentKind
    key: str
    severity: Severity
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    playbooks: list[str] = field(default_factory=list)
    issue_url: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    said: str | None = None  # what this occurrence measured: the timeline's note, each time


@dataclass(frozen=True)
class IncidentCap:
    """At most `limit` new incidents per (kind, key) within `window`."""

    limit: int = 3
    window: timedelta = timedelta(hours=1)


# A listed incident is a dict of its columns keyed by attribute name (`Incident.as_row`),
# read without building ORM objects: a page of fifty is the API's busiest read. The columns
# and the order are laid out once; each request adds its filters, total and page.
_LISTED = select(*(getattr(Incident, key) for key in COLUMNS)).order_by(
    Incident.created_at.desc(), Incident.id.desc()
)


@dataclass(frozen=True)
class IncidentPage:
    rows: list[dict[str, Any]]
    total: int


async def list_incidents(
    session: AsyncSession,
    *,
    status: IncidentStatus | None = None,
    severity: Severity | None = None,
    kind: IncidentKind | None = None,
    q: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> IncidentPage:
    """One page of incidents, newest first, and the total matching the filters (`q`: see
    `matching`).

    One statement reads both: the total is an uncorrelated subquery, which the database
    computes once, and page and total come from the same snapshot. A page past the end has
    no row to carry the total, so that case counts on its own.
    """
    filters = [
        column == value
        for column, value in (
            (Incident.status, status),
            (Incident.severity, severity),
            (Incident.kind, kind),
        )
        if value is not None
    ]
    if q is not None:
        filters.append(matching(q))
    count = select(func.count()).select_from(Incident).where(*filters)
    result = await session.execute(
        _LISTED.add_columns(count.scalar_subquery().label("total"))
        .where(*filters)
        .limit(limit)
        .offset(offset)
    )
    *columns, _total = result.keys()
    records = result.all()
    # zip stops before each record's last field, the total
    rows = [dict(zip(columns, record, strict=False)) for record in records]
    if records:
        return IncidentPage(rows=rows, total=records[0][-1])
    total = await session.scalar(count) if offset else 0
    return IncidentPage(rows=rows, total=total or 0)


def matching(q: str) -> ColumnElement[bool]:
    """Incidents whose key, summary or details (an alert's labels land there) contain `q`,
    whatever the case; `%` and `_` are themselves, not wildcards. A scan of the table: fine for
    a person's search, not for a hot path."""
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{escaped}%"
    return or_(
        Incident.key.ilike(pattern, escape="\\"),
        Incident.summary.ilike(pattern, escape="\\"),
        cast(Incident.details, Text).ilike(pattern, escape="\\"),
    )


async def count_by_status(
    session: AsyncSession,
    *,
    severity: Severity | None = None,
    kind: IncidentKind | None = None,
    q: str | None = None,
) -> dict[IncidentStatus, int]:
    """How many incidents are in each status (every status, zeros included)."""
    query = select(Incident.status, func.count()).group_by(Incident.status)
    if q is not None:
        query = query.where(matching(q))
    if severity is not None:
        query = query.where(Incident.severity == severity)
    if kind is not None:
        query = query.where(Incident.kind == kind)
    counted = {IncidentStatus(status): n for status, n in (await session.execute(query)).all()}
    return {status: counted.get(status, 0) for status in IncidentStatus}


async def get_incident(
    session: AsyncSession, incident_id: int, *, for_update: bool = False
) -> Incident:
    query = select(Incident).where(Incident.id == incident_id)
    if for_update:
        query = query.with_for_update()
    incident = await session.scalar(query)
    if incident is None:
        raise NotFound(f"Incident {incident_id} not found", details={"incident_id": incident_id})
    return incident


async def list_timeline(session: AsyncSession, incident_id: int) -> list[TimelineEntry]:
    incident = await get_incident(session, incident_id)
    return list(await session.scalars(incident.timeline.select()))


async def transition_incident(
    session: AsyncSession,
    *,
    incident_id: int,
    verb: Verb,
    actor: str,
    notes: str | None = None,
    changes: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> Incident:
    """Lock the incident, then let its state machine apply `verb` (or refuse it)."""
    incident = await get_incident(session, incident_id, for_update=True)
    kind, key = incident.kind, incident.key
    if verb is Verb.REOPEN:
        incident.check(verb)
        holder = await _active_incident(session, kind, key)
        if holder is not None:
            raise _key_taken(verb, incident_id, holder.id, kind, key)
    incident.apply(verb, actor=actor, at=at or utcnow(), notes=notes, changes=changes)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:  # lost a race for the key; the savepoint undid the change
        raise _key_taken(verb, incident_id, None, kind, key) from exc
    return incident


def _key_taken(
    verb: Verb, incident_id: int, holder_id: int | None, kind: IncidentKind, key: str
) -> Conflict:
    return Conflict(
        f"Cannot {verb.value} incident {incident_id}: another {kind.value} incident with key "
        f"{key!r} is active",
        details={
            "incident_id": incident_id,
            "active_incident_id": holder_id,
            "kind": kind.value,
            "key": key,
        },
    )


async def create_incident(
    session: AsyncSession,
    *,
    new: NewIncident,
    actor: str,
    cap: IncidentCap | None = None,
    at: datetime | None = None,
) -> tuple[Incident, bool]:
    """Open an incident, or count a repeat on the active one with the same (kind, key).

    Returns the incident and whether it is new. The partial unique index on active
    (kind, key) decides races: the loser of a concurrent insert falls back to the repeat.
    """
    at = at or utcnow()
    cap = cap or IncidentCap()
    counted = await _count_repeat(session, new, actor=actor, at=at)
    if counted is not None:
        return counted, False

    await _enforce_cap(session, new, cap, at)
    incident = Incident(
        kind=new.kind,
        key=new.key,
        severity=new.severity,
        status=IncidentStatus.OPEN,
        summary=new.summary,
        details=new.details,
        playbooks=new.playbooks,
        issue_url=new.issue_url,
        metadata_=new.metadata,
        last_seen_at=at,
        created_at=at,
        updated_at=at,
    )
    try:
        async with session.begin_nested():
            session.add(incident)
            await session.flush()
    except IntegrityError:
        active = await _active_incident(session, new.kind, new.key)
        if active is None:
            raise
        active.record_recurrence(actor=actor, at=at, severity=new.severity, said=new.said)
        await session.flush()
        return active, False
    incident.record_created(actor=actor, at=at, notes=new.said)
    await session.flush()
    return incident, True


async def _count_repeat(
    session: AsyncSession, new: NewIncident, *, actor: str, at: datetime
) -> Incident | None:
    """One more occurrence on the active incident of `new`'s kind and key, if there is one:
    its row read and locked, then its change, timeline row and event written as
    `count_repeats` writes a storm's (one statement on PostgreSQL), not through a flush."""
    incident = await _active_incident(session, new.kind, new.key)
    if incident is None:
        return None
    said = Recurrence.of(incident, actor=actor, at=at, severity=new.severity, said=new.said)
    severity = said.changed.get("severity", incident.severity)
    await count_repeats(session, [(said, severity)])
    # what the statement wrote, without history: nothing for the unit of work to flush again
    for name, value in {**said.changed, "severity": severity, "updated_at": at}.items():
        set_committed_value(incident, name, value)
    return incident


# The count of a storm's repeats on PostgreSQL, in one statement: the incidents' new counts,
# severities and times, their timeline rows and their events, from one JSON document. The
# events' ordering lock comes first: every row of x is read after `ordered` (x joins it), and
# every event is an x row, so no event id is drawn before the lock is held.
_COUNT_REPEATS = text(
    """
WITH ordered AS MATERIALIZED (
    SELECT pg_advisory_xact_lock(:order_key), pg_notify(:order_channel, '')
), x AS MATERIALIZED (
    SELECT x.* FROM ordered, jsonb_to_recordset(CAST(:rows AS jsonb)) AS x(
        n integer, id bigint, occurrence_count integer, severity varchar(16),
        status varchar(16), actor varchar(320), notes text, payload jsonb
    )
), counted AS (
    UPDATE incidents
    SET occurrence_count = x.occurrence_count, severity = x.severity,
        last_seen_at = :at, updated_at = :at
    FROM x WHERE incidents.id = x.id
), noted AS (
    INSERT INTO incident_timeline (incident_id, actor, verb, from_status, to_status, notes, at)
    SELECT x.id, x.actor, 'recur', x.status, x.status, x.notes, :at FROM x ORDER BY x.n
)
INSERT INTO events (type, incident_id, payload, created_at)
SELECT :type, x.id, x.payload, :at FROM x ORDER BY x.n
"""
).bindparams(bindparam("at", type_=Incident.__table__.c.updated_at.type))


async def count_repeats(session: AsyncSession, said: list[tuple[Recurrence, Severity]]) -> None:
    """Write many recurrences (each with the incident's severity after it), taken at one
    time, on incidents whose rows this transaction locked: on PostgreSQL in one statement
    after the events' ordering lock, elsewhere as `Recurrence` rows in three."""
    if not said:
        return
    at = said[0][0].at
    if (await session.connection()).dialect.name != "postgresql":
        await update_many(
            session,
            Incident,
            [
                {
                    "id": one.incident_id,
                    "occurrence_count": one.changed["occurrence_count"],
                    "severity": severity,
                }
                for one, severity in said
            ],
            last_seen_at=at,
            updated_at=at,
        )
        await insert_many(
            session,
            TimelineEntry,
            [{"incident_id": one.incident_id, **one.timeline_row()} for one, _ in said],
        )
        await insert_events(session, [_event_row(one) for one, _ in said])
        return
    rows = [
        {
            "n": n,
            "id": one.incident_id,
            "occurrence_count": one.changed["occurrence_count"],
            "severity": severity.value,
            "status": one.status,
            "actor": one.actor,
            "notes": one.notes,
            "payload": one.event_payload(),
        }
        for n, (one, severity) in enumerate(said)
    ]
    await session.execute(
        _COUNT_REPEATS,
        {
            "rows": json.dumps(rows),
            "at": at,
            "type": EventType.INCIDENT_UPDATED.value,
            **ORDER_PARAMS,
        },
    )


def _event_row(said: Recurrence) -> dict[str, Any]:
    return {
        "type": EventType.INCIDENT_UPDATED.value,
        "incident_id": said.incident_id,
        "payload": said.event_payload(),
        "created_at": said.at,
    }


async def _active_incident(session: AsyncSession, kind: IncidentKind, key: str) -> Incident | None:
    query = (
        select(Incident)
        .where(Incident.kind == kind, Incident.key == key, Incident.status.in_(ACTIVE_STATUSES))
        .with_for_update()
    )
    return await session.scalar(query)


async def _enforce_cap(
    session: AsyncSession, new: NewIncident, cap: IncidentCap, at: datetime
) -> None:
    since = at - cap.window
    recent = list(
        await session.scalars(
            select(Incident.created_at)
            .where(Incident.kind == new.kind, Incident.key == new.key, Incident.created_at > since)
            .order_by(Incident.created_at)
        )
    )
    if len(recent) < cap.limit:
        return
    frees_at = recent[len(recent) - cap.limit] + cap.window
    retry_after = max(1, math.ceil((frees_at - at).total_seconds()))
    raise RateLimited(
        f"Too many incidents for key {new.key!r}: {len(recent)} opened in the last "
        f"{int(cap.window.total_seconds())} s (limit {cap.limit})",
        retry_after=retry_after,
        limit="incident_key",
        details={
            "kind": new.kind.value,
            "key": new.key,
            "limit": cap.limit,
            "window_seconds": int(cap.window.total_seconds()),
            "retry_after": retry_after,
        },
    )


async def add_note(
    session: AsyncSession, incident_id: int, *, actor: str, notes: str
) -> TimelineEntry:
    """A comment on the incident's timeline (any status; the status is untouched), announced
    as `incident_updated` with `change: note`."""
    incident = await get_incident(session, incident_id, for_update=True)
    incident.note(actor=actor, verb="note", notes=notes, at=utcnow())
    await session.flush()
    entry = await session.scalar(
        select(TimelineEntry)
        .where(TimelineEntry.incident_id == incident_id)
        .order_by(TimelineEntry.id.desc())
        .limit(1)
    )
    assert entry is not None
    return entry
