"""Escalation and notification delivery, a loop of `intervene services` (deployments/services.py).

Each pass moves the escalations on (oncall/escalation.py: the pages whose step is due are
written, once) and sends what is pending, each notification leased to this process while it
is sent: at least once (marked delivered only after the server took it), retried with
exponential backoff when the SMTP server is down or refuses, never holding up an incident
change (those only read the on-call file; the sending happens here). Without INTERVENE_SMTP_HOST
emails wait, pending and visible, until it is set.
"""

import asyncio
import logging
import os
import random
import socket
import uuid
from datetime import datetime, timedelta

from integrations.email import SmtpFailed, SmtpServer, message, send
from models.base import utcnow
from models.db import Database, connect, transaction
from models.enums import SlaTimer
from models.incident import Incident
from models.notification import Notification
from models.services import notifications as service
from models.settings import Settings
from models.sla import timer_status
from oncall import messages
from oncall.escalation import escalate_once
from oncall.schedules import OnCallFile, load_oncall

log = logging.getLogger("intervene.notifier")

LEASE = timedelta(seconds=60)
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

    async def pass_once(self, now: datetime | None = None) -> int:
        """Escalate, then send what is due (as of `now`: the tests' clock, else the real one);
        how many notifications were written or tried."""
        now = now or utcnow()
        written = await escalate_once(self.database, self.oncall, now)
        if self.smtp is None:
            return written
        async with transaction(self.database.writer) as session:
            due = await service.claim(session, owner=self.owner, now=now, lease=LEASE)
        for notification in due:
            await self._deliver(notification, now)
        return written + len(due)

    async def _deliver(self, notification: Notification, now: datetime) -> None:
        assert self.smtp is not None
        async with transaction(self.database.reader) as session:
            incident = await session.get(Incident, notification.incident_id)
        error = None
        if incident is None:
            error = "the incident is gone"
        else:
            acknowledge = timer_status(
                incident, SlaTimer.ACKNOWLEDGE, targets=self.settings.sla_targets, now=now
            )
            text = messages.body(
                incident, public_url=self.settings.public_url, acknowledge=acknowledge
            )
            mail = message(self.smtp, notification.address, messages.subject(incident), text)
            try:
                await asyncio.to_thread(send, self.smtp, mail)
            except SmtpFailed as exc:
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
            )


async def notify_forever(settings: Settings) -> None:
    oncall = load_oncall(settings.oncall_file)
    if not oncall.policies:
        log.info("no escalation policy in %s: no one is paged", settings.oncall_file)
        return
    database = connect(settings.database_url, pool_size=2, max_overflow=2)
    try:
        notifier = Notifier(database, settings, oncall)
        while True:
            try:
                busy = await notifier.pass_once()
            except Exception:  # the database may be back on the next pass
                log.exception("notification pass failed")
                busy = 0
            if not busy:
                await asyncio.sleep(settings.escalation_poll_seconds)
    finally:
        await database.dispose()
