"""integrations/pagerduty.py: PagerDuty Events API v2 alert events into an `Alert`."""

import copy
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from integrations.pagerduty import (
    CUSTOM_DETAILS_MAX,
    DEDUP_KEY_MAX,
    PAGERDUTY_SUMMARY_MAX,
    InvalidEvent,
    parse_event,
    success_body,
)
from models.alert import LABEL_VALUE_MAX, SUMMARY_MAX, Signal, Source, incident_key
from models.enums import Severity

RECEIVED = datetime(2026, 12, 5, 19, 8, tzinfo=UTC)
KEY = "e93facc04764012d7bfb002500d5d1a6"  # 32 characters, as PagerDuty's integration keys

# PagerDuty's OpenAPI description of the Events API v2 (PagerDuty/api-schema,
# reference/events-v2/openapiv3.json), the example request of POST /enqueue.
DISK: dict[str, Any] = {
    "payload": {
        "summary": "DISK at 99% on machine prod-datapipe03.example.com",
        "timestamp": "2015-07-17T08:42:58.315+0000",
        "severity": "critical",
        "source": "prod-datapipe03.example.com",
        "component": "mysql",
        "group": "prod-datapipe",
        "class": "disk",
        "custom_details": {"free space": "1%", "ping time": "1500ms", "load avg": 0.75},
    },
    "routing_key": "e93facc04764012d7bfb002500d5d1a6",
    "dedup_key": "srv01/mysql",
    "event_action": "trigger",
    "client": "Sample Monitoring Service",
    "client_url": "https://monitoring.service.com",
    "links": [{"href": "http://pagerduty.example.com", "text": "An example link."}],
    "images": [
        {
            "src": "https://chart.googleapis.com/chart?chs=600x400&chd=t:6,2,9,5,2,5,7,4,8,2,1"
            "&cht=lc&chds=a&chxt=y&chm=D,0033FF,0,0,5,1",
            "href": "https://google.com",
            "alt": "An example link with an image",
        }
    ],
}

# PagerDuty's developer docs (PagerDuty/developer-docs, docs/events-API-v2/02-Trigger-Events.md),
# "Example Request Payloads": trigger, acknowledge and resolve (with placeholder routing keys).
DOCS_TRIGGER: dict[str, Any] = {
    "payload": {
        "summary": "Example alert on host1.example.com",
        "timestamp": "2015-07-17T08:42:58.315+0000",
        "source": "monitoringtool:cloudvendor:central-region-dc-01:852559987:cluster/"
        "api-stats-prod-003",
        "severity": "info",
        "component": "postgres",
        "group": "prod-datapipe",
        "class": "deploy",
        "custom_details": {"ping time": "1500ms", "load avg": 0.75},
    },
    "routing_key": "samplekeyhere",
    "dedup_key": "samplekeyhere",
    "images": [
        {
            "src": "https://www.pagerduty.com/wp-content/uploads/2016/05/pagerduty-logo-green.png",
            "href": "https://example.com/",
            "alt": "Example text",
        }
    ],
    "links": [{"href": "https://example.com/", "text": "Link text"}],
    "event_action": "trigger",
    "client": "Sample Monitoring Service",
    "client_url": "https://monitoring.example.com",
}
DOCS_ACKNOWLEDGE = {
    "routing_key": "routingkeyhere",
    "dedup_key": "dedupkeyhere",
    "event_action": "acknowledge",
}
DOCS_RESOLVE = {
    "routing_key": "routingkeyhere",
    "dedup_key": "dedupkeyhere",
    "event_action": "resolve",
}

# Captured from Debian's Alertmanager 0.25.0 (tests/alertmanager.py) paging through its
# pagerduty_configs (severity: critical): the trigger, then the resolve.
_AM_DEDUP = "d88da9003302afe4e053f398789ed24273e4ef99b1e2f7811c1d6f090aac5d02"
AM_TRIGGER: dict[str, Any] = {
    "routing_key": KEY,
    "dedup_key": _AM_DEDUP,
    "event_action": "trigger",
    "payload": {
        "summary": "[FIRING:1] PlannerDown pagerduty critical ",
        "source": "Alertmanager",
        "severity": "critical",
        "custom_details": {
            "firing": "Labels:\n - alertname = PlannerDown\n - receiver = pagerduty\n - severity = "
            "critical\nAnnotations:\n - summary = Planner is down\nSource: "
            "http://127.0.0.1/intervene-test\n",
            "num_firing": "1",
            "num_resolved": "0",
            "resolved": "",
        },
    },
    "client": "Alertmanager",
    "client_url": "http://vm:41541/#/alerts?receiver=pagerduty",
}
AM_RESOLVE: dict[str, Any] = {
    "routing_key": KEY,
    "dedup_key": _AM_DEDUP,
    "event_action": "resolve",
    "payload": {
        "summary": "[RESOLVED] PlannerDown pagerduty critical ",
        "source": "Alertmanager",
        "severity": "critical",
        "custom_details": {
            "firing": "",
            "num_firing": "0",
            "num_resolved": "1",
            "resolved": "Labels:\n - alertname = PlannerDown\n - receiver = pagerduty\n"
            " - severity = critical\nAnnotations:\nSource: \n",
        },
    },
    "client": "Alertmanager",
    "client_url": "http://vm:41541/#/alerts?receiver=pagerduty",
}


def parse(event: Any) -> Any:
    return parse_event(event, received_at=RECEIVED)


def errors(event: Any) -> list[str]:
    with pytest.raises(InvalidEvent) as raised:
        parse(event)
    assert raised.value.body == {
        "status": "invalid event",
        "message": "Event object is invalid",
        "errors": raised.value.errors,
    }
    return raised.value.errors


def trigger(**payload: Any) -> dict[str, Any]:
    """The OpenAPI example with these payload fields changed (None removes one)."""
    event = copy.deepcopy(DISK)
    event["payload"].update(payload)
    event["payload"] = {
        name: value for name, value in event["payload"].items() if value is not None
    }
    return event


# -- the documented and captured events --------------------------------------------------------


def test_the_openapi_example_trigger() -> None:
    event = parse(DISK)
    assert (event.routing_key, event.dedup_key) == (KEY, "srv01/mysql")
    alert = event.alert
    assert alert.source is Source.PAGERDUTY
    assert alert.key == "srv01/mysql"
    assert alert.signal is Signal.FIRING
    assert alert.summary == "DISK at 99% on machine prod-datapipe03.example.com"
    assert alert.severity is Severity.SEV1
    assert alert.at == datetime(2015, 7, 17, 8, 42, 58, 315000, tzinfo=UTC)
    assert alert.labels == {
        "source": "prod-datapipe03.example.com",
        "component": "mysql",
        "group": "prod-datapipe",
        "class": "disk",
        "severity": "critical",
    }
    assert alert.details == {
        "dedup_key": "srv01/mysql",
        "summary": DISK["payload"]["summary"],
        "source": "prod-datapipe03.example.com",
        "component": "mysql",
        "group": "prod-datapipe",
        "class": "disk",
        "custom_details": DISK["payload"]["custom_details"],
        "links": DISK["links"],
        "images": DISK["images"],
        "client": "Sample Monitoring Service",
        "client_url": "https://monitoring.service.com",
    }
    assert "e93facc0" not in repr(alert)  # the routing key is a secret: never in the alert


def test_the_docs_examples_are_taken_with_an_intervene_token_for_routing_key() -> None:
    """The routing key is an Intervene token (ivt_ and 43 characters), not PagerDuty's 32: the
    API decides whether it is known; the parser bounds its length only."""
    for example in (DOCS_TRIGGER, DOCS_ACKNOWLEDGE, DOCS_RESOLVE):
        assert parse(example).routing_key == example["routing_key"]
    assert errors({**DOCS_TRIGGER, "routing_key": "k" * 201}) == [
        "Length of 'routing_key' is incorrect (at most 200 characters)"
    ]
    event = parse({**DOCS_TRIGGER, "routing_key": KEY})
    assert event.alert.severity is Severity.SEV4
    assert event.alert.labels["source"].endswith(":cluster/api-stats-prod-003")


def test_acknowledge_and_resolve_need_only_their_dedup_key() -> None:
    acknowledged = parse({**DOCS_ACKNOWLEDGE, "routing_key": KEY})
    assert acknowledged.dedup_key == "dedupkeyhere"
    alert = acknowledged.alert
    assert (alert.key, alert.signal, alert.at) == ("dedupkeyhere", Signal.ACKNOWLEDGED, RECEIVED)
    assert alert.summary == "PagerDuty acknowledge: dedupkeyhere"
    assert alert.details == {"dedup_key": "dedupkeyhere"}
    assert alert.labels == {}
    assert alert.severity is None
    resolved = parse({**DOCS_RESOLVE, "routing_key": KEY, "payload": "ignored, as by PagerDuty"})
    assert resolved.alert.signal is Signal.RESOLVED
    assert resolved.alert.summary == "PagerDuty resolve: dedupkeyhere"


def test_alertmanagers_trigger_and_resolve_name_the_same_incident() -> None:
    fired, resolved = parse(AM_TRIGGER), parse(AM_RESOLVE)
    assert fired.alert.key == resolved.alert.key == _AM_DEDUP
    assert fired.alert.summary == "[FIRING:1] PlannerDown pagerduty critical"
    assert resolved.alert.summary == "[RESOLVED] PlannerDown pagerduty critical"  # its payload's
    assert fired.alert.at == resolved.alert.at == RECEIVED  # no timestamp: when it came
    assert fired.alert.details["custom_details"]["num_firing"] == "1"
    assert fired.alert.labels == {"source": "Alertmanager", "severity": "critical"}


def test_a_trigger_without_a_dedup_key_gets_a_new_one() -> None:
    first, second = parse({**DISK, "dedup_key": None}), parse({**DISK, "dedup_key": " "})
    assert first.dedup_key != second.dedup_key
    for event in (first, second):
        assert re.fullmatch("[0-9a-f]{32}", event.dedup_key)  # a uuid4's hex
        assert event.alert.key == event.dedup_key == event.alert.details["dedup_key"]
    assert success_body(first.dedup_key) == {
        "status": "success",
        "message": "Event processed",
        "dedup_key": first.dedup_key,
    }


def test_any_dedup_key_becomes_an_incident_key() -> None:
    odd = "host 1 / disk ✓ " + "x" * (DEDUP_KEY_MAX - 16)
    event = parse({**DISK, "dedup_key": odd})
    assert event.dedup_key == odd  # echoed as sent
    assert event.alert.key == incident_key(odd) != odd


def test_a_long_summary_is_shortened_and_kept_whole_in_the_details() -> None:
    text = "y" * PAGERDUTY_SUMMARY_MAX
    alert = parse(trigger(summary=text)).alert
    assert alert.summary == "y" * (SUMMARY_MAX - 1) + "…"  # SUMMARY_MAX characters
    assert alert.details["summary"] == text


def test_timestamps_are_read_in_utc() -> None:
    at = parse(trigger(timestamp="2026-12-05T20:00:00+01:00")).alert.at
    assert at == datetime(2026, 12, 5, 19, tzinfo=UTC)
    assert parse(trigger(timestamp="2026-12-05T19:00:00")).alert.at == at  # no offset: UTC


# -- refusals ----------------------------------------------------------------------------------

DEEP: Any = "bottom"
for _ in range(100_000):
    DEEP = [DEEP]

REFUSED = {
    "no routing key": ({**DISK, "routing_key": None}, "'routing_key' is missing or blank"),
    "a blank routing key": ({**DISK, "routing_key": " " * 32}, "'routing_key' is missing or blank"),
    "a number for a routing key": (
        {**DISK, "routing_key": 12345678901234567890123456789012},
        "'routing_key' is invalid (must be a string)",
    ),
    "a long routing key": (
        {**DISK, "routing_key": "k" * 201},
        "Length of 'routing_key' is incorrect (at most 200 characters)",
    ),
    "no action": ({**DISK, "event_action": None}, "'event_action' is missing or blank"),
    "an unknown action": (
        {**DISK, "event_action": "Trigger"},
        "'event_action' is invalid (must be one of the following: 'trigger', 'acknowledge' or "
        "'resolve')",
    ),
    "a list for an action": ({**DISK, "event_action": ["trigger"]}, "'event_action' is invalid"),
    "an acknowledge without a dedup key": (
        {"routing_key": KEY, "event_action": "acknowledge"},
        "'dedup_key' is missing or blank",
    ),
    "a resolve with a blank dedup key": (
        {**AM_RESOLVE, "dedup_key": ""},
        "'dedup_key' is missing or blank",
    ),
    "a number for a dedup key": (
        {**DISK, "dedup_key": 42},
        "'dedup_key' is invalid (must be a string)",
    ),
    "a long dedup key": (
        {**DISK, "dedup_key": "k" * (DEDUP_KEY_MAX + 1)},
        f"'dedup_key' is too long (at most {DEDUP_KEY_MAX} characters)",
    ),
    "no payload": ({**DISK, "payload": None}, "'payload' is missing or blank"),
    "a payload not an object": (
        {**DISK, "payload": "disk"},
        "'payload' is invalid (must be an object)",
    ),
    "no summary": (trigger(summary=None), "'payload.summary' is missing or blank"),
    "a blank summary": (trigger(summary="\n "), "'payload.summary' is missing or blank"),
    "a summary not a string": (
        trigger(summary=["a"]),
        "'payload.summary' is invalid (must be a string)",
    ),
    "a summary over PagerDuty's limit": (
        trigger(summary="y" * (PAGERDUTY_SUMMARY_MAX + 1)),
        f"'payload.summary' is too long (at most {PAGERDUTY_SUMMARY_MAX} characters)",
    ),
    "no source": (trigger(source=None), "'payload.source' is missing or blank"),
    "no severity": (trigger(severity=None), "'payload.severity' is missing or blank"),
    "a capitalised severity": (
        trigger(severity="Critical"),
        "'payload.severity' is invalid (must be one of the following: 'critical', 'warning', "
        "'error' or 'info')",
    ),
    "a number for a severity": (trigger(severity=1), "'payload.severity' is invalid"),
    "an unreadable timestamp": (
        trigger(timestamp="17/07/2015"),
        "'payload.timestamp' is invalid (must be an ISO 8601 date-time)",
    ),
    "a number for a timestamp": (
        trigger(timestamp=1437122578),
        "'payload.timestamp' is invalid (must be a string)",
    ),
    "a long component": (
        trigger(component="c" * (LABEL_VALUE_MAX + 1)),
        f"'payload.component' is too long (at most {LABEL_VALUE_MAX} characters)",
    ),
    "a group not a string": (trigger(group=7), "'payload.group' is invalid (must be a string)"),
    "a NUL in the class": (
        trigger(**{"class": "disk\x00"}),
        "'payload.class' holds a NUL character",
    ),
    "large custom details": (
        trigger(custom_details={"log": "z" * CUSTOM_DETAILS_MAX}),
        f"'payload.custom_details' is too large ({CUSTOM_DETAILS_MAX + 10} bytes of JSON, at most "
        f"{CUSTOM_DETAILS_MAX})",
    ),
    "a NUL in the custom details": (
        trigger(custom_details={"a": ["b\x00"]}),
        "'payload.custom_details' holds a NUL character",
    ),
    "half a surrogate pair in the custom details": (
        trigger(custom_details={"\udc80": 1}),
        "'payload.custom_details' holds a lone surrogate (half of a \\uXXXX pair)",
    ),
    "Infinity in the custom details": (
        trigger(custom_details={"load": float("inf")}),
        "'payload.custom_details' holds NaN or Infinity, which JSON cannot carry",
    ),
    "deeply nested custom details": (
        trigger(custom_details=DEEP),
        "'payload.custom_details' is nested too deeply",
    ),
    "links not an array": (
        {**DISK, "links": {"href": "x"}},
        "'links' is invalid (must be an array)",
    ),
    "a link not an object": (
        {**DISK, "links": ["https://x"]},
        "'links[0]' is invalid (must be an object)",
    ),
    "a link without href": (
        {**DISK, "links": [{"href": "https://a"}, {"text": "t"}]},
        "'links[1].href' is missing or blank",
    ),
    "an image without src": (
        {**DISK, "images": [{"alt": "a"}]},
        "'images[0].src' is missing or blank",
    ),
    "an image alt not a string": (
        {**DISK, "images": [{"src": "https://i", "alt": 1}]},
        "'images[0].alt' is invalid (must be a string)",
    ),
    "a client not a string": (
        {**DISK, "client": {"name": "x"}},
        "'client' is invalid (must be a string)",
    ),
    "a NUL in the client URL": (
        {**DISK, "client_url": "https://\x00"},
        "'client_url' holds a NUL character",
    ),
}


@pytest.mark.parametrize(("event", "error"), REFUSED.values(), ids=REFUSED.keys())
def test_refused_events(event: dict[str, Any], error: str) -> None:
    found = errors(event)
    assert len(found) == 1, found
    assert found[0].startswith(error)


def test_every_problem_is_listed() -> None:
    assert errors({"event_action": "trigger", "payload": {"severity": "fatal"}}) == [
        "'routing_key' is missing or blank",
        "'payload.summary' is missing or blank",
        "'payload.severity' is invalid (must be one of the following: 'critical', 'warning', "
        "'error' or 'info')",
        "'payload.source' is missing or blank",
    ]
    assert errors({}) == ["'routing_key' is missing or blank", "'event_action' is missing or blank"]


@pytest.mark.parametrize("event", [None, [], "trigger", 1])
def test_an_event_that_is_not_an_object(event: Any) -> None:
    with pytest.raises(InvalidEvent) as raised:
        parse(event)
    assert raised.value.body == {
        "status": "Unrecognized object",
        "message": "Event object format is unrecognized",
        "errors": ["Event must be a JSON object"],
    }
