"""Webhook subscriptions and their deliveries: what the API manages and the worker sends.

The worker's part: find the subscriptions `with_work`, then per subscription `claim_one` its
lease, `take_events` (delivery rows written and the position moved in one transaction), send
the `head` delivery, `record_attempt`, and `release`. Sending itself (HTTP) is in
deployments/webhooks.py.
"""

import json
import random
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models.base import isoformat
from models.enums import DeliveryStatus
from models.errors import NotFound
from models.event import Event
from models.incident import Incident
from models.webhook import Webhook, WebhookDelivery

TAKE_BATCH = 500


@dataclass(frozen=True)
class NewWebhook:
    url: str
    event_types: list[str]
    severities: list[str] | None
    kinds: list[str] | None
    secret: str | None  # None: one is made (and shown once)
    description: str | None


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


async def create_webhook(
    session: AsyncSession, *, new: NewWebhook, created_by: str, at: datetime
) -> Webhook:
    """A subscription to the events from now on (the newest event id is its position)."""
    secret = new.secret or new_secret()
    newest = await session.scalar(select(func.max(Event.id))) or 0
    webhook = Webhook(
        url=new.url,
        description=new.description,
        event_types=sorted(set(new.event_types)),
        severities=sorted(set(new.severities)) if new.severities else None,
        kinds=sorted(set(new.kinds)) if new.kinds else None,
        secret=secret,
        secret_prefix=secret[:10],
        position=newest,
        created_at=at,
        created_by=created_by,
    )
    session.add(webhook)
    await session.flush()
    return webhook


async def list_webhooks(session: AsyncSession) -> list[Webhook]:
    return list(
        await session.scalars(
            select(Webhook).where(Webhook.deleted_at.is_(None)).order_by(Webhook.id)
        )
    )


async def get_webhook(session: AsyncSession, webhook_id: int, *, lock: bool = False) -> Webhook:
    query = select(Webhook).where(Webhook.id == webhook_id, Webhook.deleted_at.is_(None))
    webhook = await session.scalar(query.with_for_update() if lock else query)
    if webhook is None:
        raise NotFound(f"Webhook {webhook_id} not found", details={"webhook_id": webhook_id})
    return webhook


async def delete_webhook(session: AsyncSession, webhook_id: int, *, at: datetime) -> None:
    """Stop it for good; its deliveries stay readable in the database for the record."""
    webhook = await get_webhook(session, webhook_id, lock=True)
    webhook.deleted_at, webhook.enabled = at, False


async def enable_webhook(session: AsyncSession, webhook_id: int) -> Webhook:
    """Back on after it was disabled: it resumes from its position, so nothing is skipped."""
    webhook = await get_webhook(session, webhook_id, lock=True)
    webhook.enabled, webhook.consecutive_failures = True, 0
    webhook.disabled_at = webhook.disabled_reason = None
    return webhook


async def list_deliveries(
    session: AsyncSession,
    webhook_id: int,
    *,
    status: DeliveryStatus | None = None,
    limit: int = 50,
    before: int | None = None,
) -> list[WebhookDelivery]:
    """Newest first; `before` pages back from a delivery id."""
    await get_webhook(session, webhook_id)
    query = select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
    if status is not None:
        query = query.where(WebhookDelivery.status == status.value)
    if before is not None:
        query = query.where(WebhookDelivery.id < before)
    return list(await session.scalars(query.order_by(WebhookDelivery.id.desc()).limit(limit)))


async def redeliver(
    session: AsyncSession, webhook_id: int, delivery_id: int, *, at: datetime
) -> WebhookDelivery:
    """Send a delivery's event again, as a new delivery at the end of the queue."""
    await get_webhook(session, webhook_id)
    original = await session.scalar(
        select(WebhookDelivery).where(
            WebhookDelivery.id == delivery_id, WebhookDelivery.webhook_id == webhook_id
        )
    )
    if original is None:
        raise NotFound(
            f"Delivery {delivery_id} of webhook {webhook_id} not found",
            details={"webhook_id": webhook_id, "delivery_id": delivery_id},
        )
    again = WebhookDelivery(
        webhook_id=webhook_id,
        event_id=original.event_id,
        event_type=original.event_type,
        body=original.body,
        created_at=at,
        next_attempt_at=at,
        redelivery_of=original.id,
    )
    session.add(again)
    await session.flush()
    return again


# -- the worker's side --------------------------------------------------------------------


def _lease_free(owner: str, now: datetime) -> ColumnElement[bool]:
    return or_(
        Webhook.lease_until.is_(None), Webhook.lease_until < now, Webhook.lease_owner == owner
    )


async def with_work(session: AsyncSession, *, owner: str, now: datetime) -> list[int]:
    """Enabled subscriptions that have something to do (events past their position, or a
    delivery due) and no other worker's lease: a read, so an idle worker writes nothing."""
    newest = select(func.max(Event.id)).scalar_subquery()
    due = (
        select(WebhookDelivery.id)
        .where(
            WebhookDelivery.webhook_id == Webhook.id,
            WebhookDelivery.status == DeliveryStatus.PENDING.value,
            WebhookDelivery.next_attempt_at <= now,
        )
        .exists()
    )
    return list(
        await session.scalars(
            select(Webhook.id).where(
                Webhook.enabled.is_(True),
                Webhook.deleted_at.is_(None),
                _lease_free(owner, now),
                or_(Webhook.position < newest, due),
            )
        )
    )


async def claim_one(
    session: AsyncSession, *, webhook_id: int, owner: str, now: datetime, lease: timedelta
) -> bool:
    """Take (or renew) one subscription's lease; False if another worker holds it."""
    result = await session.execute(
        update(Webhook)
        .where(Webhook.id == webhook_id, Webhook.enabled.is_(True), _lease_free(owner, now))
        .values(lease_owner=owner, lease_until=now + lease)
    )
    return getattr(result, "rowcount", 0) == 1


async def release(session: AsyncSession, *, webhook_id: int, owner: str) -> None:
    await session.execute(
        update(Webhook)
        .where(Webhook.id == webhook_id, Webhook.lease_owner == owner)
        .values(lease_owner=None, lease_until=None)
    )


def wanted(webhook: Webhook, event: Event, incident: Incident | None) -> bool:
    if event.type not in webhook.event_types:
        return False
    if webhook.severities and (incident is None or incident.severity not in webhook.severities):
        return False
    return not webhook.kinds or (incident is not None and incident.kind in webhook.kinds)


def body_of(event: Event) -> str:
    """What is sent, and signed: the event as the SSE stream has it, with its id and type."""
    document = {
        "id": event.id,
        "type": event.type,
        "created_at": isoformat(event.created_at),
        "data": event.payload,
    }
    return json.dumps(document, separators=(",", ":"), sort_keys=True)


async def take_events(session: AsyncSession, *, webhook_id: int, now: datetime) -> int:
    """Queue a delivery for each new event the subscription wants, and move its position past
    every event looked at, in this one transaction. Returns how many were queued."""
    webhook = await get_webhook(session, webhook_id, lock=True)
    rows = (
        await session.execute(
            select(Event, Incident)
            .outerjoin(Incident, Incident.id == Event.incident_id)
            .where(Event.id > webhook.position)
            .order_by(Event.id)
            .limit(TAKE_BATCH)
        )
    ).all()
    queued = 0
    for event, incident in rows:
        if wanted(webhook, event, incident):
            delivery = WebhookDelivery(
                webhook_id=webhook.id,
                event_id=event.id,
                event_type=event.type,
                body=body_of(event),
                created_at=now,
                next_attempt_at=now,
            )
            session.add(delivery)
            queued += 1
    if rows:
        webhook.position = rows[-1][0].id
    return queued


async def head(session: AsyncSession, *, webhook_id: int) -> WebhookDelivery | None:
    """The oldest delivery not yet done: the only one that may be sent (order per webhook)."""
    return await session.scalar(
        select(WebhookDelivery)
        .where(
            WebhookDelivery.webhook_id == webhook_id,
            WebhookDelivery.status == DeliveryStatus.PENDING.value,
        )
        .order_by(WebhookDelivery.id)
        .limit(1)
    )


@dataclass(frozen=True)
class Attempt:
    status_code: int | None  # None: no answer (network error, timeout, blocked)
    error: str | None
    latency_ms: float
    retryable: bool


@dataclass(frozen=True)
class RetryPolicy:
    retry_for: timedelta
    backoff: float
    backoff_max: float
    disable_after: int

    def delay(self, attempts: int) -> timedelta:
        """Exponential, with jitter: between half and all of base * 2^(attempts - 1)."""
        ceiling = min(self.backoff_max, self.backoff * 2 ** (attempts - 1))
        return timedelta(seconds=ceiling * random.uniform(0.5, 1.0))  # noqa: S311


async def record_attempt(
    session: AsyncSession,
    *,
    delivery_id: int,
    attempt: Attempt,
    policy: RetryPolicy,
    now: datetime,
) -> WebhookDelivery:
    """Note an attempt; settle the delivery (succeeded, or failed for good) or schedule the
    next attempt; keep count of failures in a row and disable a subscription that keeps
    failing."""
    delivery = await session.get(WebhookDelivery, delivery_id, with_for_update=True)
    if delivery is None:
        raise NotFound(f"Delivery {delivery_id} not found")
    webhook = await session.get(Webhook, delivery.webhook_id, with_for_update=True)
    assert webhook is not None
    delivery.attempts += 1
    delivery.first_attempt_at = delivery.first_attempt_at or now
    delivery.last_status_code, delivery.last_error = attempt.status_code, attempt.error
    delivery.latency_ms = attempt.latency_ms
    succeeded = attempt.status_code is not None and 200 <= attempt.status_code < 300
    if succeeded:
        delivery.status, delivery.completed_at = DeliveryStatus.SUCCEEDED.value, now
        webhook.consecutive_failures = 0
        return delivery
    retry_at = now + policy.delay(delivery.attempts)
    if attempt.retryable and retry_at <= delivery.first_attempt_at + policy.retry_for:
        delivery.next_attempt_at = retry_at
        return delivery
    delivery.status, delivery.completed_at = DeliveryStatus.FAILED.value, now
    webhook.consecutive_failures += 1
    if webhook.consecutive_failures >= policy.disable_after and webhook.enabled:
        webhook.enabled, webhook.disabled_at = False, now
        webhook.disabled_reason = (
            f"{webhook.consecutive_failures} deliveries in a row failed; the last: "
            f"{attempt.error or f'HTTP {attempt.status_code}'}"
        )
    return delivery


async def delivery_counts(
    session: AsyncSession, webhook_ids: list[int]
) -> dict[int, dict[str, int]]:
    """Deliveries per status for each subscription (every status, zeros included), in one
    query however many subscriptions are listed."""
    counts = {webhook_id: dict.fromkeys(DeliveryStatus, 0) for webhook_id in webhook_ids}
    rows = await session.execute(
        select(WebhookDelivery.webhook_id, WebhookDelivery.status, func.count())
        .where(WebhookDelivery.webhook_id.in_(webhook_ids))
        .group_by(WebhookDelivery.webhook_id, WebhookDelivery.status)
    )
    for webhook_id, status, count in rows:
        counts[webhook_id][DeliveryStatus(status)] = count
    return {
        webhook_id: {status.value: n for status, n in by_status.items()}
        for webhook_id, by_status in counts.items()
    }
