"""Webhooks (admin): subscriptions to the event log, their deliveries, and redelivery.

Delivery itself runs in the worker (deployments/webhooks.py), never in the API."""

import asyncio
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status
from fastapi.exceptions import RequestValidationError

from api.auth import AdminDep
from api.deps import SessionDep, SettingsDep
from api.schemas.webhooks import (
    DeliveryList,
    DeliveryRead,
    WebhookCreate,
    WebhookCreated,
    WebhookList,
    WebhookRead,
)
from integrations.webhook_targets import BlockedTarget, check_target
from models.base import utcnow
from models.enums import DeliveryStatus
from models.services import webhooks as service
from models.webhook import Webhook

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

WebhookId = Annotated[int, Path(ge=1, le=2**63 - 1)]
DeliveryId = Annotated[int, Path(ge=1, le=2**63 - 1)]


async def _read_all(session: SessionDep, webhooks: list[Webhook]) -> list[WebhookRead]:
    counts = await service.delivery_counts(session, [w.id for w in webhooks])
    reads = [WebhookRead.model_validate(w) for w in webhooks]
    for read in reads:
        read.deliveries = counts[read.id]
    return reads


async def _read(session: SessionDep, webhook: Webhook) -> WebhookRead:
    return (await _read_all(session, [webhook]))[0]


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_webhook(
    body: WebhookCreate, admin: AdminDep, session: SessionDep, settings: SettingsDep
) -> WebhookCreated:
    """Subscribe a URL to events from now on; the answer holds the signing secret, once."""
    url = str(body.url)
    try:
        await asyncio.to_thread(check_target, url, allow_private=settings.webhook_allow_private)
    except BlockedTarget as exc:
        raise RequestValidationError(
            [{"loc": ("body", "url"), "msg": f"Target refused: {exc}", "type": "blocked_target"}]
        ) from None
    new = service.NewWebhook(
        url=url,
        event_types=list(body.event_types),
        severities=[s.value for s in body.severities] if body.severities else None,
        kinds=[k.value for k in body.kinds] if body.kinds else None,
        secret=body.secret,
        description=body.description,
    )
    webhook = await service.create_webhook(session, new=new, created_by=admin.name, at=utcnow())
    read = await _read(session, webhook)
    return WebhookCreated(**read.model_dump(), secret=webhook.secret)


@router.get("")
async def list_webhooks(_admin: AdminDep, session: SessionDep) -> WebhookList:
    """Every subscription, with its state and delivery counts (never its secret)."""
    return WebhookList(webhooks=await _read_all(session, await service.list_webhooks(session)))


@router.get("/{webhook_id}")
async def get_webhook(webhook_id: WebhookId, _admin: AdminDep, session: SessionDep) -> WebhookRead:
    """One subscription: enabled or why it was disabled, its position, delivery counts."""
    return await _read(session, await service.get_webhook(session, webhook_id))


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_webhook(webhook_id: WebhookId, _admin: AdminDep, session: SessionDep) -> Response:
    """Stop a subscription for good (pending deliveries are not sent)."""
    await service.delete_webhook(session, webhook_id, at=utcnow())
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{webhook_id}/enable")
async def enable_webhook(
    webhook_id: WebhookId, _admin: AdminDep, session: SessionDep
) -> WebhookRead:
    """Turn a disabled subscription back on; it resumes where it stopped."""
    return await _read(session, await service.enable_webhook(session, webhook_id))


@router.get("/{webhook_id}/deliveries")
async def list_deliveries(
    webhook_id: WebhookId,
    _admin: AdminDep,
    session: SessionDep,
    status_: Annotated[DeliveryStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> DeliveryList:
    """Deliveries, newest first: status, attempts, last response code, latency."""
    rows = await service.list_deliveries(
        session, webhook_id, status=status_, limit=limit, before=before
    )
    return DeliveryList(
        webhook_id=webhook_id, deliveries=[DeliveryRead.model_validate(d) for d in rows]
    )


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/redeliver", status_code=status.HTTP_202_ACCEPTED
)
async def redeliver(
    webhook_id: WebhookId, delivery_id: DeliveryId, _admin: AdminDep, session: SessionDep
) -> DeliveryRead:
    """Send a delivery's event again, as a new delivery queued behind the others."""
    again = await service.redeliver(session, webhook_id, delivery_id, at=utcnow())
    return DeliveryRead.model_validate(again)
