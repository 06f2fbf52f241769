"""Alert intake through HTTP, in process, on SQLite and PostgreSQL: Alertmanager's and Grafana's
webhook (POST /api/integrations/alertmanager), PagerDuty's Events API v2
(POST /api/integrations/pagerduty/v2/enqueue, the routing key a token), silences
(/api/silences) and their release, the demo rule `slow-warnings`, flap control and the alert
metrics. tests/alerts/test_intake.py covers the same service below HTTP; this is what a sender
and an operator see."""

import copy
import json
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, Response

from deployments.silences import release_once
from models.base import utcnow
from models.db import Database
from models.enums import Role
from models.settings import Settings
from tests.api.test_observability import scrape, value
from tests.auth import TESTER, issue
from tests.integrations.test_alertmanager_payload import (
    DISK_FULL_FIRING,
    DISK_FULL_RESOLVED,
    GRAFANA,
    PROBE_FAILURE,
)
from tests.integrations.test_pagerduty_event import DISK

ALERTMANAGER = "/api/integrations/alertmanager"
PAGERDUTY = "/api/integrations/pagerduty/v2/enqueue"


# -- helpers -----------------------------------------------------------------------------------


def am_alert(
    name: str,
    *,
    status: str = "firing",
    severity: str | None = "critical",
    annotations: dict[str, str] | None = None,
    fingerprint: str | None = None,
    **labels: str,
) -> dict[str, Any]:
    """One alert as Alertmanager's webhook carries it."""
    every = {"alertname": name, **labels}
    if severity is not None:
        every["severity"] = severity
    return {
        "status": status,
        "labels": every,
        "annotations": {"summary": f"{name} is firing"} if annotations is None else annotations,
        "startsAt": "2026-12-05T19:07:30.248Z",
        "endsAt": "2026-12-05T19:09:30.248Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": f"http://prometheus.example.org/graph?g0.expr={name}",
        "fingerprint": fingerprint or uuid.uuid5(uuid.NAMESPACE_DNS, name).hex[:16],
    }


def webhook(*alerts: Any) -> dict[str, Any]:
    """Alertmanager's version 4 payload around these alerts."""
    firing = any(alert.get("status") == "firing" for alert in alerts if isinstance(alert, dict))
    return {
        "receiver": "intervene",
        "status": "firing" if firing else "resolved",
        "alerts": list(alerts),
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example.org:9093",
        "version": "4",
        "groupKey": "{}:{}",
        "truncatedAlerts": 0,
    }


async def send(client: AsyncClient, *alerts: dict[str, Any]) -> dict[str, Any]:
    """Post these alerts; the 200 answer."""
    answer = await client.post(ALERTMANAGER, json=webhook(*alerts))
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def outcome(client: AsyncClient, alert: dict[str, Any]) -> dict[str, Any]:
    """Post one alert; what became of it."""
    body = await send(client, alert)
    assert body["refused"] == [], body
    [taken] = body["taken"]
    return dict(taken)


async def incident(client: AsyncClient, incident_id: int) -> dict[str, Any]:
    answer = await client.get(f"/api/incidents/{incident_id}")
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


async def incidents(client: AsyncClient) -> list[dict[str, Any]]:
    answer = await client.get("/api/incidents", params={"limit": 100})
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["incidents"]
    return found


async def total(client: AsyncClient) -> int:
    answer = await client.get("/api/incidents/counts")
    assert answer.status_code == 200, answer.text
    return int(answer.json()["total"])


async def timeline(client: AsyncClient, incident_id: int) -> list[dict[str, Any]]:
    answer = await client.get(f"/api/incidents/{incident_id}/timeline")
    assert answer.status_code == 200, answer.text
    entries: list[dict[str, Any]] = answer.json()["entries"]
    return entries


def field_errors(answer: Response) -> dict[str, str]:
    """The contract's 422 envelope, as {field: message}."""
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "validation_error"
    assert error["message"].startswith("Invalid request: ")
    return {e["field"]: e["message"] for e in error["details"]["errors"]}


@pytest.fixture
async def anonymous(app: FastAPI, client: AsyncClient) -> AsyncIterator[AsyncClient]:
    """The app with no Authorization header, as PagerDuty's senders post (`client` empties the
    tables afterwards)."""
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as http:
        yield http


@pytest.fixture
async def responder_key(db: Database, client: AsyncClient) -> str:
    """A responder's token: a routing key that may create incidents."""
    return await issue(db, "pager@x.io", Role.RESPONDER)


def pd_event(routing_key: str, action: str = "trigger", **changes: Any) -> dict[str, Any]:
    """PagerDuty's OpenAPI example event with this routing key, action and changes."""
    event = copy.deepcopy(DISK)
    event.update(routing_key=routing_key, event_action=action, **changes)
    if action != "trigger":
        event = {k: event[k] for k in ("routing_key", "dedup_key", "event_action") if k in event}
    return event


# -- Alertmanager's webhook ------------------------------------------------------------------


async def test_each_alert_opens_its_own_incident_from_alertmanagers_documented_payload(
    client: AsyncClient,
) -> None:
    answer = await client.post(ALERTMANAGER, json=PROBE_FAILURE)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    [taken] = body["taken"]
    assert body == {
        "source": "alertmanager",
        "received": 1,
        "taken": [
            {
                "index": 0,
                "key": "ProbeFailure:1a30ba71cca2921f",
                "outcome": "opened",
                "incident_id": taken["incident_id"],
                "silence_id": None,
            }
        ],
        "refused": [],
        "truncated": 0,
        "ignored": 0,
    }
    shown = await incident(client, taken["incident_id"])
    sent = PROBE_FAILURE["alerts"][0]
    assert shown["kind"] == "alert"
    assert shown["key"] == "ProbeFailure:1a30ba71cca2921f"
    assert shown["status"] == "open"
    assert shown["severity"] == "sev1"  # severity="critical"
    assert shown["summary"] == "BlackBox Probe Failure: https://server.example.org"
    assert shown["occurrence_count"] == 1
    assert shown["metadata"]["source"] == "alertmanager"
    assert shown["details"]["labels"] == sent["labels"]
    assert shown["details"]["annotations"] == sent["annotations"]
    assert shown["details"]["generator_url"] == sent["generatorURL"]
    assert shown["details"]["fingerprint"] == "1a30ba71cca2921f"
    assert [(e["actor"], e["verb"]) for e in await timeline(client, shown["id"])] == [
        ("alertmanager", "create")
    ]


async def test_a_group_opens_one_incident_per_alert_with_its_severity(
    client: AsyncClient,
) -> None:
    alerts = [
        am_alert("Critical", severity="critical"),
        am_alert("Errored", severity="error"),
        am_alert("Informational", severity="info"),
        am_alert("NamedSev2", severity="SEV2"),
        am_alert("Unknown", severity="catastrophic"),  # no word we know: the default
        am_alert("Unlabelled", severity=None),
    ]
    body = await send(client, *alerts)
    assert body["received"] == 6
    assert [t["outcome"] for t in body["taken"]] == ["opened"] * 6
    assert len({t["incident_id"] for t in body["taken"]}) == 6
    shown = [await incident(client, t["incident_id"]) for t in body["taken"]]
    severities = {i["details"]["labels"]["alertname"]: i["severity"] for i in shown}
    assert severities == {
        "Critical": "sev1",
        "Errored": "sev2",
        "Informational": "sev4",
        "NamedSev2": "sev2",
        "Unknown": "sev3",  # defaults.severity of warehouse/alert_rules.yml
        "Unlabelled": "sev3",
    }


async def test_warning_is_sev3(client: AsyncClient) -> None:
    """Through Grafana: an Alertmanager warning is held by the demo rule slow-warnings (below)."""
    grafana = {**webhook(am_alert("DiskWarning", severity="warning")), "version": "1", "orgId": 1}
    answer = await client.post(ALERTMANAGER, json=grafana)
    assert answer.status_code == 200, answer.text
    [taken] = answer.json()["taken"]
    assert taken["outcome"] == "opened"
    assert (await incident(client, taken["incident_id"]))["severity"] == "sev3"


async def test_a_repeat_counts_on_the_open_incident(client: AsyncClient) -> None:
    first = await outcome(client, am_alert("DiskFull"))
    again = await send(client, am_alert("DiskFull"), am_alert("DiskFull"))
    assert [t["outcome"] for t in again["taken"]] == ["counted", "counted"]
    assert {t["incident_id"] for t in again["taken"]} == {first["incident_id"]}
    shown = await incident(client, first["incident_id"])
    assert (shown["status"], shown["occurrence_count"]) == ("open", 3)
    assert len(await incidents(client)) == 1
    entries = await timeline(client, first["incident_id"])
    assert [(e["actor"], e["verb"]) for e in entries] == [
        ("alertmanager", "create"),
        ("alertmanager", "recur"),
    ]


async def test_alertmanagers_resolved_notification_resolves_the_incident(
    client: AsyncClient,
) -> None:
    """Captured from the real Alertmanager: the firing notification, then the resolved one."""
    opened = await client.post(ALERTMANAGER, json=DISK_FULL_FIRING)
    [fired] = opened.json()["taken"]
    assert fired["outcome"] == "opened"
    resolved = await client.post(ALERTMANAGER, json=DISK_FULL_RESOLVED)
    assert resolved.status_code == 200, resolved.text
    [gone] = resolved.json()["taken"]
    assert gone == {**fired, "outcome": "resolved"}
    shown = await incident(client, fired["incident_id"])
    assert shown["status"] == "resolved"
    assert shown["resolved_at"] is not None
    assert shown["summary"] == "Disk on db-1 is 97% full"  # the resolve names it "DiskFull"
    last = (await timeline(client, fired["incident_id"]))[-1]
    assert (last["actor"], last["verb"], last["notes"]) == (
        "alertmanager",
        "resolve",
        "resolved by alertmanager",
    )


async def test_a_resolve_of_an_incident_a_person_closed_changes_nothing(
    client: AsyncClient,
) -> None:
    fired = await outcome(client, am_alert("Backlog"))
    number = fired["incident_id"]
    assert (await client.post(f"/api/incidents/{number}/resolve")).status_code == 200
    assert (await client.post(f"/api/incidents/{number}/close")).status_code == 200
    before = await incident(client, number)
    entries = await timeline(client, number)

    gone = await outcome(client, am_alert("Backlog", status="resolved"))

    assert (gone["outcome"], gone["incident_id"]) == ("ignored", None)
    after = await incident(client, number)
    assert after["status"] == "closed"
    assert after["updated_at"] == before["updated_at"]
    assert await timeline(client, number) == entries
    assert [entry["actor"] for entry in entries[1:]] == [TESTER, TESTER]


async def test_a_resolve_of_nothing_is_ignored(client: AsyncClient) -> None:
    gone = await outcome(client, am_alert("NeverFired", status="resolved"))
    assert (gone["outcome"], gone["incident_id"]) == ("ignored", None)
    assert await total(client) == 0


async def test_a_flap_reopens_the_same_incident(client: AsyncClient) -> None:
    fired = await outcome(client, am_alert("Flapping"))
    assert (await outcome(client, am_alert("Flapping", status="resolved")))["outcome"] == (
        "resolved"
    )
    again = await outcome(client, am_alert("Flapping"))
    assert again == {**fired, "outcome": "reopened"}
    shown = await incident(client, fired["incident_id"])
    assert (shown["status"], shown["reopen_count"], shown["occurrence_count"]) == ("open", 1, 2)
    assert len(await incidents(client)) == 1
    last = (await timeline(client, fired["incident_id"]))[-1]
    assert (last["actor"], last["verb"]) == ("alertmanager", "reopen")


async def test_grafanas_documented_payload_opens_incidents_from_grafana(
    client: AsyncClient,
) -> None:
    answer = await client.post(ALERTMANAGER, json=GRAFANA)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["source"], body["received"], body["refused"]) == ("grafana", 2, [])
    assert [t["outcome"] for t in body["taken"]] == ["opened", "opened"]
    memory, cpu = [await incident(client, t["incident_id"]) for t in body["taken"]]
    assert memory["id"] != cpu["id"]
    assert memory["metadata"]["source"] == cpu["metadata"]["source"] == "grafana"
    assert memory["kind"] == "alert"
    assert memory["severity"] == "sev3"  # no severity label: the default
    assert memory["summary"] == "This alert was triggered for zone us-1"
    assert cpu["summary"] == "This alert was triggered for zone eu-1"
    assert memory["details"]["values"] == {"B": 44.23943737541908, "C": 1}
    assert memory["details"]["generator_url"] == GRAFANA["alerts"][0]["generatorURL"]
    assert memory["details"]["silence_url"] == GRAFANA["alerts"][0]["silenceURL"]


# -- what the webhook refuses ----------------------------------------------------------------


async def test_one_bad_alert_of_a_batch_is_refused_and_the_others_taken(
    client: AsyncClient,
) -> None:
    bad = am_alert("Bad", status="pending")
    answer = await client.post(
        ALERTMANAGER, json=webhook(am_alert("GoodOne"), bad, am_alert("GoodTwo"))
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [(t["index"], t["outcome"]) for t in body["taken"]] == [(0, "opened"), (2, "opened")]
    assert body["refused"] == [
        {
            "index": 1,
            "field": "alerts[1].status",
            "message": "must be 'firing' or 'resolved', not 'pending'",
        }
    ]
    assert body["received"] == 3  # the alerts in the request, refused ones too
    summaries = sorted(i["summary"] for i in await incidents(client))
    assert summaries == ["GoodOne is firing", "GoodTwo is firing"]


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ({"version": "4"}, "body.alerts", "the payload must hold a list of alerts under `alerts`"),
        ({"alerts": {"a": 1}}, "body.alerts", "under `alerts`"),
        ([webhook(am_alert("InAList"))], "body", "the payload must be a JSON object"),
        ("alerts", "body", "the payload must be a JSON object"),
        ({"version": "3", "alerts": []}, "body.version", "version '3' is not supported"),
        (webhook(*[{}] * 1001), "body.alerts", "1001 alerts, at most 1000 are accepted"),
    ],
    ids=["no-list", "alerts-not-a-list", "a-list", "a-string", "version", "too-many"],
)
async def test_a_payload_with_nothing_to_take_is_422_in_the_contracts_envelope(
    client: AsyncClient, payload: Any, field: str, message: str
) -> None:
    answer = await client.post(ALERTMANAGER, json=payload)
    errors = field_errors(answer)
    assert field in errors, errors
    assert message in errors[field]
    assert await total(client) == 0


async def test_a_payload_whose_every_alert_is_bad_is_422_naming_each(
    client: AsyncClient,
) -> None:
    answer = await client.post(ALERTMANAGER, json=webhook(am_alert("Pending", status="pending"), 7))
    assert field_errors(answer) == {
        "body.alerts[0].status": "must be 'firing' or 'resolved', not 'pending'",
        "body.alerts[1]": "an alert must be a JSON object",
    }
    assert await total(client) == 0


async def test_a_body_that_is_not_json_is_refused(client: AsyncClient) -> None:
    """The contract's error table (api/errors.py): a body that cannot be read as JSON at all is
    400 `bad_request`; one that is JSON but not a payload is 422 (above)."""
    answer = await client.post(
        ALERTMANAGER, content=b'{"alerts": [', headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "bad_request"
    assert {e["message"] for e in error["details"]["errors"]} == {"Request body is not valid JSON"}
    assert await total(client) == 0


async def test_huge_label_sets_and_long_summaries_are_refused_with_a_clear_message(
    client: AsyncClient,
) -> None:
    many = am_alert("ManyLabels")
    many["labels"].update({f"label_{n:02}": "x" for n in range(63)})
    assert len(many["labels"]) == 65  # alertname, severity and 63 more
    long = am_alert("LongSummary", annotations={"summary": "s" * 501})
    answer = await client.post(ALERTMANAGER, json=webhook(many, long, am_alert("Fine")))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [(t["index"], t["outcome"]) for t in body["taken"]] == [(2, "opened")]
    assert body["refused"] == [
        {
            "index": 0,
            "field": "alerts[0].labels",
            "message": "labels: 65 entries, at most 64 are accepted",
        },
        {
            "index": 1,
            "field": "alerts[1].annotations.summary",
            "message": "501 characters, at most 500 are accepted as a summary",
        },
    ]
    assert [i["summary"] for i in await incidents(client)] == ["Fine is firing"]

    alone = await client.post(ALERTMANAGER, json=webhook(many))
    assert field_errors(alone) == {
        "body.alerts[0].labels": "labels: 65 entries, at most 64 are accepted"
    }


async def test_a_summary_of_exactly_500_is_taken(client: AsyncClient) -> None:
    taken = await outcome(client, am_alert("AtLimit", annotations={"summary": "s" * 500}))
    assert taken["outcome"] == "opened"
    assert len((await incident(client, taken["incident_id"]))["summary"]) == 500


async def test_the_webhook_needs_a_token_that_may_create_incidents(
    as_role: Any, client: AsyncClient
) -> None:
    viewer = await as_role("watcher@x.io", Role.VIEWER)
    refused = await viewer.post(ALERTMANAGER, json=webhook(am_alert("FromAViewer")))
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "forbidden"
    nobody = await client.post(
        ALERTMANAGER, json=webhook(am_alert("NoToken")), headers={"Authorization": ""}
    )
    assert nobody.status_code == 401, nobody.text
    assert await total(client) == 0
    responder = await as_role("oncall@x.io", Role.RESPONDER)
    taken = await responder.post(ALERTMANAGER, json=webhook(am_alert("FromAResponder")))
    assert taken.status_code == 200, taken.text
    assert taken.json()["taken"][0]["outcome"] == "opened"


async def test_the_same_alert_twice_in_one_request_opens_once_and_counts_once(
    client: AsyncClient,
) -> None:
    body = await send(client, am_alert("Twice"), am_alert("Twice"))
    first, second = body["taken"]
    assert (first["outcome"], second["outcome"]) == ("opened", "counted")
    assert first["incident_id"] == second["incident_id"]
    assert (await incident(client, first["incident_id"]))["occurrence_count"] == 2


async def test_an_empty_group_and_truncated_alerts_are_answered(client: AsyncClient) -> None:
    empty = await send(client)
    assert (empty["received"], empty["taken"], empty["refused"]) == (0, [], [])
    truncated = {**webhook(am_alert("Kept")), "truncatedAlerts": 5}
    answer = await client.post(ALERTMANAGER, json=truncated)
    assert answer.status_code == 200, answer.text
    assert (answer.json()["received"], answer.json()["truncated"]) == (1, 5)


async def test_what_postgresql_cannot_store_is_refused_not_a_500(client: AsyncClient) -> None:
    nul = am_alert("WithNul", job="etl\u0000")
    surrogate = am_alert("WithSurrogate", annotations={"summary": "half \ud800 a pair"})
    document = json.dumps(webhook(nul, surrogate, am_alert("Storable")))  # \\u escapes, as sent
    answer = await client.post(
        ALERTMANAGER, content=document, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [(t["index"], t["outcome"]) for t in body["taken"]] == [(2, "opened")]
    refused = {r["index"]: r for r in body["refused"]}
    assert refused[0]["field"] == "alerts[0].labels"
    assert "NUL" in refused[0]["message"]
    assert "surrogate" in refused[1]["message"]
    assert [i["summary"] for i in await incidents(client)] == ["Storable is firing"]


# -- the demo rule slow-warnings (warehouse/alert_rules.yml) ---------------------------------


async def test_an_alertmanager_warning_opens_on_its_third_occurrence(client: AsyncClient) -> None:
    warning = am_alert("QueueSlow", severity="warning")
    first = await outcome(client, warning)
    second = await outcome(client, warning)
    assert [first["outcome"], second["outcome"]] == ["pending", "pending"]
    assert first["incident_id"] is second["incident_id"] is None
    assert await total(client) == 0
    third = await outcome(client, warning)
    assert third["outcome"] == "opened"
    shown = await incident(client, third["incident_id"])
    assert (shown["occurrence_count"], shown["severity"]) == (3, "sev3")
    assert shown["metadata"]["rule"] == "slow-warnings"
    assert (await outcome(client, warning))["outcome"] == "counted"
    assert (await incident(client, third["incident_id"]))["occurrence_count"] == 4


async def test_slow_warnings_holds_alertmanagers_warnings_only(client: AsyncClient) -> None:
    critical = await outcome(client, am_alert("QueueDown", severity="critical"))
    assert critical["outcome"] == "opened"
    grafana = {**webhook(am_alert("GrafanaWarn", severity="warning")), "orgId": 1, "version": "1"}
    answer = await client.post(ALERTMANAGER, json=grafana)
    assert answer.json()["taken"][0]["outcome"] == "opened"


async def test_a_silence_keeps_a_pending_warning_quiet(client: AsyncClient) -> None:
    warning = am_alert("QueueSlow", severity="warning")
    assert (await outcome(client, warning))["outcome"] == "pending"
    assert (await outcome(client, warning))["outcome"] == "pending"
    made = await silence(
        client, matchers={"labels": {"alertname": "QueueSlow"}}, duration_seconds=600
    )
    third = await outcome(client, warning)
    assert (third["outcome"], third["silence_id"]) == ("silenced", made["id"])
    assert await total(client) == 0


# -- PagerDuty's Events API v2 ---------------------------------------------------------------


async def test_a_trigger_with_a_responders_token_opens_an_incident(
    anonymous: AsyncClient, client: AsyncClient, responder_key: str
) -> None:
    answer = await anonymous.post(PAGERDUTY, json=pd_event(responder_key))
    assert answer.status_code == 202, answer.text
    assert answer.json() == {
        "status": "success",
        "message": "Event processed",
        "dedup_key": "srv01/mysql",
    }
    [shown] = await incidents(client)
    assert shown["kind"] == "alert"
    assert shown["key"] == "srv01/mysql"
    assert shown["severity"] == "sev1"  # critical
    assert shown["summary"] == DISK["payload"]["summary"]
    assert shown["metadata"]["source"] == "pagerduty"
    assert responder_key not in json.dumps(shown)  # the routing key is a secret
    assert shown["details"]["custom_details"] == DISK["payload"]["custom_details"]
    [created] = await timeline(client, shown["id"])
    assert (created["actor"], created["verb"]) == ("pagerduty", "create")


async def test_acknowledge_then_resolve_move_the_incident(
    anonymous: AsyncClient, client: AsyncClient, responder_key: str
) -> None:
    assert (await anonymous.post(PAGERDUTY, json=pd_event(responder_key))).status_code == 202
    [opened] = await incidents(client)

    acknowledged = await anonymous.post(PAGERDUTY, json=pd_event(responder_key, "acknowledge"))
    assert acknowledged.status_code == 202, acknowledged.text
    assert acknowledged.json()["dedup_key"] == "srv01/mysql"
    shown = await incident(client, opened["id"])
    assert (shown["status"], shown["acknowledged_by"]) == ("acknowledged", "pagerduty")
    assert shown["acknowledged_at"] is not None

    resolved = await anonymous.post(PAGERDUTY, json=pd_event(responder_key, "resolve"))
    assert resolved.status_code == 202, resolved.text
    shown = await incident(client, opened["id"])
    assert shown["status"] == "resolved"
    entries = await timeline(client, opened["id"])
    assert [(e["actor"], e["verb"]) for e in entries] == [
        ("pagerduty", "create"),
        ("pagerduty", "acknowledge"),
        ("pagerduty", "resolve"),
    ]
    assert entries[-1]["notes"] == "resolved by pagerduty"


async def test_a_trigger_without_a_dedup_key_is_given_one_to_resolve_it_by(
    anonymous: AsyncClient, client: AsyncClient, responder_key: str
) -> None:
    event = pd_event(responder_key)
    del event["dedup_key"]
    answer = await anonymous.post(PAGERDUTY, json=event)
    assert answer.status_code == 202, answer.text
    dedup_key = answer.json()["dedup_key"]
    [shown] = await incidents(client)
    assert shown["key"] == dedup_key
    resolve = pd_event(responder_key, "resolve", dedup_key=dedup_key)
    assert (await anonymous.post(PAGERDUTY, json=resolve)).status_code == 202
    assert (await incident(client, shown["id"]))["status"] == "resolved"


async def test_an_unknown_routing_key_is_401_and_nothing_is_stored(
    anonymous: AsyncClient, client: AsyncClient
) -> None:
    before = await total(client)
    answer = await anonymous.post(PAGERDUTY, json=pd_event("ivt_" + "0" * 40))
    assert answer.status_code == 401, answer.text
    body = answer.json()
    assert body["status"] == "invalid routing key"
    assert body["errors"] == ["'routing_key' unknown or revoked"]
    assert await total(client) == before == 0


async def test_a_viewers_token_as_routing_key_is_403_and_nothing_is_stored(
    anonymous: AsyncClient, client: AsyncClient, db: Database
) -> None:
    viewer = await issue(db, "watcher@x.io", Role.VIEWER)
    before = await total(client)
    answer = await anonymous.post(PAGERDUTY, json=pd_event(viewer))
    assert answer.status_code == 403, answer.text
    body = answer.json()
    assert body["status"] == "forbidden"
    assert body["errors"] == ["'routing_key' not allowed"]
    assert "responder" in body["message"]
    assert await total(client) == before == 0


async def test_a_revoked_token_is_no_longer_a_routing_key(
    anonymous: AsyncClient, client: AsyncClient
) -> None:
    made = await client.post("/api/tokens", json={"name": "pager", "role": "responder"})
    assert made.status_code == 201, made.text
    secret, token_id = made.json()["token"], made.json()["id"]
    taken = await anonymous.post(PAGERDUTY, json=pd_event(secret))  # known (and cached) now
    assert taken.status_code == 202, taken.text
    revoked = await client.post(f"/api/tokens/{token_id}/revoke")
    assert revoked.status_code == 200, revoked.text
    refused = await anonymous.post(PAGERDUTY, json=pd_event(secret, dedup_key="after/revoke"))
    assert refused.status_code == 401, refused.text
    assert [i["key"] for i in await incidents(client)] == ["srv01/mysql"]


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"payload": {**DISK["payload"], "source": ""}}, "'payload.source' is missing or blank"),
        (
            {"payload": {**DISK["payload"], "severity": "fatal"}},
            "'payload.severity' is invalid (must be one of the following: 'critical', "
            "'warning', 'error' or 'info')",
        ),
        (
            {"event_action": "escalate"},
            "'event_action' is invalid (must be one of the following: 'trigger', "
            "'acknowledge' or 'resolve')",
        ),
        ({"payload": None}, "'payload' is missing or blank"),
        ({"routing_key": None}, "'routing_key' is missing or blank"),
    ],
    ids=["no-source", "severity", "action", "no-payload", "no-routing-key"],
)
async def test_an_invalid_event_is_400_in_pagerdutys_shape(
    anonymous: AsyncClient,
    client: AsyncClient,
    responder_key: str,
    change: dict[str, Any],
    error: str,
) -> None:
    event = {**pd_event(responder_key), **change}
    answer = await anonymous.post(PAGERDUTY, json=event)
    assert answer.status_code == 400, answer.text
    assert answer.json() == {
        "status": "invalid event",
        "message": "Event object is invalid",
        "errors": [error],
    }
    assert await total(client) == 0


async def test_an_acknowledge_needs_its_dedup_key(
    anonymous: AsyncClient, client: AsyncClient, responder_key: str
) -> None:
    event = pd_event(responder_key, "acknowledge")
    del event["dedup_key"]
    answer = await anonymous.post(PAGERDUTY, json=event)
    assert answer.status_code == 400, answer.text
    assert answer.json()["errors"] == ["'dedup_key' is missing or blank"]


async def test_malformed_json_and_a_non_object_are_400(
    anonymous: AsyncClient, client: AsyncClient
) -> None:
    malformed = await anonymous.post(
        PAGERDUTY, content=b'{"routing_key": ', headers={"Content-Type": "application/json"}
    )
    assert malformed.status_code == 400, malformed.text
    assert malformed.json() == {
        "status": "invalid event",
        "message": "Event object is invalid",
        "errors": ["Malformed JSON"],
    }
    listed = await anonymous.post(PAGERDUTY, json=[DISK])
    assert listed.status_code == 400, listed.text
    assert listed.json() == {
        "status": "Unrecognized object",
        "message": "Event object format is unrecognized",
        "errors": ["Event must be a JSON object"],
    }
    assert await total(client) == 0


async def test_any_dedup_key_maps_to_one_stable_incident_key(
    anonymous: AsyncClient, client: AsyncClient, responder_key: str
) -> None:
    dedup_key = "disk full on db 1 / mysql " + "x" * 220  # spaces, 246 characters
    event = pd_event(responder_key, dedup_key=dedup_key)
    first = await anonymous.post(PAGERDUTY, json=event)
    second = await anonymous.post(PAGERDUTY, json=event)
    assert first.status_code == second.status_code == 202, second.text
    assert first.json()["dedup_key"] == second.json()["dedup_key"] == dedup_key  # as sent
    [shown] = await incidents(client)
    assert shown["key"] != dedup_key
    assert len(shown["key"]) <= 200
    assert " " not in shown["key"]
    assert shown["key"].startswith("disk_full_on_db_1_/_mysql_xxx")
    assert shown["occurrence_count"] == 2
    assert shown["details"]["dedup_key"] == dedup_key
    resolve = pd_event(responder_key, "resolve", dedup_key=dedup_key)
    assert (await anonymous.post(PAGERDUTY, json=resolve)).status_code == 202
    assert (await incident(client, shown["id"]))["status"] == "resolved"


async def test_an_alertmanager_resolve_does_not_resolve_a_pagerduty_incident(
    anonymous: AsyncClient, client: AsyncClient, responder_key: str
) -> None:
    event = pd_event(responder_key, dedup_key="Shared:1")
    assert (await anonymous.post(PAGERDUTY, json=event)).status_code == 202
    gone = am_alert("Shared", status="resolved", dedup_key="Shared:1")
    assert (await outcome(client, gone))["outcome"] == "ignored"
    [shown] = await incidents(client)
    assert shown["status"] == "open"


# -- silences --------------------------------------------------------------------------------


async def silence(client: AsyncClient, **body: Any) -> dict[str, Any]:
    answer = await client.post("/api/silences", json={"reason": "db maintenance", **body})
    assert answer.status_code == 201, answer.text
    made: dict[str, Any] = answer.json()
    return made


async def test_a_silenced_alert_opens_nothing_until_its_silence_ends(
    client: AsyncClient, db: Database, settings: Settings
) -> None:
    made = await silence(client, matchers={"labels": {"team": "da*"}}, duration_seconds=3600)
    assert made["state"] == "active"
    assert made["matchers"] == {"labels": {"team": "da*"}}
    assert made["created_by"] == TESTER
    assert (made["held_alerts"], made["suppressed"], made["ended_by"]) == (0, 0, None)

    alert = am_alert("DiskFull", team="data")
    held = await send(client, alert, alert)
    assert [(t["outcome"], t["silence_id"], t["incident_id"]) for t in held["taken"]] == [
        ("silenced", made["id"], None),
        ("silenced", made["id"], None),
    ]
    assert (await outcome(client, am_alert("Unsilenced", team="web")))["outcome"] == "opened"
    assert [i["summary"] for i in await incidents(client)] == ["Unsilenced is firing"]

    listed = (await client.get("/api/silences")).json()
    assert listed["total"] == 1
    [shown] = listed["silences"]
    assert (shown["id"], shown["held_alerts"], shown["suppressed"]) == (made["id"], 1, 2)
    assert shown["held"] is None  # the list names no alerts

    one = (await client.get(f"/api/silences/{made['id']}")).json()
    [kept] = one["held"]
    assert kept["key"] == f"DiskFull:{alert['fingerprint']}"
    assert (kept["kind"], kept["source"], kept["occurrences"], kept["firing"]) == (
        "alert",
        "alertmanager",
        2,
        True,
    )
    assert (kept["released_at"], kept["opened_incident_id"]) == (None, None)
    assert await release_once(db, settings) == []  # still silenced

    ended = await client.delete(f"/api/silences/{made['id']}")
    assert ended.status_code == 200, ended.text
    assert (ended.json()["state"], ended.json()["ended_by"]) == ("expired", TESTER)
    assert (await client.get("/api/silences")).json()["total"] == 0  # expired are not listed
    expired = (await client.get("/api/silences", params={"state": "expired"})).json()
    assert [s["id"] for s in expired["silences"]] == [made["id"]]
    again = await client.delete(f"/api/silences/{made['id']}")  # idempotent
    assert again.json()["ends_at"] == ended.json()["ends_at"]

    [opened] = await release_once(db, settings)
    assert await release_once(db, settings) == []  # once
    shown = await incident(client, opened)
    assert shown["key"] == kept["key"]
    assert (shown["status"], shown["summary"]) == ("open", "DiskFull is firing")
    assert shown["metadata"]["source"] == "alertmanager"
    assert (await timeline(client, opened))[-1]["verb"] == "silence_ended"
    released = (await client.get(f"/api/silences/{made['id']}")).json()["held"][0]
    assert released["opened_incident_id"] == opened
    assert released["released_at"] is not None
    assert (await outcome(client, alert)) == {
        "index": 0,
        "key": kept["key"],
        "outcome": "counted",
        "incident_id": opened,
        "silence_id": None,
    }


async def test_an_alert_resolved_while_silenced_opens_nothing_when_the_silence_ends(
    client: AsyncClient, db: Database, settings: Settings
) -> None:
    made = await silence(client, matchers={"source": "alertmanager"}, duration_seconds=600)
    assert (await outcome(client, am_alert("Brief")))["outcome"] == "silenced"
    assert (await outcome(client, am_alert("Brief", status="resolved")))["outcome"] == "ignored"
    assert (await client.delete(f"/api/silences/{made['id']}")).status_code == 200
    assert await release_once(db, settings) == []
    assert await total(client) == 0


async def test_a_silence_matches_on_key_kind_and_source(client: AsyncClient) -> None:
    ends_at = (utcnow() + timedelta(hours=1)).isoformat()
    by_key = await silence(client, matchers={"key": "Disk*"}, ends_at=ends_at)
    by_source = await silence(
        client, matchers={"kind": "alert", "source": "grafana"}, ends_at=ends_at
    )
    assert by_key["state"] == by_source["state"] == "active"
    assert by_key["matchers"] == {"key": "Disk*"}
    silenced = await outcome(client, am_alert("DiskSlow"))
    assert (silenced["outcome"], silenced["silence_id"]) == ("silenced", by_key["id"])
    assert (await outcome(client, am_alert("CpuHot")))["outcome"] == "opened"
    grafana = {**webhook(am_alert("GrafanaCpu")), "orgId": 1, "version": "1"}
    [taken] = (await client.post(ALERTMANAGER, json=grafana)).json()["taken"]
    assert (taken["outcome"], taken["silence_id"]) == ("silenced", by_source["id"])


async def test_a_scheduled_silence_is_pending_and_silences_nothing_yet(
    client: AsyncClient,
) -> None:
    starts_at = utcnow() + timedelta(hours=1)
    made = await silence(
        client,
        matchers={"labels": {"alertname": "Later"}},
        starts_at=starts_at.isoformat(),
        duration_seconds=3600,
    )
    assert made["state"] == "pending"
    taken = await outcome(client, am_alert("Later"))
    assert (taken["outcome"], taken["silence_id"]) == ("opened", None)
    pending = (await client.get("/api/silences", params={"state": "pending"})).json()
    assert [s["id"] for s in pending["silences"]] == [made["id"]]
    active = (await client.get("/api/silences", params={"state": "active"})).json()
    assert active["silences"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"matchers": {}, "duration_seconds": 600}, "body.matchers"),
        ({"matchers": {"labels": {}}, "duration_seconds": 600}, "body.matchers"),
        ({"matchers": {"key": "Disk*"}}, "body"),
        (
            {"matchers": {"key": "Disk*"}, "duration_seconds": 600, "ends_at": "2099-01-01T00:00Z"},
            "body",
        ),
        ({"matchers": {"source": "nagios"}, "duration_seconds": 600}, "body.matchers.source"),
        ({"matchers": {"key": "Disk*"}, "duration_seconds": 10}, "body.duration_seconds"),
        ({"matchers": {"key": "Disk*"}, "ends_at": "2099-01-01T00:00:00"}, "body.ends_at"),
    ],
    ids=["no-matcher", "empty-labels", "no-end", "both-ends", "source", "short", "naive-end"],
)
async def test_an_invalid_silence_is_422(
    client: AsyncClient, body: dict[str, Any], field: str
) -> None:
    answer = await client.post("/api/silences", json={"reason": "maintenance", **body})
    errors = field_errors(answer)
    assert field in errors, errors
    assert (await client.get("/api/silences")).json()["total"] == 0


async def test_the_422_of_a_silence_says_what_is_missing(client: AsyncClient) -> None:
    no_matcher = await client.post(
        "/api/silences", json={"reason": "x", "matchers": {}, "duration_seconds": 600}
    )
    assert "give at least one matcher" in field_errors(no_matcher)["body.matchers"]
    no_end = await client.post("/api/silences", json={"reason": "x", "matchers": {"key": "a"}})
    assert "give ends_at or duration_seconds" in field_errors(no_end)["body"]


@pytest.mark.parametrize(
    "window",
    [
        {"ends_at": "2020-01-01T00:00:00Z"},
        {"starts_at": "2020-01-01T00:00:00Z", "duration_seconds": 600},
    ],
    ids=["ends-in-the-past", "starts-and-ends-in-the-past"],
)
async def test_a_silence_that_ends_in_the_past_is_400(
    client: AsyncClient, window: dict[str, str]
) -> None:
    answer = await client.post(
        "/api/silences", json={"reason": "late", "matchers": {"key": "Disk*"}, **window}
    )
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "bad_request"
    assert "over before it starts" in error["message"]


async def test_a_silence_longer_than_30_days_is_400(client: AsyncClient) -> None:
    answer = await client.post(
        "/api/silences",
        json={
            "reason": "forever",
            "matchers": {"key": "Disk*"},
            "ends_at": (utcnow() + timedelta(days=31)).isoformat(),
        },
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["details"] == {"max_days": 30}


async def test_unknown_silences_are_404(client: AsyncClient) -> None:
    for method in ("GET", "DELETE"):
        answer = await client.request(method, "/api/silences/987654321")
        assert answer.status_code == 404, answer.text
        assert answer.json()["error"]["code"] == "not_found"
        assert answer.json()["error"]["details"] == {"silence_id": 987654321}


# -- metrics ---------------------------------------------------------------------------------


async def test_metrics_count_alerts_by_source_and_outcome_and_refusals_by_reason(
    anonymous: AsyncClient, client: AsyncClient, db: Database, responder_key: str
) -> None:
    before = await scrape(client)
    await send(client, am_alert("Metered"))  # opened
    await send(client, am_alert("Metered"), am_alert("Metered"))  # counted twice
    await send(client, am_alert("Metered", status="resolved"))  # resolved
    await send(client, am_alert("MeteredWarning", severity="warning"))  # pending
    await send(client, am_alert("NothingOpen", status="resolved"))  # ignored
    await send(client, am_alert("Fine"), am_alert("Bad", status="pending"))  # 1 refused
    await client.post(ALERTMANAGER, json={"alerts": "none"})  # the payload refused
    await client.post(ALERTMANAGER, json=GRAFANA)  # grafana: opened twice
    await anonymous.post(PAGERDUTY, json=pd_event(responder_key))  # pagerduty: opened
    await anonymous.post(PAGERDUTY, json=pd_event(responder_key, "acknowledge"))
    await anonymous.post(PAGERDUTY, json=pd_event("ivt_unknown"))  # unauthorized
    viewer = await issue(db, "watcher@x.io", Role.VIEWER)
    await anonymous.post(PAGERDUTY, json=pd_event(viewer))  # unauthorized (403)
    await anonymous.post(PAGERDUTY, json={"routing_key": responder_key})  # invalid
    after = await scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    taken = "intervene_alerts_total"
    assert delta(taken, source="alertmanager", outcome="opened") == 2  # Metered, Fine
    assert delta(taken, source="alertmanager", outcome="counted") == 2
    assert delta(taken, source="alertmanager", outcome="resolved") == 1
    assert delta(taken, source="alertmanager", outcome="pending") == 1
    assert delta(taken, source="alertmanager", outcome="ignored") == 1
    assert delta(taken, source="grafana", outcome="opened") == 2
    assert delta(taken, source="pagerduty", outcome="opened") == 1
    assert delta(taken, source="pagerduty", outcome="acknowledged") == 1
    refused = "intervene_alerts_refused_total"
    assert delta(refused, source="alertmanager", reason="invalid") == 2
    assert delta(refused, source="pagerduty", reason="unauthorized") == 2
    assert delta(refused, source="pagerduty", reason="invalid") == 1
    metrics = (await client.get("/metrics")).text
    assert "# TYPE intervene_alerts_total counter" in metrics
    assert "# TYPE intervene_alerts_refused_total counter" in metrics
