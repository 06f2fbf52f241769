"""Counts for the metrics endpoint: one GROUP BY query per family, read at scrape time, so every
API process reports the same numbers."""

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.action import Action
from models.enums import IncidentStatus, Severity
from models.incident import Incident


async def incident_counts(session: AsyncSession) -> dict[tuple[IncidentStatus, Severity], int]:
    """Incidents by (status, severity); every pair is present, absent ones as 0."""
    counts = {(status, severity): 0 for status in IncidentStatus for severity in Severity}
    rows = await session.execute(
        select(Incident.status, Incident.severity, func.count()).group_by(
            Incident.status, Incident.severity
        )
    )
    for status, severity, count in rows:
        counts[(IncidentStatus(status), Severity(severity))] = count
    return counts


async def action_counts(session: AsyncSession) -> dict[tuple[str, str], int]:
    """Actions by (type, status) for the pairs that exist (dry-runs have statuses of their own)."""
    rows = await session.execute(
        select(Action.action_type, Action.status, func.count()).group_by(
            Action.action_type, Action.status
        )
    )
    return {(kind, status): count for kind, status, count in rows}
