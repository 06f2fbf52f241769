"""The Alertmanager harness (tests/alertmanager.py) against the real binary: a firing alert and
its resolution reach a webhook (payload version 4, bearer token) and, routed by a label, a
PagerDuty Events v2 receiver at a custom url. The receivers are tests/receiver.py's HTTP server.
"""

import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest

import tests.alertmanager as alertmanager_module
from tests.alertmanager import RunningAlertmanager, check_config, require_alertmanager
from tests.receiver import Receiver, serve_receiver

TOKEN = "am-test-token"
ROUTING_KEY = "R0UT1NGKEY-intervene-test"
T = TypeVar("T")

receivers = contextmanager(serve_receiver)


def wait_for(condition: Callable[[], T | None], what: str, seconds: float = 20) -> T:
    """Poll `condition` until it returns something truthy; fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {seconds} s")
        time.sleep(0.02)


def bodies(receiver: Receiver) -> list[dict[str, Any]]:
    with receiver.lock:
        return [json.loads(r.body) for r in receiver.requests]


def nth_request(receiver: Receiver, n: int) -> Callable[[], dict[str, Any] | None]:
    def check() -> dict[str, Any] | None:
        with receiver.lock:
            if len(receiver.requests) < n:
                return None
            return dict(json.loads(receiver.requests[n - 1].body))

    return check


def unique_labels(**extra: str) -> dict[str, str]:
    return {"alertname": "InterveneHarness", "instance": uuid.uuid4().hex[:8], **extra}


@pytest.fixture
def hooks() -> Iterator[tuple[Receiver, Receiver]]:
    """Two receivers: the webhook and the PagerDuty Events v2 endpoint."""
    with receivers() as webhook, receivers() as pagerduty:
        yield webhook, pagerduty


@pytest.fixture
def am(tmp_path: Path, hooks: tuple[Receiver, Receiver]) -> Iterator[RunningAlertmanager]:
    webhook, pagerduty = hooks
    pagerduty.url = pagerduty.url.replace("/hook", "/v2/enqueue")  # any path is served
    with RunningAlertmanager(
        tmp_path,
        webhook_url=webhook.url,
        webhook_token=TOKEN,
        pagerduty_url=pagerduty.url,
        pagerduty_routing_key=ROUTING_KEY,
    ) as running:
        yield running


def test_the_written_configuration_passes_amtool(tmp_path: Path) -> None:
    harness = RunningAlertmanager(
        tmp_path,
        webhook_url="http://127.0.0.1:9/hook",
        webhook_token=TOKEN,
        pagerduty_url="http://127.0.0.1:9/v2/enqueue",
        pagerduty_severity="critical",
        pagerduty_description="{{ .CommonAnnotations.summary }}",
        pagerduty_details={"incident": "{{ .CommonLabels.instance }}"},
    )
    assert "Found:" in check_config(harness.write_config())


def test_a_firing_alert_and_its_resolution_reach_the_webhook(
    am: RunningAlertmanager, hooks: tuple[Receiver, Receiver]
) -> None:
    webhook, pagerduty = hooks
    labels = unique_labels(severity="critical")
    posted = time.monotonic()
    am.fire(labels, {"summary": "disk full", "runbook_url": "http://runbooks/disk"})
    firing = wait_for(nth_request(webhook, 1), "firing webhook")
    fired_after = time.monotonic() - posted

    with webhook.lock:
        headers = webhook.requests[0].headers
    assert headers["authorization"] == f"Bearer {TOKEN}"
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"].startswith("Alertmanager/")
    assert firing["version"] == "4"
    assert firing["status"] == "firing"
    assert firing["receiver"] == "webhook"
    assert firing["truncatedAlerts"] == 0
    assert firing["externalURL"] == am.url
    assert firing["commonLabels"] == labels
    (alert,) = firing["alerts"]
    assert alert["status"] == "firing"
    assert alert["labels"] == labels
    assert alert["annotations"]["summary"] == "disk full"
    assert re.fullmatch(r"[0-9a-f]{16}", alert["fingerprint"])
    assert alert["endsAt"] == "0001-01-01T00:00:00Z"  # firing alerts carry Go's zero time

    posted = time.monotonic()
    am.resolve(labels)
    resolved = wait_for(nth_request(webhook, 2), "resolved webhook")
    resolved_after = time.monotonic() - posted

    assert resolved["status"] == "resolved"
    (gone,) = resolved["alerts"]
    assert gone["status"] == "resolved"
    assert gone["fingerprint"] == alert["fingerprint"]
    assert gone["startsAt"] == alert["startsAt"]
    assert gone["annotations"] == alert["annotations"]  # re-posted by resolve()
    assert gone["generatorURL"] == alert["generatorURL"]
    assert gone["endsAt"] != "0001-01-01T00:00:00Z"
    assert resolved["groupKey"] == firing["groupKey"]
    assert bodies(pagerduty) == []  # not routed there
    print(f"\nwebhook firing after {fired_after:.2f} s, resolved after {resolved_after:.2f} s")
    print("WEBHOOK FIRING", json.dumps(firing, indent=2))
    print("WEBHOOK RESOLVED", json.dumps(resolved, indent=2))


def test_an_alert_labelled_for_pagerduty_reaches_the_custom_events_url(
    am: RunningAlertmanager, hooks: tuple[Receiver, Receiver]
) -> None:
    webhook, pagerduty = hooks
    labels = unique_labels(severity="critical", receiver="pagerduty")
    posted = time.monotonic()
    am.fire(labels, {"summary": "warehouse stale"})
    trigger = wait_for(nth_request(pagerduty, 1), "PagerDuty trigger")
    fired_after = time.monotonic() - posted

    with pagerduty.lock:
        headers = pagerduty.requests[0].headers
    assert "authorization" not in headers  # the routing key is in the body
    assert trigger["routing_key"] == ROUTING_KEY
    assert trigger["event_action"] == "trigger"
    assert re.fullmatch(r"[0-9a-f]{64}", trigger["dedup_key"])
    payload = trigger["payload"]
    assert payload["severity"] == "error"  # Alertmanager's default without `severity`
    assert payload["summary"].startswith("[FIRING:1] InterveneHarness")
    assert payload["custom_details"]["num_firing"] == "1"
    assert trigger["client_url"] == f"{am.url}/#/alerts?receiver=pagerduty"

    posted = time.monotonic()
    am.resolve(labels)
    resolve = wait_for(nth_request(pagerduty, 2), "PagerDuty resolve")
    resolved_after = time.monotonic() - posted

    assert resolve["event_action"] == "resolve"
    assert resolve["dedup_key"] == trigger["dedup_key"]
    assert resolve["routing_key"] == ROUTING_KEY
    assert bodies(webhook) == []
    print(f"\npagerduty trigger after {fired_after:.2f} s, resolve after {resolved_after:.2f} s")
    print("PAGERDUTY TRIGGER", json.dumps(trigger, indent=2))
    print("PAGERDUTY RESOLVE", json.dumps(resolve, indent=2))


def test_pagerduty_severity_description_and_details_are_templated(
    tmp_path: Path, hooks: tuple[Receiver, Receiver]
) -> None:
    _webhook, pagerduty = hooks
    with RunningAlertmanager(
        tmp_path,
        pagerduty_url=pagerduty.url,
        pagerduty_severity="{{ .CommonLabels.severity }}",
        pagerduty_description="{{ .CommonAnnotations.summary }}",
        pagerduty_details={"instance": "{{ .CommonLabels.instance }}"},
    ) as am:
        labels = unique_labels(severity="warning", receiver="pagerduty")
        am.fire(labels, {"summary": "queue backlog"})
        trigger = wait_for(nth_request(pagerduty, 1), "PagerDuty trigger")
    payload = trigger["payload"]
    assert payload["severity"] == "warning"
    assert payload["summary"] == "queue backlog"
    details = payload["custom_details"]  # merged into the defaults, not replacing them
    assert details["instance"] == labels["instance"]
    assert set(details) == {"instance", "firing", "resolved", "num_firing", "num_resolved"}


def test_a_failed_webhook_delivery_is_retried(
    am: RunningAlertmanager, hooks: tuple[Receiver, Receiver]
) -> None:
    webhook, _pagerduty = hooks
    webhook.answers = [503]
    posted = time.monotonic()
    am.fire(unique_labels())
    wait_for(nth_request(webhook, 2), "retried webhook")
    print(f"\nwebhook retried after a 503: second attempt {time.monotonic() - posted:.2f} s")
    first, second = bodies(webhook)
    assert first == second


def test_alerts_are_listed_by_the_api(am: RunningAlertmanager) -> None:
    labels = unique_labels()
    am.fire(labels)
    (held,) = wait_for(am.alerts, "alert in GET /api/v2/alerts", seconds=5)
    assert held["labels"] == labels
    assert held["status"]["state"] == "active"
    assert [r["name"] for r in held["receivers"]] == ["webhook"]


def test_stop_ends_the_process(tmp_path: Path) -> None:
    am = RunningAlertmanager(tmp_path).start()
    process = am.process
    assert process is not None
    assert process.poll() is None
    am.stop()
    assert process.poll() is not None
    am.stop()  # twice is harmless


def test_without_the_binary_it_skips_or_under_required_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(alertmanager_module, "BINARY", "")
    monkeypatch.setattr(alertmanager_module, "REQUIRED", False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install prometheus-alertmanager"):
        require_alertmanager()
    monkeypatch.setattr(alertmanager_module, "REQUIRED", True)
    with pytest.raises(pytest.fail.Exception, match="INTERVENE_TEST_ALERTMANAGER=required"):
        require_alertmanager()
