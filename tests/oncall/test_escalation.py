"""Escalation on a clock of the tests' own, and email delivered to a real SMTP server (aiosmtpd):
each step pages once, an acknowledgement stops it, a recurrence pages no one, a reopen starts
over, an SMTP outage delays delivery (retried, visible) and never an incident change."""

import asyncio
import email
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from httpx import AsyncClient

from deployments.notifier import LEASE, WAKE_SECONDS, Notifier, Wakeup
from deployments.stack import free_port
from models.db import Database, transaction
from models.services import notifications as service
from models.settings import Settings
from oncall.escalation import escalate_once
from oncall.rotation import on_duty
from oncall.schedules import OnCallFile, load_oncall
from tests.oncall.test_schedules import GOOD

ONCALL = (
    GOOD
    + """\
channels:
  - id: ops
    email: ops@example.com
policies:
  - name: urgent
    match: {severity: [sev1]}
    steps:
      - notify: {schedule: primary}
        wait_minutes: 5
      - notify: {person: grace}
        wait_minutes: 10
      - notify: {channel: ops}
"""
)


class Inbox:
    """aiosmtpd's handler: every message the server accepted."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    def to(self) -> list[str]:
        return [str(m["To"]) for m in self.messages]


@dataclass
class Pagers:
    """The SMTP server's inbox, and notifiers on the test's database that send to it (or, with
    `port`, to wherever that points)."""

    inbox: Inbox
    port: int
    oncall: OnCallFile
    database: Database
    settings: Settings

    def make(self, port: int | None = None) -> Notifier:
        smtp = {"smtp_host": "127.0.0.1", "smtp_port": port or self.port, "smtp_tls": "none"}
        return Notifier(self.database, self.settings.model_copy(update=smtp), self.oncall)


@pytest.fixture
def pagers(db: Database, settings: Settings, tmp_path: Path) -> Iterator[Pagers]:
    path = tmp_path / "oncall.yml"
    path.write_text(ONCALL)
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield Pagers(inbox, port, load_oncall(path), db, settings)
    controller.stop()


async def open_incident(client: AsyncClient, severity: str = "sev1") -> dict[str, Any]:
    answer = await client.post(
        "/api/incidents",
        json={"kind": "alert", "key": f"pager-{severity}", "severity": severity,
              "summary": "the inbox is stale", "details": {"table": "inbox"}},
    )  # fmt: skip
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


async def notifications(client: AsyncClient, incident_id: int) -> list[dict[str, Any]]:
    """The incident's emails (ada's Slack DMs wait: these notifiers have no Slack token;
    tests/oncall/test_slack.py sends them)."""
    answer = await client.get(f"/api/incidents/{incident_id}/notifications")
    assert answer.status_code == 200, answer.text
    return [n for n in answer.json()["notifications"] if n["medium"] == "email"]


def at(incident: dict[str, Any], minutes: float) -> datetime:
    return datetime.fromisoformat(incident["created_at"]) + timedelta(minutes=minutes)


async def test_each_step_pages_once_when_due_until_someone_acknowledges(
    client: AsyncClient, pagers: Pagers
) -> None:
    inbox = pagers.inbox
    pager = pagers.make()
    incident = await open_incident(client)
    [primary] = pagers.oncall.schedules
    on_call = on_duty(primary, [], at(incident, 0))[0].person_id
    first = {"ada": "ada@example.com", "grace": "grace@example.com"}[on_call]

    await pager.pass_once(at(incident, 0))
    await pager.pass_once(at(incident, 4))  # step 1 is due at 5 min
    assert inbox.to() == [first]
    mail = inbox.messages[0]
    assert mail["Subject"] == f"[SEV1] the inbox is stale (incident #{incident['id']}, open)"
    assert "Acknowledge by:" in mail.get_payload()
    assert "  table: inbox" in mail.get_payload()

    await pager.pass_once(at(incident, 5))
    assert inbox.to() == [first, "grace@example.com"]
    answer = await client.post(f"/api/incidents/{incident['id']}/acknowledge", json={})
    assert answer.status_code == 200, answer.text
    await pager.pass_once(at(incident, 60))  # the channel's step would be due at 15 min
    assert inbox.to() == [first, "grace@example.com"]

    said = await notifications(client, incident["id"])
    assert [(n["step"], n["target"], n["recipient"], n["medium"], n["status"]) for n in said] == [
        (0, "schedule:primary", f"person:{on_call}", "email", "delivered"),
        (1, "person:grace", "person:grace", "email", "delivered"),
    ]
    timeline = (await client.get(f"/api/incidents/{incident['id']}/timeline")).json()["entries"]
    told = [(e["actor"], e["notes"]) for e in timeline if e["verb"] == "notified"]
    policy = said[0]["policy"]
    assert told == [
        ("notifier", f"email to person:{on_call} ({first}): policy {policy}, step 1"),
        ("notifier", f"email to person:grace (grace@example.com): policy {policy}, step 2"),
    ]


async def test_racing_passes_page_each_step_once(client: AsyncClient, pagers: Pagers) -> None:
    inbox = pagers.inbox
    incident = await open_incident(client)
    racing = [pagers.make() for _ in range(4)]
    for minutes in (0, 5, 15):
        await asyncio.gather(*(p.pass_once(at(incident, minutes)) for p in racing))
    said = await notifications(client, incident["id"])
    assert [n["step"] for n in said] == [0, 1, 2]
    assert len(inbox.messages) == 3
    assert inbox.to()[2] == "ops@example.com"


async def test_a_recurrence_pages_no_one_and_a_reopen_starts_over(
    client: AsyncClient, pagers: Pagers
) -> None:
    inbox = pagers.inbox
    pager = pagers.make()
    incident = await open_incident(client)
    await pager.pass_once(at(incident, 0))
    repeat = await client.post(
        "/api/incidents",
        json={"kind": "alert", "key": "pager-sev1", "severity": "sev1", "summary": "again"},
    )
    assert (repeat.status_code, repeat.json()["occurrence_count"]) == (200, 2)
    await pager.pass_once(at(incident, 1))
    assert len(inbox.messages) == 1

    base = f"/api/incidents/{incident['id']}"
    assert (await client.post(f"{base}/resolve", json={})).status_code == 200
    assert (await client.post(f"{base}/reopen", json={})).status_code == 200
    await pager.pass_once(at(incident, 2))  # the reopen's round: step 0 at once
    said = await notifications(client, incident["id"])
    assert [(n["round"], n["step"]) for n in said] == [(0, 0), (1, 0)]
    assert len(inbox.messages) == 2


async def test_an_smtp_outage_delays_delivery_and_blocks_nothing(
    client: AsyncClient, pagers: Pagers
) -> None:
    inbox = pagers.inbox
    incident = await open_incident(client)
    down = pagers.make(free_port())  # nothing listens there
    await down.pass_once(at(incident, 0))
    [waiting] = await notifications(client, incident["id"])
    assert (waiting["status"], waiting["attempts"]) == ("pending", 1)
    assert "ConnectionRefusedError" in waiting["last_error"]
    answer = await client.post(f"/api/incidents/{incident['id']}/acknowledge", json={})
    assert answer.status_code == 200  # an incident change never waits for a notification

    back = pagers.make()
    await back.pass_once(at(incident, 10))
    await back.pass_once(at(incident, 20))
    [sent] = await notifications(client, incident["id"])
    assert (sent["status"], sent["attempts"], sent["last_error"]) == ("delivered", 2, None)
    assert len(inbox.messages) == 1


async def test_an_incident_no_policy_fits_pages_no_one(client: AsyncClient, pagers: Pagers) -> None:
    inbox = pagers.inbox
    incident = await open_incident(client, severity="sev3")
    await pagers.make().pass_once(at(incident, 120))
    assert await notifications(client, incident["id"]) == []
    assert inbox.messages == []


async def test_a_notifier_that_dies_mid_send_leaves_it_to_another_after_its_lease(
    client: AsyncClient, pagers: Pagers
) -> None:
    """The dead process claimed the email and never settled it (SIGKILL between the server's
    answer and the write): another sends it once the lease runs out, never before."""
    incident = await open_incident(client)
    await escalate_once(pagers.database, pagers.oncall, at(incident, 0))
    async with transaction(pagers.database.writer) as session:
        [claimed] = await service.claim(session, owner="dead", now=at(incident, 0), lease=LEASE)
    survivor = pagers.make()
    await survivor.pass_once(at(incident, 0.5))
    assert pagers.inbox.messages == []  # still the dead one's
    await survivor.pass_once(at(incident, 1.5))
    [sent] = await notifications(client, incident["id"])
    assert (sent["id"], sent["status"], sent["attempts"]) == (claimed.id, "delivered", 1)
    assert len(pagers.inbox.messages) == 1


async def test_an_idle_notifier_wakes_on_the_next_event_not_on_its_poll(
    client: AsyncClient, db: Database, database_url: str
) -> None:
    """A first page goes out soon after its incident's commit: the idle notifier is woken by
    PostgreSQL's NOTIFY, or on SQLite sees the events' newest id change, instead of sleeping a
    whole poll."""
    wakeup = Wakeup(db, database_url)
    try:
        if wakeup.listener is not None:  # PostgreSQL: LISTENing once its first wake came
            await asyncio.wait_for(wakeup.woken.wait(), timeout=60)
        seen = await wakeup.mark()
        waiting = asyncio.create_task(wakeup.wait(seen, seconds=3600))
        await asyncio.sleep(3 * WAKE_SECONDS)
        assert not waiting.done()  # nothing new: it keeps waiting
        await open_incident(client)
        await asyncio.wait_for(waiting, timeout=60)  # woken long before its hour
    finally:
        await wakeup.close()
