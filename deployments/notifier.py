"""Escalation and notification delivery, a loop of `intervene services` (deployments/services.py).

Each pass moves the escalations on (oncall/escalation.py: the pages whose step is due are
written, once) and sends what is pending, each notification leased to this process while it
is sent: at least once (marked delivered only after the server took it), retried with
exponential backoff when the SMTP server or Slack is down or refuses, never holding up an
incident change (those only read the on-call file; the sending happens here). Without
INTERVENE_SMTP_HOST emails, and without INTERVENE_SLACK_BOT_TOKEN Slack messages, wait, pending
and visible, until it is set.

Then the Slack messages already posted whose incident changed since (a status, an
acknowledgement, an approval request made or decided) are rewritten in place (chat.update), so
a message never offers a button that no longer applies. A failed update is tried again on a
later pass (after a backoff while Slack keeps failing).
"""

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
import uuid
from datetime import datetime, timedelta

from sqlalchemy import func, select

from integrations.email import SmtpFailed, SmtpServer, message, send
from integrations.slack import Posted, SlackFailed, slack_api
from models.access import ApprovalRequest
from models.base import utcnow
from models.db import Database, connect, transaction
from models.enums import SlaTimer
from models.event import Event
from models.incident import Incident
from models.listen import wake_on_events
from models.notification import Notification
from models.services import notifications as service
from models.settings import Settings
from models.sla import timer_status
from oncall import messages, slack_message
from oncall.escalation import escalate_once
from oncall.schedules import OnCallFile, load_oncall

log = logging.getLogger("intervene.notifier")

LEASE = timedelta(seconds=60)
WAKE_SECONDS = 0.2  # how often an idle notifier looks for a new event
# sent side by side: a slow SMTP server does not hold up the Slack message, nor one recipient
# another (within the database pool of notify_forever: 2 + 2 connections)
SENDING_AT_ONCE = 4
BACKOFF = 5.0
BACKOFF_MAX = 900.0


def retry_in(attempts: int) -> timedelta:
    """Exponential with jitter: between half and all of 5 s * 2^attempts, at most 15 min."""
    ceiling = min(BACKOFF_MAX, BACKOFF * 2**attempts)
    return timedelta(seconds=ceiling * random.uniform(0.5, 1.0))  # noqa: S311


def smtp_of(settings: Settings) -> SmtpServer | None:
    if not settings.smtp_host:
        return None
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    return SmtpServer(
        host=settings.smtp_host,
        port=settings.smtp_port,
        tls=settings.smtp_tls,
        user=settings.smtp_user,
        password=password,
        sender=settings.smtp_sender,
        timeout=settings.smtp_timeout_seconds,
    )


class Notifier:
    def __init__(self, database: Database, settings: Settings, oncall: OnCallFile) -> None:
        self.database, self.settings, self.oncall = database, settings, oncall
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.smtp = smtp_of(settings)
        self.slack = slack_api(settings)
        self.media = tuple(m for m, up in (("email", self.smtp), ("slack", self.slack)) if up)
        self.updates_failing = 0  # Slack updates that failed in a row: the backoff's exponent
        self.updates_resume = 0.0  # monotonic time before which no update is tried

    async def pass_once(self, now: datetime | None = None) -> int:
        """Escalate, send what is due (as of `now`: the tests' clock, else the real one), then
        bring posted Slack messages up to date; how many notifications were written, tried or
        updated."""
        now = now or utcnow()
        written = await escalate_once(self.database, self.oncall, now)
        if not self.media:
            return written
        async with transaction(self.database.writer) as session:
            due = await service.claim(
                session, owner=self.owner, now=now, lease=LEASE, media=self.media
            )
        sending = asyncio.Semaphore(SENDING_AT_ONCE)

        async def deliver(notification: Notification) -> None:
            async with sending:
                await self._deliver(notification, now)

        await asyncio.gather(*(deliver(n) for n in due))
        return written + len(due) + await self._update_slack(now)

    async def _deliver(self, notification: Notification, now: datetime) -> None:
        shown_at = utcnow()  # what the message shows is read after this instant
        async with transaction(self.database.reader) as session:
            incident = await session.get(Incident, notification.incident_id)
            pending = await service.pending_approvals(session, notification.incident_id, now)
        error, posted = None, None
        try:
            if incident is None:
                error = "the incident is gone"
            elif notification.medium == "slack":
                posted = await self._post(notification.address, incident, pending, now)
            else:
                await self._mail(notification.address, incident, now)
        except (SmtpFailed, SlackFailed) as exc:
            error = str(exc)
            log.warning("notification %s not sent: %s", notification.id, error)
        async with transaction(self.database.writer) as session:
            await service.settle(
                session,
                notification.id,
                owner=self.owner,
                error=error,
                retry_in=retry_in(notification.attempts),
                now=now,
                posted=(posted.channel, posted.ts) if posted else None,
                shown_at=shown_at,
            )

    async def _mail(self, to: str, incident: Incident, now: datetime) -> None:
        assert self.smtp is not None
        acknowledge = timer_status(
            incident, SlaTimer.ACKNOWLEDGE, targets=self.settings.sla_targets, now=now
        )
        text = messages.body(incident, public_url=self.settings.public_url, acknowledge=acknowledge)
        mail = message(self.smtp, to, messages.subject(incident), text)
        await asyncio.to_thread(send, self.smtp, mail)

    def _message(
        self, incident: Incident, pending: list[ApprovalRequest], now: datetime
    ) -> tuple[str, list[slack_message.Block]]:
        acknowledge = timer_status(
            incident, SlaTimer.ACKNOWLEDGE, targets=self.settings.sla_targets, now=now
        )
        blocks = slack_message.blocks(
            incident, pending=pending, public_url=self.settings.public_url, acknowledge=acknowledge
        )
        return slack_message.text_of(incident), blocks

    async def _post(
        self, to: str, incident: Incident, pending: list[ApprovalRequest], now: datetime
    ) -> Posted:
        assert self.slack is not None
        text, blocks = self._message(incident, pending, now)
        return await asyncio.to_thread(self.slack.post, to, text, blocks)

    async def _update_slack(self, now: datetime) -> int:
        """Rewrite the posted messages whose incident changed; how many were tried. While Slack
        keeps failing, the next try waits longer (the same backoff as a delivery)."""
        if self.slack is None or time.monotonic() < self.updates_resume:
            return 0
        async with transaction(self.database.reader) as session:
            stale = await service.out_of_date(session)
        for notification in stale:
            try:
                await self._update(notification, now)
            except SlackFailed as exc:
                log.warning(
                    "Slack message of notification %s not updated: %s", notification.id, exc
                )
                backoff = retry_in(self.updates_failing).total_seconds()
                self.updates_resume = time.monotonic() + backoff
                self.updates_failing += 1
                break
            self.updates_failing = 0
        return len(stale)

    async def _update(self, notification: Notification, now: datetime) -> None:
        assert self.slack is not None
        shown_at = utcnow()
        async with transaction(self.database.reader) as session:
            incident = await session.get(Incident, notification.incident_id)
            pending = await service.pending_approvals(session, notification.incident_id, now)
        if incident is not None:
            text, blocks = self._message(incident, pending, now)
            posted = Posted(str(notification.message_channel), str(notification.message_ts))
            await asyncio.to_thread(self.slack.update, posted, text, blocks)
        async with transaction(self.database.writer) as session:
            await service.mark_synced(session, notification.id, shown_at)


async def newest_event(database: Database) -> int:
    async with transaction(database.reader) as session:
        return await session.scalar(select(func.max(Event.id))) or 0


class Wakeup:
    """What ends an idle notifier's wait besides its poll (a step falling due): any commit that
    wrote events (an incident opened or changed, an approval asked or decided: someone may
    have to be told). On PostgreSQL its NOTIFY wakes it at once (models/listen.py); elsewhere
    it looks at the events' newest id every WAKE_SECONDS. A first page goes out within about
    that of its incident's commit, not within a whole poll."""

    def __init__(self, database: Database, url: str) -> None:
        self.database, self.woken = database, asyncio.Event()
        self.listener: asyncio.Task[None] | None = None
        if database.dialect == "postgresql":
            self.listener = asyncio.create_task(wake_on_events(url, self.woken))

    async def mark(self) -> int:
        """Before a pass: what it will see (anything written from now on wakes the wait)."""
        self.woken.clear()
        return 0 if self.listener else await newest_event(self.database)

    async def wait(self, seen: int, seconds: float) -> None:
        if self.listener is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.woken.wait(), seconds)
            return
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if await newest_event(self.database) != seen:
                return
            await asyncio.sleep(WAKE_SECONDS)

    async def close(self) -> None:
        if self.listener is not None:
            self.listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.listener


async def notify_forever(settings: Settings) -> None:
    oncall = load_oncall(settings.oncall_file)
    if not oncall.policies:
        log.info("no escalation policy in %s: no one is paged", settings.oncall_file)
        return
    database = connect(settings.database_url, pool_size=2, max_overflow=2)
    wakeup = Wakeup(database, settings.database_url)
    try:
        notifier = Notifier(database, settings, oncall)
        while True:
            try:
                seen = await wakeup.mark()
                if not await notifier.pass_once():
                    await wakeup.wait(seen, settings.escalation_poll_seconds)
            except Exception:  # the database may be back on the next pass
                log.exception("notification pass failed")
                await asyncio.sleep(settings.escalation_poll_seconds)
    finally:
        await wakeup.close()
        await database.dispose()
