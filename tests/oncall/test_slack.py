"""Slack, against a local server that speaks its Web API (tests/slack_api.py) through the real
slack-sdk client: a page posts a Block Kit message, the message follows the incident in place,
an outage delays it (retried, once), and the buttons act through Slack-signed requests with the
API's rules: roles, the two-person rule, the audit log; forged, stale and unknown are refused."""

import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from pydantic import SecretStr

from api.main import create_app
from deployments.notifier import Notifier
from models.db import Database
from models.enums import Role
from models.settings import Settings
from oncall.schedules import load_oncall
from tests.auth import bearer, issue
from tests.fakes import RecordingLauncher
from tests.slack_api import TOKEN, SlackApi, serve_slack

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"  # the signing secret of the tests' Slack app
ONCALL = """\
people:
  - id: ada
    name: Ada Lovelace
    email: ada@example.com
    slack_user_id: U0ADA0001
  - id: grace
    name: Grace Hopper
    email: grace@example.com
    slack_user_id: U0GRACE01
    role: approver
  - id: linus
    name: Linus Pauling
    email: linus@example.com
    slack_user_id: U0LINUS01
    role: approver
schedules:
  - name: primary
    rotation: {members: [ada], length_days: 7, start: 2026-11-30}
channels:
  - id: ops
    slack_channel: C0OPS0001
policies:
  - name: urgent
    match: {severity: [sev1]}
    steps:
      - notify: {schedule: primary}
        wait_minutes: 5
      - notify: {channel: ops}
"""
FULL_REFRESH = {"task_id": "task-1", "models": ["inbox_emails"], "full_refresh": True}


@pytest.fixture
def slack() -> Iterator[SlackApi]:
    with serve_slack() as api:
        yield api


@pytest.fixture
def slack_settings(settings: Settings, slack: SlackApi, tmp_path: Path) -> Settings:
    path = tmp_path / "oncall.yml"
    path.write_text(ONCALL)
    return settings.model_copy(
        update={
            "oncall_file": path,
            "slack_bot_token": SecretStr(TOKEN),
            "slack_signing_secret": SecretStr(SECRET),
            "slack_api_url": slack.base_url,
            "self_approval": [],  # the two-person rule for every action that needs approval
            "public_url": "http://intervene.test",
        }
    )


@pytest.fixture
async def slack_app(
    slack_settings: Settings, recording_launcher: RecordingLauncher, client: AsyncClient
) -> AsyncIterator[FastAPI]:
    """An app with Slack configured (`client` empties the tables afterwards)."""

    app = create_app(slack_settings, launcher=recording_launcher)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
def notifier(db: Database, slack_settings: Settings) -> Notifier:
    return Notifier(db, slack_settings, load_oncall(slack_settings.oncall_file))


async def open_incident(client: AsyncClient) -> dict[str, Any]:
    answer = await client.post(
        "/api/incidents",
        json={"kind": "invariant", "key": "slack-sev1", "severity": "sev1",
              "summary": "the inbox is <stale>", "details": {"table": "inbox"}},
    )  # fmt: skip
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def at(incident: dict[str, Any], minutes: float) -> datetime:
    return datetime.fromisoformat(incident["created_at"]) + timedelta(minutes=minutes)


def buttons(body: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (element["action_id"], element["value"])
        for block in body["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
    ]


async def slack_notifications(client: AsyncClient, incident_id: int) -> list[dict[str, Any]]:
    answer = await client.get(f"/api/incidents/{incident_id}/notifications")
    assert answer.status_code == 200, answer.text
    return [n for n in answer.json()["notifications"] if n["medium"] == "slack"]


async def test_a_page_posts_a_block_kit_message_that_follows_the_incident(
    client: AsyncClient, notifier: Notifier, slack: SlackApi
) -> None:
    incident = await open_incident(client)
    await notifier.pass_once(at(incident, 0))

    [post] = slack.of("chat.postMessage")
    assert post.body["channel"] == "U0ADA0001"  # ada, on call: a DM
    assert post.body["text"] == f"[SEV1] the inbox is <stale> (incident #{incident['id']}, open)"
    header = post.body["blocks"][0]["text"]["text"]
    assert header == f"#{incident['id']} the inbox is <stale>"
    shown = json.dumps(post.body["blocks"])
    assert "table: inbox" in shown
    assert "Acknowledge by" in shown
    number = str(incident["id"])
    assert buttons(post.body) == [("acknowledge", number), ("open", number)]
    [sent] = await slack_notifications(client, incident["id"])
    assert (sent["recipient"], sent["address"], sent["status"]) == (
        "person:ada", "U0ADA0001", "delivered"
    )  # fmt: skip

    await notifier.pass_once(at(incident, 1))
    assert slack.of("chat.update") == []  # nothing changed: nothing rewritten
    answer = await client.post(f"/api/incidents/{incident['id']}/acknowledge", json={})
    assert answer.status_code == 200
    await notifier.pass_once(at(incident, 2))
    [update] = slack.of("chat.update")
    assert (update.body["channel"], update.body["ts"]) == ("D0ADA0001", "1700000000.000001")
    assert "acknowledged" in update.body["text"]
    assert buttons(update.body) == [("open", str(incident["id"]))]  # no Acknowledge any more
    await notifier.pass_once(at(incident, 3))
    assert len(slack.of("chat.update")) == 1


async def test_an_approval_request_adds_approve_and_deny_and_its_decision_removes_them(
    client: AsyncClient, notifier: Notifier, slack: SlackApi
) -> None:
    incident = await open_incident(client)
    await notifier.pass_once(at(incident, 0))
    asked = await client.post(
        f"/api/playbooks/incidents/{incident['id']}/actions/approvals",
        json={"action_type": "rerun_dbt", "params": FULL_REFRESH},
    )
    assert asked.status_code == 201, asked.text
    request_id = asked.json()["id"]
    await notifier.pass_once(at(incident, 1))
    [update] = slack.of("chat.update")
    value = f"{incident['id']}:{request_id}"
    assert ("approve", value) in buttons(update.body)
    assert ("deny", value) in buttons(update.body)

    url = f"/api/playbooks/incidents/{incident['id']}/actions/approvals/{request_id}/reject"
    assert (await client.post(url, json={"notes": "not now"})).status_code == 200
    await notifier.pass_once(at(incident, 2))
    last = slack.of("chat.update")[-1]
    assert not any(name in ("approve", "deny") for name, _ in buttons(last.body))


async def test_a_channel_step_posts_in_the_channel(
    client: AsyncClient, notifier: Notifier, slack: SlackApi
) -> None:
    incident = await open_incident(client)
    await notifier.pass_once(at(incident, 0))
    await notifier.pass_once(at(incident, 5))
    assert [c.body["channel"] for c in slack.of("chat.postMessage")] == ["U0ADA0001", "C0OPS0001"]


async def test_a_slack_outage_delays_the_message_and_it_is_posted_once_after(
    client: AsyncClient, notifier: Notifier, slack: SlackApi
) -> None:
    incident = await open_incident(client)
    slack.down = True
    await notifier.pass_once(at(incident, 0))
    [waiting] = await slack_notifications(client, incident["id"])
    assert (waiting["status"], waiting["attempts"]) == ("pending", 1)
    assert "service_unavailable" in waiting["last_error"]
    answer = await client.post(f"/api/incidents/{incident['id']}/acknowledge", json={})
    assert answer.status_code == 200  # an incident change never waits for Slack

    slack.down = False
    await notifier.pass_once(at(incident, 10))
    await notifier.pass_once(at(incident, 20))
    [sent] = await slack_notifications(client, incident["id"])
    assert (sent["status"], sent["attempts"], sent["last_error"]) == ("delivered", 2, None)
    [post] = slack.of("chat.postMessage")
    assert buttons(post.body) == [("open", str(incident["id"]))]  # posted as it is by then


async def test_a_wrong_bot_token_is_a_visible_failure(
    client: AsyncClient, db: Database, slack_settings: Settings, slack: SlackApi
) -> None:
    wrong = slack_settings.model_copy(update={"slack_bot_token": SecretStr("xoxb-revoked")})
    notifier = Notifier(db, wrong, load_oncall(wrong.oncall_file))
    incident = await open_incident(client)
    await notifier.pass_once(at(incident, 0))
    [waiting] = await slack_notifications(client, incident["id"])
    assert waiting["status"] == "pending"
    assert "invalid_auth" in waiting["last_error"]
    assert slack.calls == []


# -- the buttons: Slack's interactivity requests -------------------------------------------------


def signed(payload: dict[str, Any], *, secret: str = SECRET, age: float = 0) -> dict[str, Any]:
    """Headers and body as Slack sends them: v0=HMAC-SHA256(secret, "v0:{timestamp}:{body}")."""
    body = urlencode({"payload": json.dumps(payload)})
    timestamp = str(int(time.time() - age))
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:{body}".encode(), hashlib.sha256)
    headers = {
        "content-type": "application/x-www-form-urlencoded",
        "x-slack-request-timestamp": timestamp,
        "x-slack-signature": f"v0={digest.hexdigest()}",
    }
    return {"content": body, "headers": headers}


def click(user: str, action: str, value: str) -> dict[str, Any]:
    return {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower()},
        "channel": {"id": "D0ADA0001"},
        "container": {"type": "message", "message_ts": "1700000000.000001"},
        "actions": [{"action_id": action, "value": value, "type": "button"}],
    }


@pytest.fixture
async def from_slack(slack_app: FastAPI) -> AsyncIterator[AsyncClient]:
    """Slack's side: no token, only the signature."""
    transport = ASGITransport(app=slack_app)
    async with AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


INTERACTIONS = "/api/integrations/slack/interactions"


def whispers(slack: SlackApi, user: str) -> list[str]:
    return [c.body["text"] for c in slack.of("chat.postEphemeral") if c.body["user"] == user]


async def test_acknowledge_from_slack_acts_as_the_person_and_is_audited(
    client: AsyncClient, from_slack: AsyncClient, slack: SlackApi
) -> None:
    incident = await open_incident(client)
    answer = await from_slack.post(
        INTERACTIONS, **signed(click("U0ADA0001", "acknowledge", str(incident["id"])))
    )
    assert answer.status_code == 200, answer.text
    found = (await client.get(f"/api/incidents/{incident['id']}")).json()
    assert (found["status"], found["acknowledged_by"]) == ("acknowledged", "ada")
    timeline = (await client.get(f"/api/incidents/{incident['id']}/timeline")).json()["entries"]
    assert (timeline[-1]["actor"], timeline[-1]["notes"]) == ("ada", "from Slack")
    assert whispers(slack, "U0ADA0001") == [f"Incident #{incident['id']} acknowledged by ada."]
    audit = (await client.get("/api/audit")).json()["entries"]
    mine = [e for e in audit if e["path"] == INTERACTIONS]
    assert [(e["principal"], e["role"], e["status"]) for e in mine] == [("ada", "responder", 200)]

    again = await from_slack.post(
        INTERACTIONS, **signed(click("U0GRACE01", "acknowledge", str(incident["id"])))
    )
    assert again.status_code == 200
    [said] = whispers(slack, "U0GRACE01")
    assert said.startswith("Not done:")
    assert "acknowledged" in said


@pytest.mark.parametrize(
    "forgery",
    [
        {"secret": "not-the-secret"},  # forged
        {"age": 6 * 60},  # replayed: signed more than five minutes ago
        {"age": -6 * 60},  # from the future
    ],
)
async def test_a_forged_or_stale_request_is_401_and_changes_nothing(
    client: AsyncClient, from_slack: AsyncClient, slack: SlackApi, forgery: dict[str, Any]
) -> None:
    incident = await open_incident(client)
    answer = await from_slack.post(
        INTERACTIONS, **signed(click("U0ADA0001", "acknowledge", str(incident["id"])), **forgery)
    )
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "unauthorized"
    assert (await client.get(f"/api/incidents/{incident['id']}")).json()["status"] == "open"
    assert slack.calls == []


async def test_missing_or_garbled_signatures_and_payloads_are_refused(
    client: AsyncClient, from_slack: AsyncClient
) -> None:
    incident = await open_incident(client)
    good = signed(click("U0ADA0001", "acknowledge", str(incident["id"])))
    for headers in (
        {},
        {**good["headers"], "x-slack-request-timestamp": "soon"},
        {**good["headers"], "x-slack-signature": "v0=00"},
        {k: v for k, v in good["headers"].items() if k != "x-slack-signature"},
    ):
        answer = await from_slack.post(INTERACTIONS, content=good["content"], headers=headers)
        assert answer.status_code == 401, headers
    hostile = click("U0ADA0001", "acknowledge", str(incident["id"]))
    for payload in (
        {"type": "block_actions"},
        {"user": {"id": "U0ADA0001"}, "actions": []},
        hostile | {"actions": {"action_id": "acknowledge"}},
        hostile | {"user": ["U0ADA0001"]},
        hostile | {"actions": [{"action_id": "acknowledge", "value": "1:2:3"}]},
        hostile | {"actions": [{"action_id": "acknowledge", "value": str(2**64)}]},
        hostile | {"actions": [{"action_id": "acknowledge", "value": "-1"}]},
    ):
        answer = await from_slack.post(INTERACTIONS, **signed(payload))
        assert answer.status_code == 400
        assert answer.json()["error"]["code"] == "bad_request"
    odd = await from_slack.post(  # a channel that is not an object: acted on, no one told
        INTERACTIONS, **signed(hostile | {"channel": "D0ADA0001"})
    )
    assert odd.status_code == 200
    body = "payload=%7Bnot+json"
    stamp = str(int(time.time()))
    digest = hmac.new(SECRET.encode(), f"v0:{stamp}:{body}".encode(), hashlib.sha256).hexdigest()
    answer = await from_slack.post(
        INTERACTIONS,
        content=body,
        headers={"x-slack-request-timestamp": stamp, "x-slack-signature": f"v0={digest}"},
    )
    assert answer.status_code == 400
    found = (await client.get(f"/api/incidents/{incident['id']}")).json()
    assert found["status"] == "acknowledged"  # by the one well-formed click, the odd channel's


async def test_someone_intervene_does_not_know_is_told_so_and_nothing_happens(
    client: AsyncClient, from_slack: AsyncClient, slack: SlackApi
) -> None:
    incident = await open_incident(client)
    answer = await from_slack.post(
        INTERACTIONS, **signed(click("U0STRANGER", "acknowledge", str(incident["id"])))
    )
    assert answer.status_code == 200
    assert (await client.get(f"/api/incidents/{incident['id']}")).json()["status"] == "open"
    [said] = whispers(slack, "U0STRANGER")
    assert "does not know you" in said


async def test_approving_from_slack_keeps_roles_and_the_two_person_rule(
    client: AsyncClient,
    slack_app: FastAPI,
    from_slack: AsyncClient,
    slack: SlackApi,
    launcher: RecordingLauncher,
) -> None:
    grace = AsyncClient(
        transport=ASGITransport(app=slack_app),
        base_url="http://test",
        headers=bearer(await issue(slack_app.state.db, "grace", Role.APPROVER)),
    )
    async with grace:
        incident = await open_incident(grace)
        asked = await grace.post(
            f"/api/playbooks/incidents/{incident['id']}/actions/approvals",
            json={"action_type": "rerun_dbt", "params": FULL_REFRESH},
        )
    assert asked.status_code == 201, asked.text
    assert asked.json()["requested_by"] == "grace"
    value = f"{incident['id']}:{asked.json()['id']}"

    for user in ("U0GRACE01", "U0ADA0001"):  # who asked; a responder
        answer = await from_slack.post(INTERACTIONS, **signed(click(user, "approve", value)))
        assert answer.status_code == 200
    [own] = whispers(slack, "U0GRACE01")
    assert "grace asked for this; another approver must approve it" in own
    [role] = whispers(slack, "U0ADA0001")
    assert "ada is a responder; approve needs approver" in role
    approvals = f"/api/playbooks/incidents/{incident['id']}/actions/approvals"
    [still] = (await client.get(approvals)).json()["approvals"]
    assert still["status"] == "pending"
    assert launcher.launches == []

    answer = await from_slack.post(INTERACTIONS, **signed(click("U0LINUS01", "approve", value)))
    assert answer.status_code == 200
    [decided] = (await client.get(approvals)).json()["approvals"]
    assert (decided["status"], decided["decided_by"]) == ("approved", "linus")
    assert decided["decision_notes"] == "from Slack"
    assert len(launcher.launches) == 1
    [said] = whispers(slack, "U0LINUS01")
    assert said.startswith(f"Approved: action #{decided['action_id']} (rerun_dbt)")

    late = await from_slack.post(INTERACTIONS, **signed(click("U0GRACE01", "deny", value)))
    assert late.status_code == 200
    assert "already approved" in whispers(slack, "U0GRACE01")[-1]
    assert len(launcher.launches) == 1


async def test_without_a_signing_secret_the_endpoint_is_not_there(
    client: AsyncClient, app: FastAPI
) -> None:
    transport = ASGITransport(app=app)  # the session's app: no Slack settings
    async with AsyncClient(transport=transport, base_url="http://test") as http:
        answer = await http.post(INTERACTIONS, **signed(click("U0ADA0001", "acknowledge", "1")))
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "not_found"
