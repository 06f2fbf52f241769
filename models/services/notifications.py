"""Escalation state and notifications: what the escalation pass (oncall/escalation.py) reads and
writes, and what delivery (deployments/notifier.py) claims and settles."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import exists, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from models.access import ApprovalRequest
from models.enums import IncidentStatus
from models.incident import Incident, TimelineEntry
from models.notification import Escalation, Notification

MAX_ATTEMPTS = 12  # with the backoff, about a day of trying


@dataclass(frozen=True)
class Page:
    """One notification to write: to whom, how, for which step."""

    target: str
    recipient: str
    medium: str
    address: str


@dataclass(frozen=True)
class Waiting:
    """An incident nobody acknowledged yet: what a pass needs to know whether it has work."""

    incident_id: int
    reopen_count: int
    escalation: Escalation | None  # None: not begun


async def open_incidents(session: AsyncSession) -> list[Waiting]:
    """Incidents nobody acknowledged yet, each with its escalation state: two columns of the
    incident, not the whole row (a pass runs after every commit that wrote events)."""
    rows = await session.execute(
        select(Incident.id, Incident.reopen_count, Escalation)
        .outerjoin(Escalation, Escalation.incident_id == Incident.id)
        .where(Incident.status == IncidentStatus.OPEN)
        .order_by(Incident.id)
    )
    return [Waiting(row[0], row[1], row[2]) for row in rows]


async def lock_escalation(session: AsyncSession, incident_id: int) -> Escalation | None:
    return await session.scalar(
        select(Escalation).where(Escalation.incident_id == incident_id).with_for_update()
    )


async def begin(
    session: AsyncSession, incident_id: int, *, policy: str | None, round: int, at: datetime
) -> Escalation | None:
    """The escalation of an incident, begun now; None if another process began it meanwhile."""
    try:
        async with session.begin_nested():
            escalation = Escalation(
                incident_id=incident_id, policy=policy, round=round, started_at=at, updated_at=at
            )
            session.add(escalation)
            await session.flush()
    except IntegrityError:
        return None
    return escalation


async def write_pages(
    session: AsyncSession,
    *,
    incident_id: int,
    policy: str,
    round: int,
    step: int,
    pages: list[Page],
    at: datetime,
) -> int:
    """The step's notifications, each written once (a second process's copy is dropped)."""
    written = 0
    for page in pages:
        try:
            async with session.begin_nested():
                session.add(
                    Notification(
                        incident_id=incident_id,
                        policy=policy,
                        round=round,
                        step=step,
                        target=page.target,
                        recipient=page.recipient,
                        medium=page.medium,
                        address=page.address,
                        next_attempt_at=at,
                        created_at=at,
                    )
                )
                await session.flush()
            written += 1
        except IntegrityError:
            continue
    return written


async def claim(
    session: AsyncSession,
    *,
    owner: str,
    now: datetime,
    lease: timedelta,
    media: tuple[str, ...] = ("email",),
    limit: int = 20,
) -> list[Notification]:
    """Pending notifications by `media` (those this process can send) whose time has come,
    leased to `owner`."""
    due = list(
        await session.scalars(
            select(Notification.id)
            .where(
                Notification.status == "pending",
                Notification.medium.in_(media),
                Notification.next_attempt_at <= now,
                or_(Notification.lease_until.is_(None), Notification.lease_until < now),
            )
            .order_by(Notification.id)
            .limit(limit)
        )
    )
    if not due:
        return []
    await session.execute(
        update(Notification)
        .where(
            Notification.id.in_(due),
            or_(Notification.lease_until.is_(None), Notification.lease_until < now),
        )
        .values(lease_owner=owner, lease_until=now + lease)
    )
    return list(
        await session.scalars(
            select(Notification)
            .where(Notification.id.in_(due), Notification.lease_owner == owner)
            .order_by(Notification.id)
        )
    )


async def settle(
    session: AsyncSession,
    notification_id: int,
    *,
    owner: str,
    error: str | None,
    retry_in: timedelta,
    now: datetime,
    posted: tuple[str, str] | None = None,
    shown_at: datetime | None = None,
) -> None:
    """Delivered (a Slack message: its channel and ts, showing the incident as read at
    `shown_at`), or the next try scheduled (failed for good after MAX_ATTEMPTS). Delivered and
    failed for good are on the incident's timeline (`notified`, `notify_failed`)."""
    notification = await session.get(Notification, notification_id, with_for_update=True)
    if notification is None or notification.lease_owner != owner:
        return
    notification.attempts += 1
    notification.lease_owner, notification.lease_until = None, None
    if error is None:
        notification.status, notification.delivered_at, notification.last_error = (
            "delivered",
            now,
            None,
        )
        if posted is not None:
            notification.message_channel, notification.message_ts = posted
            notification.synced_at = shown_at or now
        session.add(_told(notification, "notified", now))
        return
    notification.last_error = error[:1000]
    if notification.attempts >= MAX_ATTEMPTS:
        notification.status = "failed"
        session.add(_told(notification, "notify_failed", now))
    else:
        notification.next_attempt_at = now + retry_in


def _told(notification: Notification, verb: str, at: datetime) -> TimelineEntry:
    n = notification
    notes = f"{n.medium} to {n.recipient} ({n.address}): policy {n.policy}, step {n.step + 1}"
    notes += f", round {n.round + 1}" if n.round else ""  # both count from 0, as stored
    notes += f"\n{n.last_error}" if verb == "notify_failed" else ""
    return TimelineEntry(
        incident_id=n.incident_id,
        actor="notifier",
        verb=verb,
        from_status=None,
        to_status=None,
        notes=notes[:4000],
        at=at,
    )


async def of_incident(session: AsyncSession, incident_id: int) -> list[Notification]:
    rows = await session.scalars(
        select(Notification)
        .where(Notification.incident_id == incident_id)
        .order_by(Notification.round, Notification.step, Notification.id)
    )
    return list(rows)


async def out_of_date(session: AsyncSession, limit: int = 20) -> list[Notification]:
    """Slack messages that no longer show their incident as it is: it changed, or one of its
    approval requests was made or decided, after the message was last written."""
    changed_approval = exists().where(
        ApprovalRequest.incident_id == Notification.incident_id,
        or_(
            ApprovalRequest.requested_at > Notification.synced_at,
            ApprovalRequest.decided_at > Notification.synced_at,
        ),
    )
    rows = await session.scalars(
        select(Notification)
        .join(Incident, Incident.id == Notification.incident_id)
        .where(
            Notification.message_ts.is_not(None),
            or_(Incident.updated_at > Notification.synced_at, changed_approval),
        )
        .order_by(Notification.id)
        .limit(limit)
    )
    return list(rows)


async def mark_synced(session: AsyncSession, notification_id: int, at: datetime) -> None:
    """The message shows the incident as read at `at` (a change after it is synced next)."""
    await session.execute(
        update(Notification)
        .where(
            Notification.id == notification_id,
            or_(Notification.synced_at.is_(None), Notification.synced_at < at),
        )
        .values(synced_at=at)
    )


async def pending_approvals(
    session: AsyncSession, incident_id: int, now: datetime
) -> list[ApprovalRequest]:
    """The incident's approval requests someone may still decide (shown with Approve / Deny)."""
    rows = await session.scalars(
        select(ApprovalRequest)
        .where(
            ApprovalRequest.incident_id == incident_id,
            ApprovalRequest.status == "pending",
            ApprovalRequest.expires_at > now,
        )
        .order_by(ApprovalRequest.id)
    )
    return list(rows)
