"""Webhook delivery against a real receiver: signatures, order, retries, giving up, disabling,
restarts mid-delivery, blocked targets. The subscriptions are made through the real API."""

import asyncio
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from httpx import AsyncClient
from sqlalchemy import func, select

from deployments.webhooks import Deliverer
from models.base import utcnow
from models.db import Database, transaction
from models.services import webhooks as service
from models.settings import Settings
from models.webhook import Webhook, WebhookDelivery
from tests.factories import create_incident
from tests.receiver import Receiver

FAST = {  # retries within the test's patience
    "webhook_backoff_seconds": 0.05,
    "webhook_backoff_max_seconds": 0.2,
    "webhook_retry_seconds": 5.0,
    "webhook_timeout_seconds": 5.0,
}


@pytest.fixture
async def deliverer(settings: Settings, db: Database) -> AsyncIterator[Deliverer]:
    async with httpx.AsyncClient(timeout=5, follow_redirects=False) as http:
        yield Deliverer(db, settings.model_copy(update=FAST), http)


async def subscribe(client: AsyncClient, url: str, **fields: Any) -> dict[str, Any]:
    body = {"url": url, "event_types": ["incident_created", "incident_updated"]} | fields
    response = await client.post("/api/webhooks", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def deliver_all(deliverer: Deliverer, *, seconds: float = 30) -> None:
    """Passes until no enabled subscription has a delivery left (retries included)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not await deliverer.pass_once():
            async with transaction(deliverer.database.reader) as session:
                waiting = await session.scalar(
                    select(func.count())
                    .select_from(WebhookDelivery)
                    .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
                    .where(WebhookDelivery.status == "pending", Webhook.enabled.is_(True))
                )
            if not waiting:
                return
            await asyncio.sleep(0.02)  # a retry comes due
    raise AssertionError("deliveries still waiting after all passes")


def verify(secret: str, headers: dict[str, str], body: bytes, tolerance: float = 300) -> bool:
    """The receiver's side, as docs/webhooks.md shows it."""
    timestamp = headers["x-intervene-timestamp"]
    if abs(time.time() - int(timestamp)) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return hmac.compare_digest(f"v1={expected.hexdigest()}", headers["x-intervene-signature"])


async def deliveries(client: AsyncClient, webhook_id: int) -> list[dict[str, Any]]:
    response = await client.get(f"/api/webhooks/{webhook_id}/deliveries")
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["deliveries"]
    return found


async def test_deliveries_are_signed_and_carry_the_event(
    client: AsyncClient, receiver: Receiver, deliverer: Deliverer
) -> None:
    hook = await subscribe(client, receiver.url)
    incident = await create_incident(client, key="INV_hook_signed", severity="sev1")

    await deliver_all(deliverer)

    [request] = receiver.requests
    assert verify(hook["secret"], request.headers, request.body)
    assert not verify("whsec_the-wrong-secret-entirely", request.headers, request.body)
    document = json.loads(request.body)
    assert document["type"] == request.headers["x-intervene-event"] == "incident_created"
    assert document["id"] == int(request.headers["x-intervene-event-id"])
    assert document["data"]["id"] == incident["id"]
    assert document["data"]["severity"] == "sev1"
    assert "created_at" in document
    [delivery] = await deliveries(client, hook["id"])
    assert delivery["status"] == "succeeded"
    assert (delivery["attempts"], delivery["last_status_code"]) == (1, 200)
    assert delivery["latency_ms"] > 0
    assert request.headers["x-intervene-delivery"] == str(delivery["id"])


async def test_each_subscription_gets_its_events_in_order(
    client: AsyncClient, receiver: Receiver, deliverer: Deliverer
) -> None:
    await subscribe(client, receiver.url)
    for n in range(6):
        incident = await create_incident(client, key=f"INV_hook_order_{n}")
        await client.post(f"/api/incidents/{incident['id']}/assign", json={"assigned_to": "x"})

    await deliver_all(deliverer)

    ids = receiver.event_ids()
    assert len(ids) == 12
    assert ids == sorted(ids)
    types = [r.headers["x-intervene-event"] for r in receiver.requests]
    assert types == ["incident_created", "incident_updated"] * 6


async def test_filters_pick_events_by_type_severity_and_kind(
    client: AsyncClient, receiver: Receiver, deliverer: Deliverer
) -> None:
    await subscribe(client, receiver.url, event_types=["incident_created"],
                    severities=["sev1"], kinds=["budget"])  # fmt: skip
    await create_incident(client, key="BUDGET_a_cost", kind="budget", severity="sev1")
    await create_incident(client, key="BUDGET_b_cost", kind="budget", severity="sev2")
    await create_incident(client, key="INV_hook_sev1", kind="invariant", severity="sev1")

    await deliver_all(deliverer)

    assert [json.loads(r.body)["data"]["key"] for r in receiver.requests] == ["BUDGET_a_cost"]


async def test_a_500_is_retried_until_it_succeeds_and_order_holds(
    client: AsyncClient, receiver: Receiver, deliverer: Deliverer
) -> None:
    hook = await subscribe(client, receiver.url)
    receiver.answers = [500, 503]  # the first event fails twice
    await create_incident(client, key="INV_hook_retry_1")
    await create_incident(client, key="INV_hook_retry_2")

    await deliver_all(deliverer)

    ids = receiver.event_ids()
    assert ids == [ids[0], ids[0], ids[0], ids[3]]  # the second waits for the first
    first, second = sorted(await deliveries(client, hook["id"]), key=lambda d: d["id"])
    assert (first["status"], first["attempts"], first["last_status_code"]) == ("succeeded", 3, 200)
    assert (second["status"], second["attempts"]) == ("succeeded", 1)


async def test_a_delivery_gives_up_after_its_retry_time_and_a_failing_hook_is_disabled(
    client: AsyncClient, receiver: Receiver, settings: Settings, db: Database
) -> None:
    hook = await subscribe(client, receiver.url)
    receiver.answers = [500] * 1000
    quick = FAST | {"webhook_retry_seconds": 0.3, "webhook_disable_after": 2}
    for n in range(3):
        await create_incident(client, key=f"INV_hook_down_{n}")

    async with httpx.AsyncClient() as http:
        await deliver_all(Deliverer(db, settings.model_copy(update=quick), http))

    state = (await client.get(f"/api/webhooks/{hook['id']}")).json()
    assert state["enabled"] is False
    assert "2 deliveries in a row failed" in state["disabled_reason"]
    assert state["deliveries"] == {"pending": 1, "succeeded": 0, "failed": 2}
    failed = [d for d in await deliveries(client, hook["id"]) if d["status"] == "failed"]
    assert all(d["attempts"] > 1 and d["last_status_code"] == 500 for d in failed)
    sent = len(receiver.requests)

    receiver.answers = []  # the target is back; an admin turns the hook on again
    enabled = await client.post(f"/api/webhooks/{hook['id']}/enable")
    async with httpx.AsyncClient() as http:
        await deliver_all(Deliverer(db, settings.model_copy(update=quick), http))

    assert enabled.json()["enabled"] is True
    assert len(receiver.requests) == sent + 1  # the third event, which had waited
    counts = (await client.get(f"/api/webhooks/{hook['id']}")).json()["deliveries"]
    assert counts == {"pending": 0, "succeeded": 1, "failed": 2}


async def test_a_refusal_is_not_retried_and_a_redelivery_sends_it_again(
    client: AsyncClient, receiver: Receiver, deliverer: Deliverer
) -> None:
    hook = await subscribe(client, receiver.url)
    receiver.answers = [400]
    await create_incident(client, key="INV_hook_refused")
    await deliver_all(deliverer)
    [refused] = await deliveries(client, hook["id"])

    again = await client.post(f"/api/webhooks/{hook['id']}/deliveries/{refused['id']}/redeliver")
    await deliver_all(deliverer)

    assert (refused["status"], refused["attempts"], refused["last_status_code"]) == (
        "failed",
        1,
        400,
    )
    assert again.status_code == 202
    assert again.json()["redelivery_of"] == refused["id"]
    assert [r.headers["x-intervene-event-id"] for r in receiver.requests] == [
        str(refused["event_id"])
    ] * 2
    newest = (await deliveries(client, hook["id"]))[0]
    assert (newest["id"], newest["status"]) == (again.json()["id"], "succeeded")


async def test_a_target_that_now_resolves_inside_is_not_sent_to(
    client: AsyncClient, receiver: Receiver, settings: Settings, db: Database
) -> None:
    hook = await subscribe(client, receiver.url)  # allowed when made (on-prem setting)
    await create_incident(client, key="INV_hook_blocked")
    strict = FAST | {"webhook_allow_private": False}

    async with httpx.AsyncClient() as http:
        await deliver_all(Deliverer(db, settings.model_copy(update=strict), http))

    assert receiver.requests == []
    [delivery] = await deliveries(client, hook["id"])
    assert delivery["status"] == "failed"
    assert "blocked target" in delivery["last_error"]


async def test_two_deliverers_never_send_the_same_delivery(
    client: AsyncClient, receiver: Receiver, settings: Settings, db: Database
) -> None:
    await subscribe(client, receiver.url)
    for n in range(8):
        await create_incident(client, key=f"INV_hook_two_{n}")

    async with httpx.AsyncClient() as http:
        one = Deliverer(db, settings.model_copy(update=FAST), http)
        two = Deliverer(db, settings.model_copy(update=FAST), http)
        for _ in range(20):
            await asyncio.gather(one.pass_once(), two.pass_once())

    ids = receiver.event_ids()
    assert len(ids) == 8
    assert ids == sorted(set(ids))


@pytest.mark.timeout(120)
async def test_a_worker_killed_mid_delivery_resumes_without_loss_or_repeats(
    client: AsyncClient, receiver: Receiver, settings: Settings
) -> None:
    await subscribe(client, receiver.url)
    for n in range(5):
        await create_incident(client, key=f"INV_hook_restart_{n}")
    receiver.hold_request = 3  # the third delivery is in flight when the worker dies
    env = os.environ | {
        "INTERVENE_DATABASE_URL": settings.database_url,
        "INTERVENE_WEBHOOK_ALLOW_PRIVATE": "true",
        "INTERVENE_WEBHOOK_POLL_SECONDS": "0.1",
        "INTERVENE_WEBHOOK_TIMEOUT_SECONDS": "2",  # its lease outlives the worker by 22 s
    }

    def start() -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "deployments.webhooks"]
        return subprocess.Popen(command, env=env, start_new_session=True)

    worker = start()
    try:
        assert await asyncio.to_thread(receiver.held.wait, 30)
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
        receiver.release.set()
        worker = start()
        deadline = time.monotonic() + 60
        while len(receiver.requests) < 6 and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait()

    ids = receiver.event_ids()
    deliveries_sent = [r.headers["x-intervene-delivery"] for r in receiver.requests]
    # the one in flight is sent again, with the same delivery id; nothing else repeats
    assert len(ids) == 6, ids
    assert ids[2] == ids[3]
    assert deliveries_sent[2] == deliveries_sent[3]
    assert ids[:3] + ids[4:] == sorted(set(ids))


@pytest.mark.parametrize(
    ("url", "allow_private", "why"),
    [
        ("http://0.1.2.3:{port}/hook", True, "this network"),
        ("http://[2002:a9fe:a9fe::1]:{port}/hook", False, "6to4 for 169.254.169.254"),
        ("http://[64:ff9b::7f00:1]:{port}/hook", False, "NAT64 for 127.0.0.1"),
    ],
)
async def test_a_stored_target_that_stands_for_a_refused_address_is_not_sent_to(
    client: AsyncClient,
    receiver: Receiver,
    settings: Settings,
    db: Database,
    url: str,
    allow_private: bool,
    why: str,
) -> None:
    """Checked again at delivery: a subscription stored before a form was refused (written
    here straight to the table, as the API refuses it now) sends nothing."""
    target = url.format(port=receiver.url.rsplit(":", 1)[1].split("/")[0])
    async with transaction(db.writer) as session:
        new = service.NewWebhook(url=target, event_types=["incident_created"], severities=None,
                                 kinds=None, secret=None, description=None)  # fmt: skip
        hook = await service.create_webhook(session, new=new, created_by="tests", at=utcnow())
    await create_incident(client, key="INV_hook_embedded")
    configured = FAST | {"webhook_allow_private": allow_private}

    async with httpx.AsyncClient(timeout=5, follow_redirects=False) as http:
        await deliver_all(Deliverer(db, settings.model_copy(update=configured), http))

    assert receiver.requests == []
    [delivery] = await deliveries(client, hook.id)
    assert delivery["status"] == "failed"
    assert delivery["attempts"] == 1  # refused, not retried
    assert "blocked target" in delivery["last_error"]
    assert why in delivery["last_error"]
