"""Opening many incidents in one statement, where it is safe (check sweeps, alert storms).

Opening one by one costs each a lookup, a cap query, a savepoint and three flushes. The batch
path takes keys the caller already found without an active incident, counts the recent incidents
of every key in one query, and inserts the incidents in one statement. What the batch cannot
decide alone goes the one-by-one way of `create_incident`, which settles it exactly: a key near
its cap (the exact refusal and its message), a key another process took meanwhile (the unique
index refuses the batch, which is undone and left to the caller's one-by-one path).
"""

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from models.bulk import insert_all
from models.enums import IncidentKind, IncidentStatus
from models.incident import Incident
from models.services.incidents import IncidentCap, NewIncident

Dated = tuple[NewIncident, datetime]  # what to open, and when it was seen


async def near_cap(
    session: AsyncSession, items: list[Dated], cap: IncidentCap
) -> set[tuple[IncidentKind, str]]:
    """The keys the cap may refuse: cap.limit or more incidents lately (counted from the
    earliest item's window, so never fewer than the exact count of any item's)."""
    if not items:
        return set()
    since = min(at for _, at in items) - cap.window
    rows = await session.execute(
        select(Incident.kind, Incident.key, func.count())
        .where(
            tuple_(Incident.kind, Incident.key).in_(
                sorted({(new.kind.value, new.key) for new, _ in items})
            )
        )
        .where(Incident.created_at > since)
        .group_by(Incident.kind, Incident.key)
    )
    return {(kind, key) for kind, key, count in rows if count >= cap.limit}


async def insert_incidents(session: AsyncSession, items: list[Dated]) -> list[Incident] | None:
    """Insert the incidents in one statement; None (nothing written) when one's key is taken.
    The caller records their creation (`Incident.record_created`)."""
    if not items:
        return []
    await session.flush()  # what is pending already stays out of the savepoint below
    try:
        async with session.begin_nested():
            return await insert_all(session, Incident, [_row(new, at) for new, at in items])
    except IntegrityError:
        return None


def _row(new: NewIncident, at: datetime) -> dict[str, Any]:
    return {
        "kind": new.kind,
        "key": new.key,
        "severity": new.severity,
        "status": IncidentStatus.OPEN,
        "summary": new.summary,
        "details": new.details,
        "playbooks": new.playbooks,
        "issue_url": new.issue_url,
        "metadata_": new.metadata,
        "last_seen_at": at,
        "created_at": at,
        "updated_at": at,
    }
