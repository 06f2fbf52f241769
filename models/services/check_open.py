"""Opening the incidents of a sweep's failing runs, all at once where it is safe.

One sweep can open hundreds (a warehouse-wide breakage): opening them one by one costs each a
lookup, a cap query, a savepoint and three flushes. The batch path takes what the sweep already
knows (it locked the active incidents of its keys: none for these), counts the recent incidents
of every key in one query, and inserts the incidents in one statement. Whatever the batch cannot
decide alone goes the one-by-one way of `create_incident`, which settles it exactly: a key near
its cap (the exact refusal and its message), a key another process took meanwhile (the unique
index refuses the batch, which is undone and retried one by one).
"""

from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from models.bulk import insert_all
from models.check_run import CheckRun
from models.enums import IncidentKind, IncidentStatus
from models.errors import RateLimited
from models.incident import Incident
from models.services.check_health import actor_of
from models.services.incidents import IncidentCap, NewIncident, create_incident

Pending = tuple[CheckRun, NewIncident]


async def open_for_failures(
    session: AsyncSession, pending: list[Pending], cap: IncidentCap
) -> list[int]:
    """Open (or count, for a key opened earlier in the list) the incident of each failing run
    whose key had no active incident when the batch locked them; the ids of those opened."""
    firsts: dict[tuple[IncidentKind, str], Pending] = {}
    for run, new in pending:
        firsts.setdefault((new.kind, new.key), (run, new))
    near_cap = await _near_cap(session, list(firsts.values()), cap)
    batch = [item for key, item in firsts.items() if key not in near_cap]
    incidents = await _insert(session, batch)
    if incidents is None:  # a key was taken meanwhile: every one the exact way
        incidents, batch = [], []
    opened: dict[tuple[IncidentKind, str], Incident] = {}
    for (run, new), incident in zip(batch, incidents, strict=True):
        incident.record_created(actor=actor_of(run.check_id), at=run.started_at)
        run.incident_id = incident.id
        opened[(new.kind, new.key)] = incident
    created = [incident.id for incident in opened.values()]
    done = {id(run) for run, _ in batch}
    for run, new in pending:
        if id(run) in done:
            continue
        found = await open_one(session, run, new, cap)
        if found is not None and found[1]:
            created.append(found[0].id)
    return created


async def _near_cap(
    session: AsyncSession, items: list[Pending], cap: IncidentCap
) -> set[tuple[IncidentKind, str]]:
    """The keys the cap may refuse: cap.limit or more incidents lately (counted from the
    earliest run's window, so never fewer than the exact count of any run's)."""
    if not items:
        return set()
    since = min(run.started_at for run, _ in items) - cap.window
    rows = await session.execute(
        select(Incident.kind, Incident.key, func.count())
        .where(
            tuple_(Incident.kind, Incident.key).in_(
                sorted({(new.kind.value, new.key) for _, new in items})
            )
        )
        .where(Incident.created_at > since)
        .group_by(Incident.kind, Incident.key)
    )
    return {(kind, key) for kind, key, count in rows if count >= cap.limit}


async def _insert(session: AsyncSession, batch: list[Pending]) -> list[Incident] | None:
    """Insert the incidents in one statement; None (nothing written) when one's key is taken."""
    if not batch:
        return []
    await session.flush()  # what is pending already stays out of the savepoint below
    try:
        async with session.begin_nested():
            return await insert_all(session, Incident, [_incident(run, new) for run, new in batch])
    except IntegrityError:
        return None


def _incident(run: CheckRun, new: NewIncident) -> dict[str, Any]:
    at: datetime = run.started_at
    return {
        "kind": new.kind,
        "key": new.key,
        "severity": new.severity,
        "status": IncidentStatus.OPEN,
        "summary": new.summary,
        "details": new.details,
        "playbooks": new.playbooks,
        "issue_url": new.issue_url,
        "metadata_": new.metadata | {"check_run_id": run.id},
        "last_seen_at": at,
        "created_at": at,
        "updated_at": at,
    }


async def open_one(
    session: AsyncSession, run: CheckRun, new: NewIncident, cap: IncidentCap
) -> tuple[Incident, bool] | None:
    """Open the incident of a failing run, or count a repeat on the active one; whether it is
    new; None when the per-key cap refuses it (noted on the run, which is kept)."""
    incident = replace(new, metadata=new.metadata | {"check_run_id": run.id})
    try:  # the cap refuses before writing anything, so no savepoint is needed
        found, created = await create_incident(
            session, new=incident, actor=actor_of(run.check_id), cap=cap, at=run.started_at
        )
        run.incident_id = found.id
        return found, created
    except RateLimited as capped:  # the run is kept; the flood of incidents is not
        run.context = run.context | {"incident_refused": capped.message}
        return None
