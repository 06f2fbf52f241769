"""dbt's own artifacts as alerts: `run_results.json` (`dbt test`, `dbt build`, `dbt run`) and
`sources.json` (`dbt source freshness`), one `Alert` per test, built node or source.

What each status becomes (the key is always the node's unique id, so a later pass resolves
the incident a failure opened):

    test, unit test       fail, error -> FIRING    warn -> FIRING sev4    pass -> RESOLVED
    model, seed,          error, partial success -> FIRING                success -> RESOLVED
      snapshot, function
    source freshness      error, runtime error -> FIRING    warn -> FIRING sev4    pass -> RESOLVED
    skipped, no-op, operation hooks: nothing (dbt ran nothing, or nothing worth an incident)

dbt has two levels: a test or a freshness rule configured to `warn` says the project accepts
it for a while, hence sev4; an error carries no severity (None: the routing rules or the
default decide). With the manifest, a test's alert names the models and sources it tests
(`nodes`, for lineage) and presets `rerun_dbt` on its models; without it, only a built node or
a source names itself. Kind stays None: the caller decides.

A result that cannot be read is a `Refusal` (the others are taken); a document that is not a
run_results.json (schema v4-v6) or sources.json (v3), what dbt 1.11 and the releases
before it write, is an `ArtifactError`.
"""

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from integrations.lineage import Lineage, resource_type
from integrations.warehouse import Manifest
from models.alert import Alert, Refusal, Signal, Source, incident_key, json_problem, shorten
from models.enums import Severity
from models.errors import BadRequest

RERUN_DBT = "rerun_dbt"
_MODEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")  # what rerun_dbt's Params accept
_SCHEMA = re.compile(r"/dbt/(?P<kind>[a-z-]+)/v(?P<version>\d+)\.json$")
TESTS = frozenset({"test", "unit_test"})
BUILT = frozenset({"model", "seed", "snapshot", "function"})
_QUIET = frozenset({"skipped", "no-op"})
# the statuses each reads, and how its summary says them
_TEST_VERBS = {"pass": "passed", "fail": "failed", "warn": "warned", "error": "errored"}
_BUILT_VERBS = {"success": "built", "error": "failed", "partial success": "partly built"}
_SEVERITY: Mapping[str, Severity] = {"warn": Severity.SEV4}  # others: None, the caller decides
_RESOLVED = frozenset({"pass", "success"})
_DBT_ERROR = re.compile(r"^[\w ]*Error in \w+ ")  # dbt's own first line: `Runtime Error in model x`
_MESSAGE_MAX = 4000  # dbt's message keeps the failing SQL's context; the rest is in its logs
_UNITS = {"minute": "min", "hour": "h", "day": "d"}


class ArtifactKind(StrEnum):
    RUN_RESULTS = "run_results"
    SOURCES = "sources"


# dbt's schema name -> our kind, and the versions read (dbt 1.11 writes run-results v6, sources v3)
SUPPORTED: Mapping[str, tuple[ArtifactKind, frozenset[int]]] = {
    "run-results": (ArtifactKind.RUN_RESULTS, frozenset({4, 5, 6})),
    "sources": (ArtifactKind.SOURCES, frozenset({3})),
}


class ArtifactError(BadRequest):
    """The document is not a dbt artifact this reads (not JSON, another kind, another version)."""


@dataclass(frozen=True)
class Parsed:
    kind: ArtifactKind
    alerts: list[Alert] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    ignored: int = 0  # skipped and no-op results, operation hooks
    positions: list[int] = field(default_factory=list)  # each alert's index in `results`


class _Refused(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def read_artifact(
    path: Path, *, manifest: Manifest | None = None, received_at: datetime | None = None
) -> Parsed:
    """`parse_artifact` of a file; `received_at` defaults to now."""
    try:
        document = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path.name}: not a readable JSON file ({exc})") from exc
    return parse_artifact(document, manifest=manifest, received_at=received_at or datetime.now(UTC))


def parse_artifact(document: Any, *, manifest: Manifest | None, received_at: datetime) -> Parsed:
    """The alerts in a parsed run_results.json or sources.json (which one: its schema version)."""
    kind, metadata, results = _envelope(document)
    at = _timestamp(metadata.get("generated_at"), "metadata.generated_at") or received_at
    context = {name: metadata.get(name) for name in ("invocation_id", "dbt_version")}
    context["generated_at"] = metadata.get("generated_at")
    lineage = manifest.lineage if manifest is not None else None
    read = _run_result if kind is ArtifactKind.RUN_RESULTS else _freshness
    alerts: list[Alert] = []
    refused: list[Refusal] = []
    positions: list[int] = []
    ignored = 0
    for index, item in enumerate(results):
        try:
            alert = read(item, at=at, context=context, lineage=lineage)
        except _Refused as exc:
            refused.append(Refusal(index=index, field=exc.field, message=exc.message))
            continue
        if alert is None:
            ignored += 1
        else:
            alerts.append(alert)
            positions.append(index)
    return Parsed(kind=kind, alerts=alerts, refused=refused, ignored=ignored, positions=positions)


def _envelope(document: Any) -> tuple[ArtifactKind, Mapping[str, Any], list[Any]]:
    metadata = document.get("metadata") if isinstance(document, Mapping) else None
    schema = metadata.get("dbt_schema_version") if isinstance(metadata, Mapping) else None
    if not isinstance(metadata, Mapping) or not isinstance(schema, str):
        raise ArtifactError("not a dbt artifact: metadata.dbt_schema_version is missing")
    match = _SCHEMA.search(schema)
    known = SUPPORTED.get(match["kind"]) if match else None
    if match is None or known is None:
        raise ArtifactError(
            f"{schema} is not a run_results.json (dbt test, dbt build) or a sources.json"
            " (dbt source freshness)",
            details={"dbt_schema_version": schema},
        )
    kind, versions = known
    if int(match["version"]) not in versions:
        raise ArtifactError(
            f"{match['kind']} v{match['version']} is not read here (known: "
            f"{', '.join(f'v{v}' for v in sorted(versions))})",
            details={"dbt_schema_version": schema},
        )
    results = document.get("results")
    if not isinstance(results, list):
        raise ArtifactError(f"{kind.value}: `results` must be a list")
    return kind, metadata, results


def _run_result(
    item: Any, *, at: datetime, context: dict[str, Any], lineage: Lineage | None
) -> Alert | None:
    unique_id, status = _identity(item)
    rtype = resource_type(unique_id)
    if rtype == "operation" or status in _QUIET:
        return None
    if rtype not in TESTS | BUILT:
        raise _Refused("unique_id", f"{unique_id}: not a test, model, seed, snapshot or function")
    verbs = _TEST_VERBS if rtype in TESTS else _BUILT_VERBS
    if status not in verbs:
        raise _Refused("status", f"{unique_id}: unknown status {status!r} for a {rtype}")
    failures = item.get("failures")
    if failures is not None and (not isinstance(failures, int) or isinstance(failures, bool)):
        raise _Refused("failures", f"{unique_id}: failures must be a whole number")
    message = item.get("message")
    message = message[:_MESSAGE_MAX] if isinstance(message, str) else None
    name = _name(unique_id, lineage)
    summary = f"dbt {rtype.replace('_', ' ')} {name} {verbs[status]}"
    if status in {"fail", "warn"} and failures is not None:
        summary += f": {failures} failure{'s' if failures != 1 else ''}"
    elif status in {"error", "partial success"} and message and message.strip():
        summary += f": {_cause(message)}"
    nodes: tuple[str, ...] = (unique_id,)
    if rtype in TESTS:
        nodes = lineage.data_parents(unique_id) if lineage is not None else ()
    details = {
        **context,
        "unique_id": unique_id,
        "resource_type": rtype,
        "status": status,
        "message": message,
        "failures": failures,
        "execution_time": item.get("execution_time"),
    }
    return _alert(unique_id, status, summary, at, details, nodes, lineage)


def _freshness(
    item: Any, *, at: datetime, context: dict[str, Any], lineage: Lineage | None
) -> Alert | None:
    unique_id, status = _identity(item)
    if resource_type(unique_id) != "source":
        raise _Refused("unique_id", f"{unique_id}: not a source")
    name = _name(unique_id, lineage)
    details = {**context, "unique_id": unique_id, "resource_type": "source", "status": status}
    if status == "runtime error":
        error = str(item["error"])[:_MESSAGE_MAX] if item.get("error") is not None else None
        summary = f"freshness of source {name} could not be checked"
        summary += f": {_cause(error)}" if error else ""
        details["error"] = error
        return _alert(unique_id, status, summary, at, details, (unique_id,), lineage)
    if status not in {"pass", "warn", "error"}:
        raise _Refused("status", f"{unique_id}: unknown freshness status {status!r}")
    age = item.get("max_loaded_at_time_ago_in_s")
    if not isinstance(age, int | float) or isinstance(age, bool):
        raise _Refused("max_loaded_at_time_ago_in_s", f"{unique_id}: the age must be a number")
    criteria = item.get("criteria") if isinstance(item.get("criteria"), Mapping) else {}
    if status == "pass":
        summary = f"source {name} is fresh: last loaded {_duration(age)} ago"
    else:
        summary = f"source {name} is stale: last loaded {_duration(age)} ago"
        limit = _period(criteria.get(f"{status}_after"))
        summary += f" ({status} after {limit})" if limit else ""
    details |= {
        "max_loaded_at": item.get("max_loaded_at"),
        "snapshotted_at": item.get("snapshotted_at"),
        "max_loaded_at_time_ago_in_s": age,
        "criteria": criteria,
        "execution_time": item.get("execution_time"),
    }
    return _alert(unique_id, status, summary, at, details, (unique_id,), lineage)


def _alert(
    unique_id: str,
    status: str,
    summary: str,
    at: datetime,
    details: dict[str, Any],
    nodes: tuple[str, ...],
    lineage: Lineage | None,
) -> Alert:
    models = [
        name
        for node in nodes
        if resource_type(node) == "model" and _MODEL_NAME.match(name := _name(node, lineage))
    ]
    labels = {
        "dbt_resource_type": resource_type(unique_id),
        "dbt_name": _name(unique_id, lineage),
        "dbt_project": unique_id.split(".")[1],
    }
    if problem := json_problem([summary, labels, details]):  # PostgreSQL stores none of it
        raise _Refused("result", f"{unique_id[:200]}: {problem}")
    return Alert(
        source=Source.DBT,
        key=incident_key(unique_id),
        signal=Signal.RESOLVED if status in _RESOLVED else Signal.FIRING,
        summary=shorten(summary),
        at=at,
        severity=_SEVERITY.get(status),
        labels=labels,
        details=details,
        nodes=nodes,
        playbooks=(RERUN_DBT,) if models else (),
        params={RERUN_DBT: {"models": models}} if models else {},
    )


def _identity(item: Any) -> tuple[str, str]:
    if not isinstance(item, Mapping):
        raise _Refused("result", "each result must be an object")
    unique_id, status = item.get("unique_id"), item.get("status")
    if not isinstance(unique_id, str) or unique_id.count(".") < 2 or len(unique_id) > 1000:
        raise _Refused("unique_id", "unique_id must be a dbt unique id (`model.<project>.<name>`)")
    if not isinstance(status, str):
        raise _Refused("status", f"{unique_id}: status must be a string")
    return unique_id, status


def _name(unique_id: str, lineage: Lineage | None) -> str:
    """The node's name in the manifest; without one, read from the id (`test.p.<name>.<hash>`,
    `source.p.<source>.<table>`, `unit_test.p.<model>.<name>`, `model.p.<name>[.v2]`)."""
    known = lineage.name_of(unique_id) if lineage is not None else None
    if known:
        return known
    parts = unique_id.split(".")
    rtype = parts[0]
    if rtype == "source" and len(parts) >= 4:
        return f"{parts[2]}.{parts[3]}"
    return parts[-1] if rtype == "unit_test" else parts[2]


def _timestamp(value: Any, where: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None:
        raise ArtifactError(f"{where}: {str(value)[:40]!r} is not an ISO 8601 timestamp")
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _cause(message: str) -> str:
    """The line of dbt's error message that says what went wrong."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if len(lines) > 1 and _DBT_ERROR.match(lines[0]):
        return lines[1]
    return lines[0] if lines else ""


def _duration(seconds: float) -> str:
    """`45 s`, `12 min`, `2 h 5 min`, `3 d 4 h`."""
    total = max(0, int(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min" if minutes else f"{secs} s"


def _period(rule: Any) -> str | None:
    """`{count: 1, period: hour}` as `1 h`; None where the rule is not set."""
    if not isinstance(rule, Mapping) or not isinstance(rule.get("count"), int):
        return None
    period = str(rule.get("period"))
    return f"{rule['count']} {_UNITS.get(period, period)}"
