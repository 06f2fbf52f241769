"""An alert from a tool the platform already runs, in the one shape intake takes.

Alertmanager and Grafana webhooks, PagerDuty-compatible events and dbt's artifacts each become a
list of `Alert`s (integrations/ parses them); intake (models/services/alert_intake.py) opens,
counts, resolves, silences or holds the incidents they name. A source's own identifier can be
anything (a PagerDuty dedup_key is up to 255 characters of any kind): `incident_key` turns it into
an incident key, unchanged where it already is one.
"""

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from models.enums import IncidentKind, Severity

KEY_MAX = 200
SUMMARY_MAX = 500
LABELS_MAX = 64  # labels (or annotations) on one alert
LABEL_NAME_MAX = 128
LABEL_VALUE_MAX = 2048
_KEY = re.compile(r"^[\w.:/@-]+$")
_NOT_KEY = re.compile(r"[^\w.:/@-]+")


class Signal(StrEnum):
    """What the source says about the problem."""

    FIRING = "firing"
    RESOLVED = "resolved"
    ACKNOWLEDGED = "acknowledged"  # PagerDuty's acknowledge: someone is on it


class Source(StrEnum):
    ALERTMANAGER = "alertmanager"
    GRAFANA = "grafana"
    PAGERDUTY = "pagerduty"
    DBT = "dbt"


@dataclass(frozen=True)
class Alert:
    source: Source
    key: str  # an incident key: incident_key() of the source's identifier
    signal: Signal
    summary: str
    at: datetime  # when the source saw it (aware, UTC)
    severity: Severity | None = None  # None: the routing rules or the default decide
    kind: IncidentKind | None = None  # None: the routing rules decide (default `alert`)
    labels: Mapping[str, str] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    playbooks: tuple[str, ...] = ()
    # preset params per playbook, {action_type: {name: value}}: the incident's playbook_params
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    # dbt nodes the alert is about (a test's models, a stale source): lineage grouping
    nodes: tuple[str, ...] = ()
    actor: str | None = None  # who acknowledged, where the source names someone


@dataclass(frozen=True)
class Refusal:
    """One item of a batch that was not taken: where it was and why (the rest are taken)."""

    index: int
    field: str
    message: str


def incident_key(raw: str) -> str:
    """`raw` if it is a valid incident key; otherwise its allowed characters, cut short, and a
    hash of all of it, so two different identifiers never share a key."""
    if len(raw) <= KEY_MAX and _KEY.match(raw):
        return raw
    digest = hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    cleaned = _NOT_KEY.sub("_", raw).strip("_")[: KEY_MAX - 18] or "alert"
    return f"{cleaned}--{digest}"


def label_problem(
    labels: Mapping[str, Any], name: str = "labels", *, clean: bool = False
) -> str | None:
    """Why a label set (or annotations) is refused: too many, too long, or not strings.
    `clean`: `json_problem` found nothing in a document that holds them (not asked again)."""
    if len(labels) > LABELS_MAX:
        return f"{name}: {len(labels)} entries, at most {LABELS_MAX} are accepted"
    for label, value in labels.items():
        if not isinstance(label, str) or not isinstance(value, str):
            return f"{name}: {label!r} must map a string to a string"
        if len(label) > LABEL_NAME_MAX:
            return f"{name}: the name {label[:40]!r}... is over {LABEL_NAME_MAX} characters"
        if len(value) > LABEL_VALUE_MAX:
            return f"{name}: the value of {label!r} is over {LABEL_VALUE_MAX} characters"
    if clean:
        return None
    if (problem := json_problem(labels)) is not None:  # one pass; then find which
        wrong = next(
            (label for label, value in labels.items() if json_problem([label, value])), "?"
        )
        return f"{name}: {wrong!r} {problem}"
    return None


def json_problem(value: Any) -> str | None:
    """Why `value` cannot be stored: PostgreSQL's text and jsonb hold no NUL, no half of a
    surrogate pair and no NaN, and Python's JSON reads all three (`\\u0000`, `\\ud800`, `NaN`).
    One pass of the C encoder: a storm's every alert goes through here."""
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except ValueError:
        return "holds NaN or Infinity, which JSON cannot carry"
    except TypeError:
        return "holds a value JSON cannot carry"
    except RecursionError:
        return "is nested too deeply"
    if "\\u0000" in text:
        return "holds a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "holds a lone surrogate (half of a \\uXXXX pair)"
    return None


def shorten(text: str, limit: int = SUMMARY_MAX) -> str:
    """`text` cut to `limit` characters, an ellipsis marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


SEVERITY_WORDS: Mapping[str, Severity] = {
    "critical": Severity.SEV1,
    "error": Severity.SEV2,
    "high": Severity.SEV2,
    "warning": Severity.SEV3,
    "info": Severity.SEV4,
    **{severity.value: severity for severity in Severity},
}


def severity_of(word: str | None) -> Severity | None:
    """The severity a source's word names (`critical` -> sev1 ... `info` -> sev4, `sev1`..`sev4`
    as is); None for anything else, which the default replaces."""
    if word is None:
        return None
    return SEVERITY_WORDS.get(word.strip().lower())
