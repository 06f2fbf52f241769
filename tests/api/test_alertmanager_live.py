"""The real Prometheus Alertmanager (tests/alertmanager.py) driving the real app under uvicorn, on
SQLite and PostgreSQL: its webhook receiver posts to /api/integrations/alertmanager with a bearer
token, and its pagerduty_configs page /api/integrations/pagerduty/v2/enqueue with a token for
routing key. Every wait polls the API until a deadline; no sleep is an assertion.

Alertmanager deduplicates: posting an alert that is already firing, identical, sends nothing
new until `repeat_interval`. So a "repeat" is exercised the two ways it really happens:
- resolve, then fire again (a flap): the resolved notification resolves the incident and the
  next firing one reopens the same incident (flap control, warehouse/alert_rules.yml);
- an Alertmanager with a short `repeat_interval` re-sends a still-firing alert: each repeat
  counts on the one open incident, and a warning (held by the demo rule `slow-warnings` until
  its third occurrence) opens on its third notification.

Skipped without the binary; a failure under INTERVENE_TEST_ALERTMANAGER=required.
"""

import re
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.alertmanager import RunningAlertmanager, require_alertmanager
from tests.api.conftest import LiveServer

T = TypeVar("T")
DEADLINE = 60.0  # seconds: generous on a busy 2-core machine; a pass takes about one


@pytest.fixture(scope="module")
def server(sse_database: str, start_server: Callable[..., LiveServer]) -> LiveServer:
    require_alertmanager()  # skip (or fail, when required) before starting anything
    return start_server(sse_database)


def receivers(server: LiveServer) -> dict[str, Any]:
    """Alertmanager's receivers pointed at the app, the server's token for both."""
    return {
        "webhook_url": f"{server.url}/api/integrations/alertmanager",
        "webhook_token": server.token,
        "pagerduty_url": f"{server.url}/api/integrations/pagerduty/v2/enqueue",
        "pagerduty_routing_key": server.token,
        "group_wait": "0s",
    }


@pytest.fixture(scope="module")
def am(
    server: LiveServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningAlertmanager]:
    directory = tmp_path_factory.mktemp("alertmanager")
    with RunningAlertmanager(directory, **receivers(server)) as running:
        yield running


# -- helpers -----------------------------------------------------------------------------------


def get(server: LiveServer, path: str, **params: Any) -> Any:
    answer = httpx.get(f"{server.url}{path}", params=params, headers=server.auth, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def alert_incidents(server: LiveServer) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = get(server, "/api/incidents", kind="alert", limit=100)[
        "incidents"
    ]
    return found


def named(server: LiveServer, alertname: str) -> list[dict[str, Any]]:
    """The alert incidents of this alertname: its label (webhook) or in its summary (PagerDuty,
    whose summary Alertmanager writes as `[FIRING:1] <alertname> ...`)."""
    return [
        incident
        for incident in alert_incidents(server)
        if incident["details"].get("labels", {}).get("alertname") == alertname
        or alertname in incident["summary"].split()
    ]


def timeline(server: LiveServer, incident_id: int) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = get(server, f"/api/incidents/{incident_id}/timeline")["entries"]
    return entries


def wait_for(
    condition: Callable[[], T | None], what: str, am: RunningAlertmanager, server: LiveServer
) -> T:
    """Poll until `condition` returns something truthy; fail after DEADLINE with both logs."""
    deadline = time.monotonic() + DEADLINE
    while True:
        found = condition()
        if found:
            return found
        if time.monotonic() > deadline:
            app_log = server.log.read_text(errors="replace")[-3000:] if server.log else ""
            raise AssertionError(
                f"no {what} within {DEADLINE} s\n--- alertmanager log ---\n{am.log()[-3000:]}"
                f"\n--- app log ---\n{app_log}"
            )
        time.sleep(0.1)


def one_incident(
    server: LiveServer, alertname: str, check: Callable[[dict[str, Any]], bool]
) -> Callable[[], dict[str, Any] | None]:
    """A condition: the one incident of `alertname`, once `check` holds for it."""

    def condition() -> dict[str, Any] | None:
        found = named(server, alertname)
        assert len(found) <= 1, f"more than one incident for {alertname}: {found}"
        return found[0] if found and check(found[0]) else None

    return condition


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def alerts_total(server: LiveServer, source: str, outcome: str) -> float:
    answer = httpx.get(f"{server.url}/metrics", headers=server.auth, timeout=10)
    assert answer.status_code == 200, answer.text
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            if sample.name == "intervene_alerts_total" and sample.labels == {
                "source": source,
                "outcome": outcome,
            }:
                return float(sample.value)
    return 0.0


# -- the webhook receiver ----------------------------------------------------------------------


def test_a_firing_alert_opens_an_incident_and_its_resolution_resolves_it(
    am: RunningAlertmanager, server: LiveServer
) -> None:
    name = unique("DiskFull")
    labels = {"alertname": name, "instance": "db-1:9100", "severity": "critical"}
    am.fire(labels, {"summary": f"Disk on db-1 is 97% full ({name})", "runbook": "disk"})

    opened = wait_for(
        one_incident(server, name, lambda i: i["status"] == "open"), "open incident", am, server
    )
    assert opened["kind"] == "alert"
    assert opened["severity"] == "sev1"
    assert opened["summary"] == f"Disk on db-1 is 97% full ({name})"
    assert opened["metadata"]["source"] == "alertmanager"
    assert opened["occurrence_count"] == 1
    details = opened["details"]
    assert details["labels"] == labels
    assert details["annotations"] == {"summary": opened["summary"], "runbook": "disk"}
    assert details["generator_url"] == "http://127.0.0.1/intervene-test"
    assert re.fullmatch(r"[0-9a-f]{16}", details["fingerprint"])  # Alertmanager's own
    assert opened["key"] == f"{name}:{details['fingerprint']}"
    assert details["group_key"]  # Alertmanager's group key, kept

    am.resolve(labels)
    resolved = wait_for(
        one_incident(server, name, lambda i: i["status"] == "resolved"),
        "resolved incident",
        am,
        server,
    )
    assert resolved["id"] == opened["id"]
    assert details["ends_at"] is None  # firing: Go's zero time is no end
    assert resolved["details"] == details  # the resolve does not rewrite what opened it
    last = timeline(server, opened["id"])[-1]
    assert (last["actor"], last["verb"], last["notes"]) == (
        "alertmanager",
        "resolve",
        "resolved by alertmanager",
    )


def test_fired_again_after_its_resolution_reopens_the_same_incident(
    am: RunningAlertmanager, server: LiveServer
) -> None:
    """Re-firing an alert that is still active sends nothing (Alertmanager deduplicates it):
    the repeat that reaches Intervene at once is a flap, resolved then fired again."""
    name = unique("Flapping")
    labels = {"alertname": name, "severity": "error"}
    am.fire(labels, {"summary": f"{name} is down"})
    opened = wait_for(
        one_incident(server, name, lambda i: i["status"] == "open"), "open incident", am, server
    )
    assert opened["severity"] == "sev2"
    am.resolve(labels)
    wait_for(
        one_incident(server, name, lambda i: i["status"] == "resolved"),
        "resolved incident",
        am,
        server,
    )

    am.fire(labels, {"summary": f"{name} is down"})
    reopened = wait_for(
        one_incident(server, name, lambda i: i["status"] == "open" and i["reopen_count"] == 1),
        "reopened incident",
        am,
        server,
    )
    assert reopened["id"] == opened["id"]
    assert reopened["occurrence_count"] == 2
    entries = timeline(server, opened["id"])
    assert [(e["actor"], e["verb"]) for e in entries] == [
        ("alertmanager", "create"),
        ("alertmanager", "resolve"),
        ("alertmanager", "reopen"),
    ]

    am.resolve(labels)  # and it resolves again
    wait_for(
        one_incident(server, name, lambda i: i["status"] == "resolved"),
        "resolved again",
        am,
        server,
    )


def test_repeat_notifications_count_and_a_warning_opens_on_its_third(
    server: LiveServer, tmp_path: Path
) -> None:
    """An Alertmanager that re-sends a still-firing alert every second (`repeat_interval`)."""
    critical, warning = unique("Repeating"), unique("SlowWarning")
    pending_before = alerts_total(server, "alertmanager", "pending")
    settings = receivers(server) | {"group_interval": "1s", "repeat_interval": "1s"}
    with RunningAlertmanager(tmp_path, **settings) as repeating:
        repeating.fire({"alertname": critical, "severity": "critical"})
        repeating.fire({"alertname": warning, "severity": "warning"})
        counted = wait_for(
            one_incident(server, critical, lambda i: i["occurrence_count"] >= 3),
            "three notifications counted on one incident",
            repeating,
            server,
        )
        opened = wait_for(
            one_incident(server, warning, lambda _: True),
            "the warning opened on its third notification",
            repeating,
            server,
        )
    assert counted["status"] == "open"
    assert counted["reopen_count"] == 0
    entries = timeline(server, counted["id"])
    assert entries[0]["verb"] == "create"
    assert {(e["actor"], e["verb"]) for e in entries[1:]} == {("alertmanager", "recur")}
    assert opened["status"] == "open"
    assert opened["severity"] == "sev3"
    assert opened["metadata"]["rule"] == "slow-warnings"
    assert opened["occurrence_count"] >= 3  # the two it was pending, the one that opened it
    assert alerts_total(server, "alertmanager", "pending") - pending_before == 2


# -- the pagerduty receiver --------------------------------------------------------------------


def test_paged_through_pagerduty_opens_and_resolves_an_incident(
    am: RunningAlertmanager, server: LiveServer
) -> None:
    name = unique("PlannerDown")
    labels = {"alertname": name, "receiver": "pagerduty", "severity": "critical"}
    am.fire(labels, {"summary": "Planner is down"})

    opened = wait_for(
        one_incident(server, name, lambda i: i["status"] == "open"), "open incident", am, server
    )
    assert opened["metadata"]["source"] == "pagerduty"
    assert opened["kind"] == "alert"
    assert opened["severity"] == "sev2"  # Alertmanager pages with "error" unless configured
    assert opened["summary"].startswith(f"[FIRING:1] {name}")
    assert re.fullmatch(r"[0-9a-f]{64}", opened["key"])  # Alertmanager's dedup_key, as is
    assert opened["details"]["dedup_key"] == opened["key"]
    assert opened["details"]["client"] == "Alertmanager"
    assert server.token not in str(opened)  # the routing key is never stored
    [created] = timeline(server, opened["id"])
    assert (created["actor"], created["verb"]) == ("pagerduty", "create")

    am.resolve(labels)
    resolved = wait_for(
        one_incident(server, name, lambda i: i["status"] == "resolved"),
        "resolved incident",
        am,
        server,
    )
    assert resolved["id"] == opened["id"]
    last = timeline(server, opened["id"])[-1]
    assert (last["actor"], last["verb"], last["notes"]) == (
        "pagerduty",
        "resolve",
        "resolved by pagerduty",
    )
