"""Check runs and what they do to incidents.

A failing run opens an incident for its key, or counts a repeat on the active one (the
incident service's dedup and per-key cap apply). A run that passes after a failing one notes it
on the active incident's timeline and, with `auto_resolve`, resolves it. A check whose query
keeps failing, or that stops running, gets an incident of its own.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached

from models.check_run import CheckRun
from models.enums import ACTIVE_STATUSES, IncidentKind, Severity, Verb
from models.errors import RateLimited
from models.incident import Incident
from models.services.incidents import IncidentCap, NewIncident, create_incident, transition_incident


@dataclass(frozen=True)
class Measurement:
    check_id: str
    started_at: datetime
    duration_ms: float
    threshold: float
    value: float | None = None
    passed: bool | None = None
    error: str | None = None
    context: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OnFailure:
    """The incident a failing run opens (its details and metadata get the run id added)."""

    incident: NewIncident
    auto_resolve: bool = False


def actor_of(check_id: str) -> str:
    return f"check:{check_id}"


async def record_runs(
    session: AsyncSession,
    *,
    items: list[tuple[Measurement, OnFailure]],
    cap: IncidentCap,
    opened: list[int] | None = None,
) -> list[CheckRun]:
    """Record a sweep's runs in one go (one lookup, one insert), then act on each outcome.
    The ids of incidents this opened (not those it counted again) are added to `opened`."""
    active = await _lock_active(session, [f.incident for m, f in items if m.passed is not None])
    # whether a passing run is a recovery depends on the run before it: read before inserting,
    # and only for the checks that pass now while their incident is active (few, if any)
    previous = await last_outcomes(session, [
        m.check_id for m, f in items
        if m.passed and (f.incident.kind, f.incident.key) in active
    ])  # fmt: skip
    rows = [
        {"check_id": m.check_id, "started_at": m.started_at, "duration_ms": m.duration_ms,
         "value": m.value, "threshold": m.threshold, "passed": m.passed, "error": m.error,
         "context": m.context}
        for m, _ in items
    ]  # fmt: skip
    runs = await _insert_runs(session, rows)
    for run, (m, on_failure) in zip(runs, items, strict=True):
        new = on_failure.incident
        incident = active.get((new.kind, new.key))
        before = previous.get(m.check_id)
        if m.passed is False and incident is not None:
            # a repeat: counted in memory, written with the whole batch at the final flush
            incident.record_recurrence(
                actor=actor_of(m.check_id), at=m.started_at, severity=new.severity
            )
            run.incident_id = incident.id
        elif m.passed is False:
            outcome = await _open_for_failure(session, run, new, cap)
            if outcome is not None:
                found, created = outcome
                active[(new.kind, new.key)] = found
                if created and opened is not None:
                    opened.append(found.id)
        elif m.passed and incident is not None and before is not True:
            # passing after a failure, or after errors that followed one
            await _recovered(session, run, incident, on_failure.auto_resolve)
    await session.flush()
    return runs


_INSERT_RUN = (
    "INSERT INTO check_runs (check_id, started_at, duration_ms, value, threshold, passed,"
    " error, context) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id"
)


async def _insert_runs(session: AsyncSession, rows: list[dict[str, Any]]) -> list[CheckRun]:
    """Insert a batch of runs, in order, as objects of the session.

    On PostgreSQL through psycopg's executemany (pipelined, one short statement it parses
    once): about three times cheaper than the ORM's multi-row VALUES, whose thousands of
    placeholders psycopg re-parses for every batch (bench/checks_sweep.py). Elsewhere the ORM's
    bulk INSERT ... RETURNING."""
    connection = await session.connection()
    if connection.dialect.name != "postgresql":
        returning = insert(CheckRun).returning(CheckRun, sort_by_parameter_order=True)
        return list(await session.scalars(returning, rows))
    from psycopg.types.json import Jsonb  # PostgreSQL only: flows on DuckDB never load it

    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None
    ids: list[int] = []
    async with driver.cursor() as cursor:
        params = [(r["check_id"], r["started_at"], r["duration_ms"], r["value"], r["threshold"],
                   r["passed"], r["error"], Jsonb(r["context"])) for r in rows]  # fmt: skip
        await cursor.executemany(_INSERT_RUN, params, returning=True)
        for _ in rows:  # one result set per row, in order
            ids.append((await cursor.fetchone())[0])
            cursor.nextset()
    runs = []
    for run_id, row in zip(ids, rows, strict=True):
        run = CheckRun(id=run_id, incident_id=None, **row)
        make_transient_to_detached(run)  # a row that exists: later changes are UPDATEs
        session.add(run)
        runs.append(run)
    return runs


async def _lock_active(
    session: AsyncSession, incidents: list[NewIncident]
) -> dict[tuple[IncidentKind, str], Incident]:
    """Lock the active incidents a batch may touch, in one order, before it writes any event:
    the event lock (models.event) is then always taken after the row locks, never before."""
    keys = sorted({(new.kind.value, new.key) for new in incidents})
    if not keys:
        return {}
    rows = await session.scalars(
        select(Incident)
        .where(tuple_(Incident.kind, Incident.key).in_(keys))
        .where(Incident.status.in_(ACTIVE_STATUSES))
        .order_by(Incident.kind, Incident.key)
        .with_for_update()
    )
    return {(incident.kind, incident.key): incident for incident in rows}


async def _open_for_failure(
    session: AsyncSession, run: CheckRun, new: NewIncident, cap: IncidentCap
) -> tuple[Incident, bool] | None:
    """Open the incident of a failing run, or count a repeat on one that appeared since the
    batch took its locks; whether it is new; None when the per-key cap refuses it."""
    incident = NewIncident(
        kind=new.kind,
        key=new.key,
        severity=new.severity,
        summary=new.summary,
        details=new.details,
        playbooks=new.playbooks,
        metadata=new.metadata | {"check_run_id": run.id},
    )
    try:  # the cap refuses before writing anything, so no savepoint is needed
        found, created = await create_incident(
            session, new=incident, actor=actor_of(run.check_id), cap=cap, at=run.started_at
        )
        run.incident_id = found.id
        return found, created
    except RateLimited as capped:  # the run is kept; the flood of incidents is not
        run.context = run.context | {"incident_refused": capped.message}
        return None


async def _recovered(
    session: AsyncSession, run: CheckRun, incident: Incident, auto_resolve: bool
) -> None:
    notes = (
        f"Check {run.check_id} passes again (value {run.value:g}, threshold {run.threshold:g}, "
        f"run {run.id})"
    )
    run.incident_id = incident.id
    if auto_resolve:
        await transition_incident(
            session, incident_id=incident.id, verb=Verb.RESOLVE, actor=actor_of(run.check_id),
            notes=f"{notes}; resolved automatically", at=run.started_at,
        )  # fmt: skip
    else:
        incident.note(actor=actor_of(run.check_id), verb="check_passing", notes=notes,
                      at=run.started_at)  # fmt: skip


async def consecutive_errors(session: AsyncSession, check_id: str, limit: int) -> int:
    recent = await session.scalars(
        select(CheckRun.error)
        .where(CheckRun.check_id == check_id)
        .order_by(CheckRun.started_at.desc(), CheckRun.id.desc())
        .limit(limit)
    )
    count = 0
    for error in recent:
        if error is None:
            break
        count += 1
    return count


async def open_check_incident(
    session: AsyncSession,
    *,
    check_id: str,
    agent: str,
    problem: str,
    summary: str,
    threshold: float,
    actual: float,
    cap: IncidentCap,
    at: datetime,
) -> tuple[Incident, bool]:
    """An incident about the check itself (`problem`: failing or stale), not what it measures;
    and whether it is new."""
    return await create_incident(
        session,
        new=NewIncident(
            kind=IncidentKind.INVARIANT,
            key=f"INV_check_{check_id}_{problem}",
            severity=Severity.SEV3,
            summary=summary,
            details={
                "invariant": {
                    "id": f"check_{problem}:{check_id}",
                    "threshold": threshold,
                    "actual": actual,
                }
            },
            metadata={"agent": agent, "auto_created": True, "check_id": check_id},
        ),
        actor="watchdog" if problem == "stale" else actor_of(check_id),
        cap=cap,
        at=at,
    )


async def last_runs(
    session: AsyncSession, check_ids: list[str] | None = None
) -> dict[str, CheckRun]:
    """The newest run of every check that has run (of `check_ids` only, when given)."""
    newest_query = select(CheckRun.check_id, func.max(CheckRun.id).label("id"))
    if check_ids is not None:
        newest_query = newest_query.where(CheckRun.check_id.in_(check_ids))
    newest = newest_query.group_by(CheckRun.check_id).subquery()
    rows = await session.scalars(select(CheckRun).join(newest, CheckRun.id == newest.c.id))
    return {run.check_id: run for run in rows}


async def last_outcomes(session: AsyncSession, check_ids: list[str]) -> dict[str, bool | None]:
    """Whether the newest run of each of `check_ids` passed (None: it errored)."""
    if not check_ids:
        return {}
    newest = (
        select(func.max(CheckRun.id).label("id"))
        .where(CheckRun.check_id.in_(check_ids))
        .group_by(CheckRun.check_id)
    )
    rows = await session.execute(
        select(CheckRun.check_id, CheckRun.passed).where(CheckRun.id.in_(newest))
    )
    return {check_id: passed for check_id, passed in rows}


async def list_runs(session: AsyncSession, check_id: str, *, limit: int) -> list[CheckRun]:
    query = (
        select(CheckRun)
        .where(CheckRun.check_id == check_id)
        .order_by(CheckRun.started_at.desc(), CheckRun.id.desc())
        .limit(limit)
    )
    return list(await session.scalars(query))
