"""integrations/alertmanager.py: Alertmanager's and Grafana's webhook payloads into `Alert`s."""

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from integrations.alertmanager import ALERTS_MAX, PLAYBOOKS_MAX, PayloadError, parse_webhook
from models.alert import LABELS_MAX, SUMMARY_MAX, Refusal, Signal, Source, incident_key
from models.enums import Severity

RECEIVED = datetime(2026, 12, 5, 19, 8, tzinfo=UTC)

# The shape is in Alertmanager's docs (prometheus/alertmanager docs/configuration.md,
# <webhook_config>); this one is the sample of the alertmanager-webhook-types crate
# (https://docs.rs/crate/alertmanager-webhook-types/latest/source/assets/sample-v4-payload.json).
PROBE_FAILURE: dict[str, Any] = {
    "receiver": "sms",
    "status": "firing",
    "alerts": [
        {
            "status": "firing",
            "labels": {
                "alertname": "ProbeFailure",
                "instance": "https://server.example.org",
                "job": "http_checks",
                "monitor": "master",
                "severity": "critical",
            },
            "annotations": {
                "description": "Instance https://server.example.org has been down for over 5m. "
                "Job: http_checks",
                "summary": "BlackBox Probe Failure: https://server.example.org",
            },
            "startsAt": "2023-02-06T13:08:45.828Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.example.org:9090/graph"
            "?g0.expr=probe_success+%3D%3D+0\\u0026g0.tab=1",
            "fingerprint": "1a30ba71cca2921f",
        }
    ],
    "groupLabels": {"alertname": "ProbeFailure"},
    "commonLabels": {
        "alertname": "ProbeFailure",
        "instance": "https://server.example.org",
        "job": "http_checks",
        "monitor": "master",
        "severity": "critical",
    },
    "commonAnnotations": {
        "description": "Instance https://server.example.org has been down for over 5m. "
        "Job: http_checks",
        "summary": "BlackBox Probe Failure: https://server.example.org",
    },
    "externalURL": "http://prometheus.example.org:9093",
    "version": "4",
    "groupKey": '{}/{severity="critical"}:{alertname="ProbeFailure"}',
    "truncatedAlerts": 0,
}

# Captured from Debian's Alertmanager 0.25.0 (driven by tests/alertmanager.py): one alert fired,
# then resolved. The resolve carries no annotations, as when the rule's annotations changed.
_GROUP_KEY = '{}:{alertname="DiskFull", instance="db-1:9100", severity="critical"}'
_DISK_LABELS = {"alertname": "DiskFull", "instance": "db-1:9100", "severity": "critical"}
DISK_FULL_FIRING: dict[str, Any] = {
    "receiver": "webhook",
    "status": "firing",
    "alerts": [
        {
            "status": "firing",
            "labels": _DISK_LABELS,
            "annotations": {
                "playbooks": "clear_cache, rerun_dbt",
                "summary": "Disk on db-1 is 97% full",
            },
            "startsAt": "2026-12-05T19:07:30.248Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://127.0.0.1/intervene-test",
            "fingerprint": "bafaf1f2a64a6f67",
        }
    ],
    "groupLabels": _DISK_LABELS,
    "commonLabels": _DISK_LABELS,
    "commonAnnotations": {
        "playbooks": "clear_cache, rerun_dbt",
        "summary": "Disk on db-1 is 97% full",
    },
    "externalURL": "http://vm:41541",
    "version": "4",
    "groupKey": _GROUP_KEY,
    "truncatedAlerts": 0,
}
DISK_FULL_RESOLVED: dict[str, Any] = {
    "receiver": "webhook",
    "status": "resolved",
    "alerts": [
        {
            "status": "resolved",
            "labels": _DISK_LABELS,
            "annotations": {},
            "startsAt": "2026-12-05T19:07:30.248Z",
            "endsAt": "2026-12-05T19:07:34.296Z",
            "generatorURL": "",
            "fingerprint": "bafaf1f2a64a6f67",
        }
    ],
    "groupLabels": _DISK_LABELS,
    "commonLabels": _DISK_LABELS,
    "commonAnnotations": {},
    "externalURL": "http://vm:41541",
    "version": "4",
    "groupKey": _GROUP_KEY,
    "truncatedAlerts": 0,
}


# Grafana's docs, verbatim: grafana/grafana docs/sources/alerting/configure-notifications/
# manage-contact-points/integrations/webhook-notifier.md ("Webhook JSON payload").
GRAFANA: dict[str, Any] = {
    "receiver": "My Super Webhook",
    "status": "firing",
    "orgId": 1,
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "High memory usage", "team": "blue", "zone": "us-1"},
            "annotations": {
                "description": "The system has high memory usage",
                "runbook_url": "https://myrunbook.com/runbook/1234",
                "summary": "This alert was triggered for zone us-1",
            },
            "startsAt": "2021-10-12T09:51:03.157076+02:00",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "https://play.grafana.org/alerting/1afz29v7z/edit",
            "fingerprint": "c6eadffa33fcdf37",
            "silenceURL": "https://play.grafana.org/alerting/silence/new?alertmanager=grafana"
            "&matchers=alertname%3DT2%2Cteam%3Dblue%2Czone%3Dus-1",
            "dashboardURL": "",
            "panelURL": "",
            "values": {"B": 44.23943737541908, "C": 1},
        },
        {
            "status": "firing",
            "labels": {"alertname": "High CPU usage", "team": "blue", "zone": "eu-1"},
            "annotations": {
                "description": "The system has high CPU usage",
                "runbook_url": "https://myrunbook.com/runbook/1234",
                "summary": "This alert was triggered for zone eu-1",
            },
            "startsAt": "2021-10-12T09:56:03.157076+02:00",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "https://play.grafana.org/alerting/d1rdpdv7k/edit",
            "fingerprint": "bc97ff14869b13e3",
            "silenceURL": "https://play.grafana.org/alerting/silence/new?alertmanager=grafana"
            "&matchers=alertname%3DT1%2Cteam%3Dblue%2Czone%3Deu-1",
            "dashboardURL": "",
            "panelURL": "",
            "values": {"B": 44.23943737541908, "C": 1},
        },
    ],
    "groupLabels": {},
    "commonLabels": {"team": "blue"},
    "commonAnnotations": {},
    "externalURL": "https://play.grafana.org/",
    "version": "1",
    "groupKey": "{}:{}",
    "truncatedAlerts": 0,
    "title": "[FIRING:2]  (blue)",
    "state": "alerting",
    "message": "**Firing**\n\nLabels:\n - alertname = T2\n - team = blue\n - zone = us-1\n"
    "Annotations:\n - description = This is the alert rule checking the second system\n"
    " - runbook_url = https://myrunbook.com\n - summary = This is my summary\n"
    "Source: https://play.grafana.org/alerting/1afz29v7z/edit\n"
    "Silence: https://play.grafana.org/alerting/silence/new?alertmanager=grafana"
    "&matchers=alertname%3DT2%2Cteam%3Dblue%2Czone%3Dus-1\n\n"
    "Labels:\n - alertname = T1\n - team = blue\n - zone = eu-1\nAnnotations:\n"
    "Source: https://play.grafana.org/alerting/d1rdpdv7k/edit\n"
    "Silence: https://play.grafana.org/alerting/silence/new?alertmanager=grafana"
    "&matchers=alertname%3DT1%2Cteam%3Dblue%2Czone%3Deu-1\n",
}


def parse(payload: Any) -> Any:
    return parse_webhook(payload, received_at=RECEIVED)


def one(alert: dict[str, Any], **payload: Any) -> Any:
    """The parse of a payload of this one alert (Alertmanager's, version 4)."""
    return parse({"version": "4", "alerts": [alert], **payload})


def firing(**changes: Any) -> dict[str, Any]:
    alert = copy.deepcopy(DISK_FULL_FIRING["alerts"][0])
    alert.update(changes)
    return alert


# -- the documented and captured payloads ------------------------------------------------------


def test_the_docs_sample_is_one_firing_alert() -> None:
    parsed = parse(PROBE_FAILURE)
    assert parsed.source is Source.ALERTMANAGER
    assert parsed.refused == []
    assert parsed.truncated == 0
    [alert] = parsed.alerts
    assert alert.key == "ProbeFailure:1a30ba71cca2921f"
    assert alert.signal is Signal.FIRING
    assert alert.summary == "BlackBox Probe Failure: https://server.example.org"
    assert alert.severity is Severity.SEV1
    assert alert.at == datetime(2023, 2, 6, 13, 8, 45, 828000, tzinfo=UTC)
    assert alert.labels == PROBE_FAILURE["alerts"][0]["labels"]
    assert alert.playbooks == ()
    assert alert.details == {
        "labels": PROBE_FAILURE["alerts"][0]["labels"],
        "annotations": PROBE_FAILURE["alerts"][0]["annotations"],
        "generator_url": PROBE_FAILURE["alerts"][0]["generatorURL"],
        "fingerprint": "1a30ba71cca2921f",
        "group_key": '{}/{severity="critical"}:{alertname="ProbeFailure"}',
        "starts_at": "2023-02-06T13:08:45.828000+00:00",
        "ends_at": None,  # Go's zero time: not set
    }


def test_a_captured_fire_and_resolve_name_the_same_incident() -> None:
    [fired] = parse(DISK_FULL_FIRING).alerts
    [resolved] = parse(DISK_FULL_RESOLVED).alerts
    assert fired.key == resolved.key == "DiskFull:bafaf1f2a64a6f67"
    assert fired.signal is Signal.FIRING
    assert resolved.signal is Signal.RESOLVED
    assert fired.at == datetime(2026, 12, 5, 19, 7, 30, 248000, tzinfo=UTC)  # startsAt
    assert resolved.at == datetime(2026, 12, 5, 19, 7, 34, 296000, tzinfo=UTC)  # endsAt
    assert fired.playbooks == ("clear_cache", "rerun_dbt")
    assert fired.summary == "Disk on db-1 is 97% full"
    assert resolved.summary == "DiskFull"  # no annotations: the alert's name
    assert resolved.details["generator_url"] is None  # "" is no URL
    assert resolved.details["ends_at"] == "2026-12-05T19:07:34.296000+00:00"


def test_grafanas_documented_payload() -> None:
    parsed = parse(GRAFANA)
    assert parsed.source is Source.GRAFANA
    assert parsed.refused == []
    memory, cpu = parsed.alerts
    assert memory.key == incident_key("High memory usage:c6eadffa33fcdf37")
    assert cpu.key == incident_key("High CPU usage:bc97ff14869b13e3") != memory.key
    assert memory.summary == "This alert was triggered for zone us-1"
    assert memory.severity is None  # no severity label: the caller's default
    assert memory.at == datetime(2021, 10, 12, 7, 51, 3, 157076, tzinfo=UTC)  # +02:00 -> UTC
    assert memory.details["values"] == {"B": 44.23943737541908, "C": 1}
    assert memory.details["silence_url"].startswith("https://play.grafana.org/alerting/silence/")
    assert "dashboard_url" not in memory.details  # ""
    assert "panel_url" not in memory.details
    assert memory.details["group_key"] == "{}:{}"


def test_grafana_9s_value_string() -> None:
    """Grafana 9's docs (same page, v9.x) send `valueString` where 10 sends `values`."""
    alert = copy.deepcopy(GRAFANA["alerts"][0])
    del alert["values"]
    alert["valueString"] = "[ metric='' labels={} value=14151.331895396988 ]"
    alert["imageURL"] = "https://grafana.example/public/img/attachments/abc.png"
    parsed = parse({"version": "1", "alerts": [alert]})  # only the alert tells it is Grafana's
    assert parsed.source is Source.GRAFANA
    details = parsed.alerts[0].details
    assert details["value_string"] == alert["valueString"]
    assert details["image_url"] == alert["imageURL"]
    assert "values" not in details


# -- how an alert is read ----------------------------------------------------------------------


def test_a_dedup_key_label_names_the_incident() -> None:
    labels = {**_DISK_LABELS, "dedup_key": "disk/db-1"}
    [alert] = one(firing(labels=labels)).alerts
    assert alert.key == "disk/db-1"
    [alert] = one(firing(labels={**_DISK_LABELS, "dedup_key": "not a key!"})).alerts
    assert alert.key == incident_key("not a key!")


def test_without_a_fingerprint_one_is_made_from_the_labels() -> None:
    def key(labels: dict[str, str]) -> str:
        [alert] = one(firing(labels=labels, fingerprint=None)).alerts
        assert alert.details["fingerprint"]
        return str(alert.key)

    same = key(dict(reversed(list(_DISK_LABELS.items()))))
    assert key(_DISK_LABELS) == same
    assert same.startswith("DiskFull:")
    assert len(same) == len("DiskFull:") + 16
    assert key({**_DISK_LABELS, "instance": "db-2:9100"}) != same
    assert key({"zone": "eu-1"}).startswith("alert:")  # no alertname (the summary names it)


def test_the_summary_is_the_summary_then_the_description_then_the_name() -> None:
    described = firing(annotations={"description": "  Disk almost full\n"})
    assert one(described).alerts[0].summary == "Disk almost full"
    blank = firing(annotations={"summary": " ", "description": ""})
    assert one(blank).alerts[0].summary == "DiskFull"
    at_most = firing(annotations={"summary": "x" * SUMMARY_MAX})
    assert one(at_most).alerts[0].summary == "x" * SUMMARY_MAX


@pytest.mark.parametrize(
    ("word", "severity"),
    [
        ("critical", Severity.SEV1),
        ("warning", Severity.SEV3),
        ("sev2", Severity.SEV2),
        ("page", None),
        ("", None),
    ],
)
def test_the_severity_label(word: str, severity: Severity | None) -> None:
    assert one(firing(labels={**_DISK_LABELS, "severity": word})).alerts[0].severity is severity


def test_missing_and_zero_times_are_when_it_was_received() -> None:
    no_start = firing(startsAt=None)
    assert one(no_start).alerts[0].at == RECEIVED
    zero_end = firing(status="resolved", endsAt="0001-01-01T00:00:00Z")
    assert one(zero_end).alerts[0].at == RECEIVED
    nanoseconds = firing(startsAt="2018-08-03T09:52:26.739266876+02:00")
    assert one(nanoseconds).alerts[0].at == datetime(2018, 8, 3, 7, 52, 26, 739266, tzinfo=UTC)


def test_playbooks_are_split_on_commas_and_spaces() -> None:
    text = "rerun_dbt,clear_cache  retry_flow_run\n,rerun_dbt"
    alert = one(firing(annotations={"summary": "s", "playbooks": text})).alerts[0]
    assert alert.playbooks == ("rerun_dbt", "clear_cache", "retry_flow_run")
    many = " ".join(f"p{n}" for n in range(PLAYBOOKS_MAX))
    assert len(one(firing(annotations={"playbooks": many})).alerts[0].playbooks) == PLAYBOOKS_MAX


def test_one_bad_alert_does_not_stop_the_others() -> None:
    payload = copy.deepcopy(GRAFANA)
    payload["alerts"].insert(1, {"status": "pending", "labels": {"alertname": "x"}})
    parsed = parse(payload)
    assert [alert.summary[-4:] for alert in parsed.alerts] == ["us-1", "eu-1"]
    assert parsed.refused == [
        Refusal(1, "alerts[1].status", "must be 'firing' or 'resolved', not 'pending'")
    ]


def test_truncated_alerts_are_counted() -> None:
    assert parse({**DISK_FULL_FIRING, "truncatedAlerts": 3}).truncated == 3
    assert parse({**DISK_FULL_FIRING, "truncatedAlerts": True}).truncated == 0
    assert parse({**DISK_FULL_FIRING, "truncatedAlerts": -1}).truncated == 0


def test_versions() -> None:
    without = {key: value for key, value in DISK_FULL_FIRING.items() if key != "version"}
    assert parse(without).source is Source.ALERTMANAGER
    assert parse({"alerts": []}).alerts == []
    assert parse({"version": "4", "alerts": [{}] * ALERTS_MAX}).refused[-1].index == ALERTS_MAX - 1


# -- refusals ----------------------------------------------------------------------------------

SURROGATE = "\ud800"  # what json.loads makes of "\ud800": not encodable, not storable

REFUSED = {
    "not an object": (["DiskFull"], "alerts[0]", "must be a JSON object"),
    "no status": (firing(status=None), "alerts[0].status", "not None"),
    "an unknown status": (firing(status="pending"), "alerts[0].status", "'firing' or 'resolved'"),
    "labels not an object": (firing(labels=["a"]), "alerts[0].labels", "mapping names to strings"),
    "too many labels": (
        firing(labels={f"l{n}": "v" for n in range(LABELS_MAX + 1)}),
        "alerts[0].labels",
        f"at most {LABELS_MAX} are accepted",
    ),
    "a label not a string": (
        firing(labels={"alertname": "a", "port": 9100}),
        "alerts[0].labels",
        "'port' must map",
    ),
    "a NUL annotation": (
        firing(annotations={"summary": "a\x00b"}),
        "alerts[0].annotations",
        "NUL",
    ),
    "annotations not an object": (
        firing(annotations="summary"),
        "alerts[0].annotations",
        "mapping names to strings",
    ),
    "nothing names it": (
        firing(labels={"zone": "eu-1"}, annotations={"runbook_url": "https://r"}),
        "alerts[0].labels.alertname",
        "no alertname label and no summary or description annotation",
    ),
    "a long summary": (
        firing(annotations={"summary": "x" * (SUMMARY_MAX + 1)}),
        "alerts[0].annotations.summary",
        f"{SUMMARY_MAX + 1} characters, at most {SUMMARY_MAX}",
    ),
    "a long name": (
        firing(labels={"alertname": "x" * 600}, annotations={}),
        "alerts[0].labels.alertname",
        f"at most {SUMMARY_MAX}",
    ),
    "a fingerprint not a string": (
        firing(fingerprint=1234),
        "alerts[0].fingerprint",
        "must be a string, not int",
    ),
    "an unreadable startsAt": (
        firing(startsAt="yesterday"),
        "alerts[0].startsAt",
        "'yesterday' is not an RFC 3339 time",
    ),
    "an endsAt not a string": (firing(endsAt=1700000000), "alerts[0].endsAt", "must be a string"),
    "a NUL in the URL": (firing(generatorURL="http://a\x00"), "alerts[0]", "NUL character"),
    "half a surrogate pair": (
        firing(generatorURL=f"http://a/{SURROGATE}"),
        "alerts[0]",
        "lone surrogate",
    ),
    "a bad playbook name": (
        firing(annotations={"summary": "s", "playbooks": "rerun_dbt; rm -rf"}),
        "alerts[0].annotations.playbooks",
        "'rerun_dbt;' is not a playbook name",
    ),
    "too many playbooks": (
        firing(annotations={"playbooks": ",".join(f"p{n}" for n in range(PLAYBOOKS_MAX + 1))}),
        "alerts[0].annotations.playbooks",
        f"{PLAYBOOKS_MAX + 1} playbooks, at most {PLAYBOOKS_MAX}",
    ),
    "values not an object": (firing(values=[1, 2]), "alerts[0].values", "mapping names to numbers"),
    "values not numbers": (
        firing(values={"B": "44"}),
        "alerts[0].values",
        "mapping names to numbers",
    ),
    "a NaN value": (firing(values={"B": float("nan")}), "alerts[0]", "NaN or Infinity"),
    "a silenceURL not a string": (
        firing(silenceURL={"href": "x"}),
        "alerts[0].silenceURL",
        "must be a string, not dict",
    ),
}


@pytest.mark.parametrize(("alert", "field", "message"), REFUSED.values(), ids=REFUSED.keys())
def test_refused_alerts(alert: Any, field: str, message: str) -> None:
    alerts = alert if isinstance(alert, list) else [alert]
    parsed = parse({"alerts": [*alerts, firing()]})
    [refusal] = parsed.refused
    assert (refusal.index, refusal.field) == (0, field)
    assert message in refusal.message
    assert len(parsed.alerts) == 1  # the good one after it is taken


@pytest.mark.parametrize(("alert", "field", "message"), REFUSED.values(), ids=REFUSED.keys())
def test_refused_alerts_read_with_their_json_text(alert: Any, field: str, message: str) -> None:
    """The endpoint passes the request's text along (a text with no escape, NaN or Infinity
    skips the check for what PostgreSQL cannot store): the same refusals either way."""
    alerts = alert if isinstance(alert, list) else [alert]
    payload = {"alerts": [*alerts, firing()]}
    for text in (json.dumps(payload).encode(), json.dumps(payload).encode("utf-16")):
        parsed = parse_webhook(payload, received_at=RECEIVED, text=text)
        assert parsed == parse(payload)
        [refusal] = parsed.refused
        assert (refusal.index, refusal.field) == (0, field)
        assert message in refusal.message


def test_a_plain_text_reads_the_same_as_without_it() -> None:
    payload = {"version": "4", "alerts": [firing(), firing(labels={"alertname": "Other"})]}
    text = json.dumps(payload).encode()
    assert parse_webhook(payload, received_at=RECEIVED, text=text) == parse(payload)


REFUSED_PAYLOADS = {
    "a list": ([DISK_FULL_FIRING], "body", "must be a JSON object"),
    "nothing": (None, "body", "must be a JSON object"),
    "no alerts": ({"version": "4"}, "alerts", "list of alerts"),
    "alerts not a list": ({"alerts": {"0": {}}}, "alerts", "list of alerts"),
    "too many alerts": (
        {"alerts": [{}] * (ALERTS_MAX + 1)},
        "alerts",
        f"at most {ALERTS_MAX} are accepted",
    ),
    "an unknown version": ({**DISK_FULL_FIRING, "version": "3"}, "version", "'3' is not supported"),
    "a number for a version": ({**DISK_FULL_FIRING, "version": 4}, "version", "4 is not supported"),
    "Grafana's version from Alertmanager": (
        {**DISK_FULL_FIRING, "version": "1"},
        "version",
        "'1' is not supported",
    ),
    "Alertmanager's version from Grafana": (
        {**GRAFANA, "version": "4"},
        "version",
        "Alertmanager sends '4' and Grafana '1'",
    ),
    "a NUL in the group key": ({**DISK_FULL_FIRING, "groupKey": "{}\x00"}, "groupKey", "NUL"),
}


@pytest.mark.parametrize(
    ("payload", "field", "message"), REFUSED_PAYLOADS.values(), ids=REFUSED_PAYLOADS.keys()
)
def test_refused_payloads(payload: Any, field: str, message: str) -> None:
    with pytest.raises(PayloadError) as raised:
        parse(payload)
    assert raised.value.field == field
    assert message in raised.value.message
    assert str(raised.value).startswith(f"{field}: ")


def test_a_long_description_is_shortened_into_the_summary() -> None:
    """Prometheus rules often carry long descriptions of many lines: the summary is its start,
    and the whole of it stays in the details."""
    text = "line one\n" + "x" * 2000
    parsed = parse_webhook(
        {"version": "4", "alerts": [firing(annotations={"description": text})]},
        received_at=RECEIVED,
    )
    [alert] = parsed.alerts
    assert len(alert.summary) == SUMMARY_MAX
    assert alert.summary.startswith("line one xxx")
    assert alert.summary.endswith("\u2026")
    assert alert.details["annotations"]["description"] == text
