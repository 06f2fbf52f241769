"""Which incident reports are due on Prefect, and what was published (deployments/
report_artifacts.py publishes them).

A report is due when its incident is resolved or closed, or someone saved its report text, has
an action with a flow run to show it on, and has a timeline entry newer than the one its last
publication showed (none yet: any). Every change worth showing writes a timeline entry: a
status change, a saved report version, an action's outcome, a note.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.action import Action
from models.enums import IncidentStatus
from models.incident import Incident, TimelineEntry
from models.report import ReportArtifact, ReportText
from models.services.reports import ReportFacts, report_facts

SETTLED = (IncidentStatus.RESOLVED, IncidentStatus.CLOSED)


@dataclass(frozen=True)
class Publication:
    facts: ReportFacts
    entry_id: int  # the newest timeline entry the report shows, at least
    flow_run_id: str  # the incident's last action run: where it is shown


async def due_reports(
    session: AsyncSession, *, limit: int, skip: frozenset[int] = frozenset()
) -> list[int]:
    """The incidents whose report is due, oldest first (but those in `skip`)."""
    newest = (
        select(func.max(TimelineEntry.id))
        .where(TimelineEntry.incident_id == Incident.id)
        .scalar_subquery()
    )
    written = exists().where(ReportText.incident_id == Incident.id)
    has_run = exists().where(Action.incident_id == Incident.id, Action.flow_run_id.is_not(None))
    query = (
        select(Incident.id)
        .outerjoin(ReportArtifact, ReportArtifact.incident_id == Incident.id)
        .where(or_(Incident.status.in_(SETTLED), written), has_run)
        .where(newest > func.coalesce(ReportArtifact.entry_id, 0))
        .order_by(Incident.id)
        .limit(limit)
    )
    if skip:
        query = query.where(Incident.id.not_in(skip))
    return list(await session.scalars(query))


async def publication(session: AsyncSession, incident_id: int, now: datetime) -> Publication | None:
    """The report to publish (None: no action run to show it on). The newest entry is read
    before the facts: on PostgreSQL each read sees the latest commits, so the report shows at
    least that entry and never less than its mark claims."""
    entry_id = await session.scalar(
        select(func.max(TimelineEntry.id)).where(TimelineEntry.incident_id == incident_id)
    )
    facts = await report_facts(session, incident_id, now)
    runs = [action.flow_run_id for action in facts.actions if action.flow_run_id is not None]
    if entry_id is None or not runs:
        return None
    return Publication(facts=facts, entry_id=entry_id, flow_run_id=runs[-1])


async def mark_published(
    session: AsyncSession, incident_id: int, *, entry_id: int, flow_run_id: str, at: datetime
) -> None:
    """Remember a publication; never back to an older entry (another services process may
    have published a newer one meanwhile)."""
    # one writer per incident, as everywhere: two first publications would both insert
    locked = await session.scalar(
        select(Incident.id).where(Incident.id == incident_id).with_for_update()
    )
    if locked is None:
        return
    published = await session.get(ReportArtifact, incident_id, populate_existing=True)
    if published is None:
        session.add(
            ReportArtifact(
                incident_id=incident_id, entry_id=entry_id, flow_run_id=flow_run_id, published_at=at
            )
        )
    elif entry_id > published.entry_id:
        published.entry_id, published.flow_run_id, published.published_at = (
            entry_id,
            flow_run_id,
            at,
        )
    await session.flush()
