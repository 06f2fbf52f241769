"""An incident's report: the facts read from the incident, its timeline, actions, check runs and
notifications, and what people wrote (root cause, follow-ups) saved with a version; the API
lays them out as Markdown or JSON (api/report.py)."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models.action import Action
from models.base import utcnow
from models.check_run import CheckRun
from models.errors import Conflict
from models.incident import Incident, TimelineEntry
from models.notification import Notification
from models.report import ReportText
from models.services.incidents import get_incident

AROUND = timedelta(hours=1)  # the check's runs this long before the incident and after its end
MAX_RUNS = 500


@dataclass(frozen=True)
class ReportFacts:
    incident: Incident
    timeline: list[TimelineEntry]
    actions: list[Action]
    runs: list[CheckRun]  # the incident's check, around the incident, oldest first
    notifications: list[Notification]
    text: ReportText | None  # None: nobody wrote anything yet


async def report_facts(session: AsyncSession, incident_id: int, now: datetime) -> ReportFacts:
    incident = await get_incident(session, incident_id)
    timeline = await session.scalars(
        select(TimelineEntry)
        .where(TimelineEntry.incident_id == incident_id)
        .order_by(TimelineEntry.at, TimelineEntry.id)
    )
    actions = await session.scalars(
        select(Action).where(Action.incident_id == incident_id).order_by(Action.id)
    )
    notifications = await session.scalars(
        select(Notification)
        .where(Notification.incident_id == incident_id)
        .order_by(Notification.round, Notification.step, Notification.id)
    )
    return ReportFacts(
        incident=incident,
        timeline=list(timeline),
        actions=list(actions),
        runs=await _runs_around(session, incident, now),
        notifications=list(notifications),
        text=await session.get(ReportText, incident_id),
    )


async def _runs_around(session: AsyncSession, incident: Incident, now: datetime) -> list[CheckRun]:
    """The measurements of the check(s) that opened or counted on the incident, from an hour
    before it opened to an hour after it was resolved (or now)."""
    checks = list(
        await session.scalars(
            select(CheckRun.check_id).where(CheckRun.incident_id == incident.id).distinct()
        )
    )
    if not checks:
        return []
    end = (incident.closed_at or incident.resolved_at or now) + AROUND
    rows = await session.scalars(
        select(CheckRun)
        .where(
            CheckRun.check_id.in_(checks),
            CheckRun.started_at >= incident.created_at - AROUND,
            CheckRun.started_at <= end,
        )
        .order_by(CheckRun.started_at, CheckRun.id)
        .limit(MAX_RUNS)
    )
    return list(rows)


async def save_text(
    session: AsyncSession,
    incident_id: int,
    *,
    root_cause: str,
    follow_ups: str,
    actor: str,
    base_version: int | None,
) -> ReportText:
    """Save what people wrote as the next version (Conflict when `base_version` is given and
    someone saved another meanwhile: nothing is overwritten unseen), noted on the timeline."""
    incident = await get_incident(session, incident_id, for_update=True)  # one writer at a time
    text = await session.get(ReportText, incident_id)
    current = text.version if text else 0
    if base_version is not None and base_version != current:
        raise Conflict(
            f"The report is at version {current}, not {base_version}: read it again",
            details={"version": current, "base_version": base_version},
        )
    at = utcnow()
    if text is None:
        text = ReportText(incident_id=incident_id, version=0, updated_by=actor)
        session.add(text)
    text.root_cause, text.follow_ups = root_cause, follow_ups
    text.version, text.updated_by, text.updated_at = current + 1, actor, at
    incident.note(actor=actor, verb="report_edited", notes=f"version {current + 1}", at=at)
    await session.flush()
    return text
