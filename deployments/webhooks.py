"""Webhook delivery, a loop of `intervene services` (deployments/services.py).

Each pass: lease the enabled subscriptions no other services process holds, and for each
(concurrently, so one slow target never holds up another) queue its new events, then send its
deliveries oldest first, one at a time: order per subscription. A delivery that fails
retryably (network error, timeout, 429, 5xx) blocks those behind it until it succeeds or its
retry time runs out.

At least once: a delivery is marked done only after its target answered. One that was in
flight when its services process died is sent again, with the same `X-Intervene-Delivery` id,
so receivers can drop the repeat; nothing else is repeated or lost (see models/webhook.py).

Signature: `X-Intervene-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>` with
`X-Intervene-Timestamp: <unix seconds>`; docs/webhooks.md shows how to verify it.
"""

import asyncio
import hashlib
import hmac
import logging
import os
import socket
import time
import uuid
from datetime import timedelta

import httpx

from integrations.webhook_targets import BlockedTarget, check_target
from models.base import utcnow
from models.db import Database, connect, transaction
from models.services import webhooks as service
from models.settings import Settings
from models.version import VERSION
from models.webhook import Webhook, WebhookDelivery

log = logging.getLogger("intervene.webhooks")

PER_PASS = 50  # deliveries per subscription per pass: the lease stays short and renewed
RETRYABLE_STATUS = frozenset({408, 425, 429})


def sign(secret: str, timestamp: int, body: str) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256)
    return f"v1={mac.hexdigest()}"


def headers_for(webhook: Webhook, delivery: WebhookDelivery, timestamp: int) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": f"Intervene-Webhooks/{VERSION}",
        "X-Intervene-Event": delivery.event_type,
        "X-Intervene-Event-Id": str(delivery.event_id),
        "X-Intervene-Delivery": str(delivery.id),
        "X-Intervene-Timestamp": str(timestamp),
        "X-Intervene-Signature": sign(webhook.secret, timestamp, delivery.body),
    }


class Deliverer:
    def __init__(self, database: Database, settings: Settings, http: httpx.AsyncClient) -> None:
        self.database = database
        self.settings = settings
        self.http = http
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease = timedelta(seconds=settings.webhook_timeout_seconds + 20)
        self.policy = service.RetryPolicy(
            retry_for=timedelta(seconds=settings.webhook_retry_seconds),
            backoff=settings.webhook_backoff_seconds,
            backoff_max=settings.webhook_backoff_max_seconds,
            disable_after=settings.webhook_disable_after,
        )

    async def pass_once(self) -> int:
        """One pass over every subscription; returns how many attempts were made."""
        async with transaction(self.database.reader) as session:
            wanted = await service.with_work(session, owner=self.owner, now=utcnow())
        if not wanted:
            return 0
        held = []
        async with transaction(self.database.writer) as session:
            for webhook_id in wanted:
                if await service.claim_one(
                    session, webhook_id=webhook_id, owner=self.owner, now=utcnow(), lease=self.lease
                ):
                    held.append(webhook_id)
        sent = await asyncio.gather(*(self._serve(webhook_id) for webhook_id in held))
        return sum(sent)

    async def _serve(self, webhook_id: int) -> int:
        attempts = 0
        try:
            async with transaction(self.database.writer) as session:
                await service.take_events(session, webhook_id=webhook_id, now=utcnow())
            while attempts < PER_PASS:
                async with transaction(self.database.reader) as session:
                    webhook = await session.get(Webhook, webhook_id, populate_existing=True)
                    delivery = await service.head(session, webhook_id=webhook_id)
                if webhook is None or not webhook.enabled or webhook.deleted_at is not None:
                    break
                if delivery is None or delivery.next_attempt_at > utcnow():
                    break
                attempt = await self._send(webhook, delivery)
                attempts += 1
                async with transaction(self.database.writer) as session:
                    await service.record_attempt(
                        session,
                        delivery_id=delivery.id,
                        attempt=attempt,
                        policy=self.policy,
                        now=utcnow(),
                    )
                    await service.claim_one(
                        session,
                        webhook_id=webhook_id,
                        owner=self.owner,
                        now=utcnow(),
                        lease=self.lease,
                    )
        except Exception:  # one subscription's trouble never stops the others
            log.exception("delivering for webhook %s failed", webhook_id)
        finally:
            async with transaction(self.database.writer) as session:
                await service.release(session, webhook_id=webhook_id, owner=self.owner)
        return attempts

    async def _send(self, webhook: Webhook, delivery: WebhookDelivery) -> service.Attempt:
        started = time.perf_counter()

        def took() -> float:
            return (time.perf_counter() - started) * 1000

        allow_private = self.settings.webhook_allow_private
        try:  # again at each delivery: the name may point somewhere else by now
            await asyncio.to_thread(check_target, webhook.url, allow_private=allow_private)
        except BlockedTarget as exc:
            return service.Attempt(None, f"blocked target: {exc}", took(), retryable=False)
        timestamp = int(time.time())
        try:
            response = await self.http.post(
                webhook.url,
                content=delivery.body.encode(),
                headers=headers_for(webhook, delivery, timestamp),
            )
        except httpx.TimeoutException:
            timeout = self.settings.webhook_timeout_seconds
            return service.Attempt(None, f"no answer within {timeout:g} s", took(), retryable=True)
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
            return service.Attempt(None, error, took(), retryable=True)
        code = response.status_code
        retryable = code >= 500 or code in RETRYABLE_STATUS
        error = None if 200 <= code < 300 else f"HTTP {code}: {response.text[:200]}"
        return service.Attempt(code, error, took(), retryable=retryable)


async def deliver_forever(settings: Settings) -> None:
    database = connect(settings.database_url, pool_size=2, max_overflow=4)
    timeout = httpx.Timeout(settings.webhook_timeout_seconds)
    try:
        # no redirects: a 3xx could point the request somewhere the target check refused
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as http:
            deliverer = Deliverer(database, settings, http)
            while True:
                try:
                    attempts = await deliverer.pass_once()
                except Exception:  # the database may be back on the next pass
                    log.exception("webhook pass failed")
                    attempts = 0
                if not attempts:
                    await asyncio.sleep(settings.webhook_poll_seconds)
    finally:
        await database.dispose()


if __name__ == "__main__":  # the loop alone, as `intervene services` runs it (used by the tests)
    from models.settings import get_settings

    logging.basicConfig(level=logging.INFO)
    asyncio.run(deliver_forever(get_settings()))
