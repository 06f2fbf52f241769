"""PagerDuty's Events API v2 alert events, read into an `Alert`.

Any tool that pages PagerDuty (Alertmanager's pagerduty_configs, Grafana, Sentry, Datadog...) can
send its events here instead. We take what PagerDuty takes, refuse what it refuses, and answer
in its shapes: 202 `success_body(dedup_key)`, 400 `InvalidEvent.body`, which lists every problem
worded as PagerDuty words them (`'payload.source' is missing or blank`).

As in PagerDuty, `payload`, `links`, `images`, `client` and `client_url` matter only to
`trigger`: acknowledge and resolve need only their `dedup_key` (a payload's summary still names
the alert when there is one). A trigger without a `dedup_key` gets a new one (a uuid4, like
PagerDuty's), which the 202 body echoes so the sender can resolve it later. PagerDuty allows a
summary of 1024 characters: `Alert.summary` keeps SUMMARY_MAX of them (with an ellipsis) and
`details["summary"]` the whole. The routing key is returned beside the alert, never inside it:
it is a secret, and what it routes to is the caller's business.
"""

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from models.alert import (
    LABEL_VALUE_MAX,
    Alert,
    Signal,
    Source,
    incident_key,
    json_problem,
    severity_of,
    shorten,
)

ROUTING_KEY_MAX = 200  # an Intervene token (ivt_...), not PagerDuty's 32 characters
DEDUP_KEY_MAX = 255
PAGERDUTY_SUMMARY_MAX = 1024
CUSTOM_DETAILS_MAX = 64 * 1024  # bytes of compact JSON
ACTIONS = {"trigger": Signal.FIRING, "acknowledge": Signal.ACKNOWLEDGED, "resolve": Signal.RESOLVED}
SEVERITIES = ("critical", "warning", "error", "info")  # PagerDuty's order, in its messages
CEF_LABELS = ("source", "component", "group", "class")  # PD-CEF fields routing rules can match
CONTEXTS = {"links": ("href", "text"), "images": ("src", "href", "alt")}  # the first is required


class InvalidEvent(ValueError):
    """The event is refused (400); `body` is PagerDuty's answer."""

    def __init__(
        self,
        errors: list[str],
        *,
        status: str = "invalid event",
        message: str = "Event object is invalid",
    ) -> None:
        super().__init__(f"{message}: {'; '.join(errors)}")
        self.errors, self.status, self.message = errors, status, message

    @property
    def body(self) -> dict[str, Any]:
        return {"status": self.status, "message": self.message, "errors": list(self.errors)}


@dataclass(frozen=True)
class Event:
    routing_key: str
    dedup_key: str  # as the sender gave it (or as generated): echo it in the 202 body
    alert: Alert


def success_body(dedup_key: str) -> dict[str, str]:
    """PagerDuty's 202 answer."""
    return {"status": "success", "message": "Event processed", "dedup_key": dedup_key}


def parse_event(event: Any, *, received_at: datetime) -> Event:
    """The alert one Events API v2 event stands for; raises `InvalidEvent`."""
    if not isinstance(event, dict):
        raise InvalidEvent(
            ["Event must be a JSON object"],
            status="Unrecognized object",
            message="Event object format is unrecognized",
        )
    errors: list[str] = []
    routing_key = _string(event, "routing_key", errors, required=True)
    if routing_key is not None and len(routing_key) > ROUTING_KEY_MAX:
        errors.append(
            f"Length of 'routing_key' is incorrect (at most {ROUTING_KEY_MAX} characters)"
        )
    action = event.get("event_action")
    if action is None or action == "":
        errors.append("'event_action' is missing or blank")
    elif not isinstance(action, str) or action not in ACTIONS:
        errors.append(
            "'event_action' is invalid (must be one of the following: 'trigger', "
            "'acknowledge' or 'resolve')"
        )
    given = _string(event, "dedup_key", errors, required=action in ("acknowledge", "resolve"))
    if given is not None and len(given) > DEDUP_KEY_MAX:
        errors.append(f"'dedup_key' is too long (at most {DEDUP_KEY_MAX} characters)")
    dedup_key = given or uuid.uuid4().hex  # only a trigger may come without one
    alert = _trigger(event, dedup_key, errors, received_at) if action == "trigger" else None
    if errors:
        raise InvalidEvent(errors)
    assert routing_key is not None
    assert isinstance(action, str)
    if alert is None:
        alert = _follow_up(event, ACTIONS[action], dedup_key, received_at)
    return Event(routing_key, dedup_key, alert)


def _follow_up(event: dict[str, Any], signal: Signal, dedup_key: str, at: datetime) -> Alert:
    """An acknowledge or a resolve: its payload is not read, but for a summary."""
    payload = event.get("payload")
    summary = payload.get("summary") if isinstance(payload, dict) else None
    if not isinstance(summary, str) or not summary.strip() or json_problem(summary):
        summary = f"PagerDuty {event['event_action']}: {dedup_key}"
    return Alert(
        source=Source.PAGERDUTY,
        key=incident_key(dedup_key),
        signal=signal,
        summary=shorten(summary.strip()),
        at=_utc(at),
        details={"dedup_key": dedup_key},
    )


def _trigger(
    event: dict[str, Any], dedup_key: str, errors: list[str], at: datetime
) -> Alert | None:
    payload = event.get("payload")
    if payload is None:
        errors.append("'payload' is missing or blank")
        return None
    if not isinstance(payload, dict):
        errors.append("'payload' is invalid (must be an object)")
        return None
    summary = _string(payload, "summary", errors, where="payload.", required=True)
    if summary is not None and len(summary) > PAGERDUTY_SUMMARY_MAX:
        errors.append(f"'payload.summary' is too long (at most {PAGERDUTY_SUMMARY_MAX} characters)")
    severity = payload.get("severity")
    if severity is None or severity == "":
        errors.append("'payload.severity' is missing or blank")
    elif severity not in SEVERITIES:
        errors.append(
            "'payload.severity' is invalid (must be one of the following: 'critical', "
            "'warning', 'error' or 'info')"
        )
    labels: dict[str, str] = {}
    for name in CEF_LABELS:
        value = _string(payload, name, errors, where="payload.", required=name == "source")
        if value is not None and len(value) > LABEL_VALUE_MAX:
            errors.append(f"'payload.{name}' is too long (at most {LABEL_VALUE_MAX} characters)")
        elif value is not None:
            labels[name] = value
    timestamp = _timestamp(payload, errors)
    details: dict[str, Any] = {"dedup_key": dedup_key, "summary": summary, **labels}
    if payload.get("custom_details") is not None:
        details["custom_details"] = _custom_details(payload["custom_details"], errors)
    for name, fields in CONTEXTS.items():
        if event.get(name) is not None:
            details[name] = _context(event[name], name, fields, errors)
    for name in ("client", "client_url"):
        if (value := _string(event, name, errors)) is not None:
            details[name] = value
    if isinstance(severity, str):
        labels["severity"] = severity
    return Alert(
        source=Source.PAGERDUTY,
        key=incident_key(dedup_key),
        signal=Signal.FIRING,
        summary=shorten((summary or "").strip()),
        at=timestamp or _utc(at),
        severity=severity_of(severity if isinstance(severity, str) else None),
        labels=labels,
        details=details,
    )


def _string(
    data: dict[str, Any], name: str, errors: list[str], *, where: str = "", required: bool = False
) -> str | None:
    """A string field; a missing or blank one is None (and an error when required)."""
    value = data.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            errors.append(f"'{where}{name}' is missing or blank")
        return None
    if not isinstance(value, str):
        errors.append(f"'{where}{name}' is invalid (must be a string)")
        return None
    if problem := json_problem(value):
        errors.append(f"'{where}{name}' {problem}")
        return None
    return value


def _timestamp(payload: dict[str, Any], errors: list[str]) -> datetime | None:
    text = _string(payload, "timestamp", errors, where="payload.")
    if text is None:
        return None
    try:
        return _utc(datetime.fromisoformat(text))
    except ValueError:
        errors.append("'payload.timestamp' is invalid (must be an ISO 8601 date-time)")
        return None


def _custom_details(value: Any, errors: list[str]) -> Any:
    if problem := json_problem(value):
        errors.append(f"'payload.custom_details' {problem}")
        return None
    try:
        size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())
    except RecursionError:
        errors.append("'payload.custom_details' is nested too deeply")
        return None
    if size > CUSTOM_DETAILS_MAX:
        errors.append(
            f"'payload.custom_details' is too large ({size} bytes of JSON, at most "
            f"{CUSTOM_DETAILS_MAX})"
        )
        return None
    return value


def _context(
    value: Any, name: str, fields: tuple[str, ...], errors: list[str]
) -> list[dict[str, str]]:
    """`links` or `images`: objects of strings, the first field required."""
    if not isinstance(value, list):
        errors.append(f"'{name}' is invalid (must be an array)")
        return []
    kept: list[dict[str, str]] = []
    for index, item in enumerate(value):
        where = f"{name}[{index}]."
        if not isinstance(item, dict):
            errors.append(f"'{name}[{index}]' is invalid (must be an object)")
            continue
        entry = {
            field: text
            for field in fields
            if (text := _string(item, field, errors, where=where, required=field == fields[0]))
        }
        kept.append(entry)
    return kept


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
