"""Opening the incidents of a sweep's failing runs, all at once where it is safe.

One sweep can open hundreds (a warehouse-wide breakage). The sweep already locked the active
incidents of its keys (none for these); models/services/batch_open.py inserts them in one
statement, and what it cannot decide alone (a key near its cap, a key another process took
meanwhile) goes the one-by-one way of `create_incident` here.
"""

from dataclasses import replace

from sqlalchemy.ext.asyncio import AsyncSession

from models.check_run import CheckRun
from models.enums import IncidentKind
from models.errors import RateLimited
from models.incident import Incident
from models.services.batch_open import Dated, insert_incidents, near_cap
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
    capped = await near_cap(session, [_dated(item) for item in firsts.values()], cap)
    batch = [item for key, item in firsts.items() if key not in capped]
    incidents = await insert_incidents(session, [_dated(item) for item in batch])
    if incidents is None:  # a key was taken meanwhile: every one the exact way
        incidents, batch = [], []
    opened: dict[tuple[IncidentKind, str], Incident] = {}
    for (run, new), incident in zip(batch, incidents, strict=True):
        incident.record_created(actor=actor_of(run.check_id), at=run.started_at, notes=new.said)
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


def _dated(item: Pending) -> Dated:
    run, new = item
    return replace(new, metadata=new.metadata | {"check_run_id": run.id}), run.started_at


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
