"""Alertmanager's and Grafana's webhook payloads, read into `Alert`s.

Alertmanager (and Mimir, Cortex and Thanos, which post the same) sends version "4" of its webhook
payload; Grafana's webhook contact point sends the same shape as version "1", with additions:
`orgId`, `state`, `title` and `message` on the payload, and `values`, `valueString`,
`silenceURL`, `dashboardURL`, `panelURL` and `imageURL` on each alert. Any of those makes the
payload Grafana's. A payload without `version` is read as Alertmanager's: hand-written ones
(curl, tests, small forwarders) often leave it out, and the shape is checked anyway.

What cannot be read as a whole (not an object, no `alerts` list, too many alerts, a version we
do not know) raises `PayloadError` and nothing is taken. An alert that cannot be read is refused
on its own (`Parsed.refused`, with the field at fault) and the others are taken.
"""

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from models.alert import (
    SUMMARY_MAX,
    Alert,
    Refusal,
    Signal,
    Source,
    incident_key,
    json_problem,
    label_problem,
    severity_of,
    shorten,
)

ALERTS_MAX = 1000
PLAYBOOKS_MAX = 20
VERSIONS = {Source.ALERTMANAGER: "4", Source.GRAFANA: "1"}
_PLAYBOOK = re.compile(r"\w+", re.ASCII)
_PLAYBOOK_SEPARATORS = re.compile(r"[\s,]+")
GRAFANA_PAYLOAD_FIELDS = frozenset({"orgId", "state", "title", "message"})
# Grafana's per-alert strings and the details key each is kept under
GRAFANA_ALERT_TEXTS = {
    "valueString": "value_string",
    "silenceURL": "silence_url",
    "dashboardURL": "dashboard_url",
    "panelURL": "panel_url",
    "imageURL": "image_url",
}
GRAFANA_ALERT_FIELDS = frozenset({"values", *GRAFANA_ALERT_TEXTS})


class PayloadError(ValueError):
    """The whole payload is refused: `field` is where (`alerts`, `version`, `body`)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Parsed:
    source: Source
    alerts: list[Alert]
    refused: list[Refusal]
    truncated: int = 0  # alerts the sender left out (`max_alerts` of Alertmanager's webhook)


class _Refused(PayloadError):
    """One alert is refused, not the payload."""


def parse_webhook(payload: Any, *, received_at: datetime, text: bytes | None = None) -> Parsed:
    """The alerts of one webhook request; `received_at` stands in for a time the sender left
    out (or sent as Go's zero time). `text`: the JSON the payload was read from, if at hand."""
    if not isinstance(payload, dict):
        raise PayloadError("body", "the payload must be a JSON object")
    alerts = payload.get("alerts")
    if not isinstance(alerts, list):
        raise PayloadError("alerts", "the payload must hold a list of alerts under `alerts`")
    if len(alerts) > ALERTS_MAX:
        raise PayloadError("alerts", f"{len(alerts)} alerts, at most {ALERTS_MAX} are accepted")
    source = Source.GRAFANA if _is_grafana(payload, alerts) else Source.ALERTMANAGER
    version = payload.get("version")
    if version is not None and version != VERSIONS[source]:
        raise PayloadError(
            "version",
            f"version {version!r} is not supported: Alertmanager sends '4' and Grafana '1'",
        )
    group_key = payload.get("groupKey")
    if not isinstance(group_key, str):
        group_key = None
    elif problem := json_problem(group_key):
        raise PayloadError("groupKey", problem)
    received = _utc(received_at)
    taken: list[Alert] = []
    refused: list[Refusal] = []
    # one check for all, the usual case (see _alert): UTF-8 JSON text without an escape or a
    # NaN or Infinity cannot carry a NUL, a lone surrogate or a NaN, so it needs no pass at all
    clean = (text is not None and _plain(text)) or json_problem(alerts) is None
    for index, raw in enumerate(alerts):
        try:
            taken.append(_alert(raw, f"alerts[{index}]", source, group_key, received, clean))
        except _Refused as refusal:
            refused.append(Refusal(index, refusal.field, refusal.message))
    truncated = payload.get("truncatedAlerts")
    count = truncated if isinstance(truncated, int) and not isinstance(truncated, bool) else 0
    return Parsed(source=source, alerts=taken, refused=refused, truncated=max(count, 0))


def _plain(text: bytes) -> bool:
    """No escape, NaN or Infinity in JSON text read as UTF-8 (no NUL byte: json.loads reads
    UTF-16 and UTF-32 too, whose ASCII carries NULs; UTF-8 carries a surrogate only escaped)."""
    return not any(part in text for part in (b"\\u", b"NaN", b"Infinity", b"\x00"))


def _is_grafana(payload: dict[str, Any], alerts: list[Any]) -> bool:
    return not GRAFANA_PAYLOAD_FIELDS.isdisjoint(payload) or any(
        isinstance(alert, dict) and not GRAFANA_ALERT_FIELDS.isdisjoint(alert) for alert in alerts
    )


def _alert(
    raw: Any,
    where: str,
    source: Source,
    group_key: str | None,
    received_at: datetime,
    clean: bool = False,
) -> Alert:
    """`clean`: the payload's alerts hold nothing JSON or PostgreSQL refuses."""
    if not isinstance(raw, dict):
        raise _Refused(where, "an alert must be a JSON object")
    status = raw.get("status")
    if status not in ("firing", "resolved"):
        raise _Refused(f"{where}.status", f"must be 'firing' or 'resolved', not {status!r}")
    signal = Signal(status)
    # One pass of the JSON encoder over the whole alert: when it finds nothing to refuse, no
    # part of it (labels, annotations, details) has anything either, and each part's own
    # pass is skipped; otherwise every part is checked as it comes, to name the first fault.
    clean = clean or json_problem(raw) is None
    labels = _strings(raw, "labels", where, clean)
    annotations = _strings(raw, "annotations", where, clean)
    alertname = labels.get("alertname", "").strip()
    summary = _summary(labels, annotations, where)
    fingerprint = _text(raw, "fingerprint", where) or _fingerprint(labels)
    dedup_key = labels.get("dedup_key", "")
    key = incident_key(dedup_key if dedup_key.strip() else f"{alertname or 'alert'}:{fingerprint}")
    starts_at, starts_text = _time(raw, "startsAt", where)
    ends_at, ends_text = _time(raw, "endsAt", where)
    details: dict[str, Any] = {
        "labels": dict(labels),
        "annotations": annotations,
        "generator_url": _text(raw, "generatorURL", where),
        "fingerprint": fingerprint,
        "group_key": group_key,
        "starts_at": starts_text,
        "ends_at": ends_text,
    }
    if not GRAFANA_ALERT_FIELDS.isdisjoint(raw):
        for name, detail in GRAFANA_ALERT_TEXTS.items():
            if value := _text(raw, name, where):
                details[detail] = value
        values = raw.get("values")
        if values is not None:
            if not isinstance(values, dict) or not all(_number(v) for v in values.values()):
                raise _Refused(f"{where}.values", "must be an object mapping names to numbers")
            details["values"] = values
    if not clean and (problem := json_problem(details)):
        raise _Refused(where, problem)
    return Alert(
        source=source,
        key=key,
        signal=signal,
        summary=summary,
        at=(starts_at if signal is Signal.FIRING else ends_at) or received_at,
        severity=severity_of(labels.get("severity")),
        labels=labels,
        details=details,
        playbooks=_playbooks(annotations.get("playbooks", ""), f"{where}.annotations.playbooks"),
    )


def _strings(raw: dict[str, Any], name: str, where: str, clean: bool) -> dict[str, str]:
    """`clean`: the alert as a whole holds nothing JSON or PostgreSQL refuses."""
    value = raw.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Refused(f"{where}.{name}", "must be an object mapping names to strings")
    if problem := label_problem(value, name, clean=clean):
        raise _Refused(f"{where}.{name}", problem)
    return dict(value)  # label_problem found strings only


def _summary(labels: dict[str, str], annotations: dict[str, str], where: str) -> str:
    """The `summary` annotation, else `description`, else the alert's name."""
    candidates = (
        ("annotations.summary", annotations.get("summary", "")),
        ("annotations.description", annotations.get("description", "")),
        ("labels.alertname", labels.get("alertname", "")),
    )
    for field, text in candidates:
        if text := text.strip():
            if field == "annotations.description":  # often long and many lines: its start
                return shorten(" ".join(text.split()))
            if len(text) > SUMMARY_MAX:
                raise _Refused(
                    f"{where}.{field}",
                    f"{len(text)} characters, at most {SUMMARY_MAX} are accepted as a summary",
                )
            return text
    raise _Refused(
        f"{where}.labels.alertname",
        "the alert has no alertname label and no summary or description annotation, so "
        "nothing can name its incident",
    )


def _text(raw: dict[str, Any], name: str, where: str) -> str | None:
    value = raw.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _Refused(f"{where}.{name}", f"must be a string, not {type(value).__name__}")
    return value


def _number(value: Any) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def _fingerprint(labels: dict[str, str]) -> str:
    """A stable stand-in for Alertmanager's fingerprint: the same labels, the same value."""
    encoded = json.dumps(labels, sort_keys=True, separators=(",", ":"))  # ASCII: always encodes
    return hashlib.sha256(encoded.encode()).hexdigest()[:16]


NO_TIME: tuple[None, None] = (None, None)


def _time(raw: dict[str, Any], name: str, where: str) -> tuple[datetime, str] | tuple[None, None]:
    """The time in UTC and in ISO 8601; None when missing or Go's zero time
    (`0001-01-01T00:00:00Z`: not set)."""
    value = _text(raw, name, where)
    if value is None:
        return NO_TIME
    try:
        return _moment(value)
    except ValueError:
        raise _Refused(f"{where}.{name}", f"{value[:64]!r} is not an RFC 3339 time") from None


@lru_cache(maxsize=4096)
def _moment(value: str) -> tuple[datetime, str] | tuple[None, None]:
    """A group's alerts, and its every repeat, carry the same few times: each read once."""
    moment = datetime.fromisoformat(value)
    if moment.year <= 1:
        return NO_TIME
    utc = _utc(moment)
    return utc, utc.isoformat()


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _playbooks(text: str, field: str) -> tuple[str, ...]:
    if not text:
        return ()
    names = list(dict.fromkeys(name for name in _PLAYBOOK_SEPARATORS.split(text) if name))
    if len(names) > PLAYBOOKS_MAX:
        raise _Refused(field, f"{len(names)} playbooks, at most {PLAYBOOKS_MAX} are accepted")
    for name in names:
        if not _PLAYBOOK.fullmatch(name):
            raise _Refused(
                field,
                f"{name[:64]!r} is not a playbook name (letters, digits and underscores); "
                "separate names with commas or spaces",
            )
    return tuple(names)
