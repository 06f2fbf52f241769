"""Check declarations: the YAML file, validated whole, with file and line in every error.

    checks:
      - id: data_freshness_inbox
        kind: invariant            # invariant | budget | planner
        agent: inbox.triage
        query: select ... as value # one row; `value` is measured, other columns are context
        comparison: "<="           # passing means: value <comparison> threshold
        threshold: 300
        priority: critical         # or severity: sev1 (critical->sev1 ... low->sev4)
        playbooks: [rerun_dbt, rerun_eval]
        every: 60                  # seconds between runs
        auto_resolve: false
        watches: [inbox_emails]    # optional: dbt models (or sources, `demo.raw_emails`) it reads
        params:                    # optional: params its incidents preset, per playbook
          rerun_dbt: {models: [inbox_emails]}
        remediation:               # optional: the action that fixes its incidents (remediation.py)
          action: rerun_dbt        # runs with params[rerun_dbt] overlaid with its own `params`
          mode: auto               # or propose (the default): suggest it, as playbooks do
          max_attempts: 2          # more (verify, rollback...): checks/remediation.py

Budget checks also name `budget` (quality, latency_p95_ms, cost_per_day, ...); planner checks
return the canary's `version` as a column. Refused, each with the line of the field at fault:
what the schema refuses, a playbook the catalog does not know (`Suggestable`), a preset param its
action does not take or whose value it refuses (presets.py), a remediation whose action is
unknown, does not apply to the check's kind, refuses its params or cannot roll back when asked
to, a key given twice in one mapping (YAML would keep the last silently), two entries with one
id, and two checks that would share an incident key (their incidents would be one). A file with
any error loads nothing.
"""

import operator
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from checks import presets, yaml_lines
from checks.remediation import RemediationPolicy, policy_problems
from checks.suggestable import Name
from checks.suggestable import Suggestable as Suggestable
from models.enums import IncidentKind, Severity

Comparison = Literal["<", "<=", ">", ">=", "==", "!="]
COMPARE: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
PRIORITY_SEVERITY = {
    "critical": Severity.SEV1,
    "high": Severity.SEV2,
    "medium": Severity.SEV3,
    "low": Severity.SEV4,
}


class ConfigError(ValueError):
    """The checks file is wrong; the message names the file, line and field."""


class CheckSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Name
    kind: IncidentKind
    agent: Name
    description: str = ""
    query: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
    comparison: Comparison
    threshold: float
    unit: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20)] | None
    ) = Field(
        default=None,
        description="what the value counts (in its incidents' details): `seconds` show as"
        " durations, `ms` as milliseconds, `usd` as dollars, `percent` with %; any other after"
        " the number",
    )
    severity: Severity | None = None
    priority: Literal["critical", "high", "medium", "low"] | None = None
    playbooks: list[Name] = Field(default_factory=list)
    every: float = Field(default=60, ge=5, le=86_400, description="seconds between runs")
    auto_resolve: bool = False
    budget: Name | None = None
    params: dict[Name, dict[str, Any]] = Field(default_factory=dict)
    remediation: RemediationPolicy | None = None
    watches: list[Name] = Field(
        default_factory=list,
        description="dbt nodes its query reads: a failure while one upstream of them has an"
        " active incident joins that incident (checks/lineage.py)",
    )

    @field_validator("kind")
    @classmethod
    def _a_check_kind(cls, kind: IncidentKind) -> IncidentKind:
        if kind in (IncidentKind.PIPELINE, IncidentKind.ALERT):
            raise ValueError(
                f"{kind.value} incidents come from outside (Prefect's events, alert sources), not"
                " from a check: use invariant, budget or planner"
            )
        return kind

    @field_validator("playbooks")
    @classmethod
    def _known(cls, playbooks: list[str], info: ValidationInfo) -> list[str]:
        known_names = _suggestable(info).names
        unknown = [name for name in playbooks if name not in known_names]
        if unknown:
            known = ", ".join(sorted(known_names))
            raise ValueError(f"unknown playbook {', '.join(map(repr, unknown))} (known: {known})")
        return playbooks

    @field_validator("params")
    @classmethod
    def _params_of_playbooks(
        cls, params: dict[str, dict[str, Any]], info: ValidationInfo
    ) -> dict[str, dict[str, Any]]:
        suggested = info.data.get("playbooks") or []
        actions = _suggestable(info).actions
        for name in params:
            if name not in actions or name not in suggested:
                raise ValueError(
                    f"{name!r} is not an action among the check's playbooks (aliases fix their"
                    " own params)"
                )
        return params

    @model_validator(mode="after")
    def _consistent(self) -> "CheckSpec":
        if (self.severity is None) == (self.priority is None):
            raise ValueError("give exactly one of severity or priority")
        if self.kind is IncidentKind.BUDGET and self.budget is None:
            raise ValueError("a budget check names its `budget` (e.g. latency_p95_ms)")
        return self

    @property
    def incident_severity(self) -> Severity:
        return self.severity or PRIORITY_SEVERITY[self.priority or "medium"]

    def remediation_params(self) -> dict[str, Any]:
        """The params its remediation runs with: the check's preset for the action, overlaid
        with the policy's own ({} without a remediation)."""
        return self.remediation.run_params(self.params) if self.remediation else {}

    def passes(self, value: float) -> bool:
        return COMPARE[self.comparison](value, self.threshold)

    def incident_key(self, context: dict[str, Any]) -> str:
        if self.kind is IncidentKind.BUDGET:
            return f"BUDGET_{self.agent}_{self.budget}"
        if self.kind is IncidentKind.PLANNER:
            return f"PLANNER_{context.get('version') or self.id}"
        return f"INV_{self.id}"

    def incident_keys(self) -> dict[tuple[str, str], str]:
        """Every (kind, key) its incidents may have, with the field that decides it; a planner's
        stands for all its canary versions."""
        own = {("invariant", f"INV_check_{self.id}_{p}"): "id" for p in ("failing", "stale")}
        if self.kind is IncidentKind.BUDGET:
            return own | {("budget", self.incident_key({})): "budget"}
        if self.kind is IncidentKind.PLANNER:
            return own | {("planner", "PLANNER_<canary version>"): "kind"}
        return own | {("invariant", self.incident_key({})): "id"}


def _suggestable(info: ValidationInfo) -> Suggestable:
    """What `load_checks` passes as the validation context (a check made in code names no
    playbook it could not run: it suggests nothing)."""
    context = info.context if isinstance(info.context, dict) else {}
    found = context.get("suggestable")
    return found if isinstance(found, Suggestable) else Suggestable({})


def load_checks(path: Path, playbooks: Suggestable) -> dict[str, CheckSpec]:
    """Every check in `path`, or ConfigError listing each problem with its line; `playbooks`
    are those the checks may suggest."""
    document = _document(path)
    problems = [
        f"{path}:{line}: {key}: given twice (first on line {first})"
        for key, line, first in document.repeated
    ]
    checks: dict[str, CheckSpec] = {}
    lines: dict[str, yaml_lines.Lined] = {}
    entries = document["checks"]
    for entry, entry_line in zip(entries, entries.lines, strict=True):
        if not isinstance(entry, yaml_lines.Lined):
            problems.append(f"{path}:{entry_line}: each entry under `checks:` must be a mapping")
            continue
        check, found = _check(path, entry, playbooks)
        problems += found
        if check is not None and check.id not in checks:
            checks[check.id], lines[check.id] = check, entry
    problems += _duplicate_ids(path, entries)
    problems += _shared_keys(path, checks, lines)
    if problems:
        raise ConfigError("invalid checks configuration:\n  " + "\n  ".join(problems))
    return checks


def _check(
    path: Path, entry: yaml_lines.Lined, playbooks: Suggestable
) -> tuple[CheckSpec | None, list[str]]:
    """The entry as a check (None if anything is wrong with it), and each problem it has."""
    name = entry.get("id", "?")
    problems = [
        _say(path, line, name, field, f"given twice (first on line {first})")
        for field, line, first in yaml_lines.repeated_keys(entry)
    ]
    check: CheckSpec | None = None
    try:
        check = CheckSpec.model_validate(
            yaml_lines.plain(entry), context={"suggestable": playbooks}
        )
    except ValidationError as exc:
        for error in exc.errors():
            loc = error["loc"]
            field = ".".join(map(str, loc)) or "(check)"
            problems.append(_say(path, _line(entry, loc), name, field, error["msg"]))
    problems += _preset_problems(path, entry, playbooks)
    problems += _remediation_problems(path, entry, playbooks)
    return (None if problems else check), problems


def _preset_problems(path: Path, entry: yaml_lines.Lined, playbooks: Suggestable) -> list[str]:
    """What each action would refuse in the params the check presets, with the key's line."""
    params = entry.get("params")
    if not isinstance(params, dict):
        return []
    return [
        _say(
            path,
            yaml_lines.line_at(entry, ("params", *loc)),
            entry.get("id", "?"),
            ".".join(map(str, ("params", *loc))),
            message,
        )
        for loc, message in presets.problems(yaml_lines.plain(params), playbooks.actions)
    ]


def _remediation_problems(path: Path, entry: yaml_lines.Lined, playbooks: Suggestable) -> list[str]:
    """What the catalog refuses in the check's remediation, with the key's line."""
    policy = entry.get("remediation")
    if not isinstance(policy, dict):
        return []
    # a kind the schema refuses (CheckSpec says why) is not judged
    kind = next((kind for kind in IncidentKind if kind == entry.get("kind")), None)
    return [
        _say(
            path,
            yaml_lines.line_at(entry, ("remediation", *loc)),
            entry.get("id", "?"),
            ".".join(map(str, ("remediation", *loc))),
            message,
        )
        for loc, message in policy_problems(yaml_lines.plain(policy), kind, playbooks)
    ]


def _line(entry: yaml_lines.Lined, loc: tuple[str | int, ...]) -> int:
    """The line of the field the schema refuses: a remediation's keys are fields of their own,
    elsewhere the check's field (a preset's own keys are judged by `_preset_problems`)."""
    if loc[:1] == ("remediation",):
        return yaml_lines.line_at(entry, loc)
    return entry.line_of(loc[0]) if loc else entry.line


def _duplicate_ids(path: Path, entries: list[Any]) -> list[str]:
    """One problem for each entry whose `id` an earlier entry has, read from the file so that
    it counts even when either entry has other problems."""
    first: dict[str, int] = {}
    problems = []
    for entry in entries:
        name = entry.get("id") if isinstance(entry, yaml_lines.Lined) else None
        if not isinstance(name, str):  # no id, or one the schema refuses anyway
            continue
        line = entry.line_of("id")
        if name in first:
            problems.append(
                _say(path, line, name, "id", f"duplicate id (first on line {first[name]})")
            )
        else:
            first[name] = line
    return problems


def _document(path: Path) -> yaml_lines.Lined:
    """The file's top mapping, its `checks` a list; or ConfigError saying on which line not."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: checks file not found") from exc
    except OSError as exc:  # a directory, no permission...
        raise ConfigError(f"{path}: cannot read the checks file: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: not UTF-8 text (byte {exc.start})") from exc
    try:
        document = yaml_lines.load(text)
    except yaml.YAMLError as exc:
        line, problem = yaml_lines.explain(exc, text)
        raise ConfigError(f"{path}:{line}: not valid YAML: {problem}") from exc
    if document is None:  # nothing but blank lines and comments
        raise ConfigError(f"{path}:1: expected a top-level `checks:` list (the file is empty)")
    if not isinstance(document, yaml_lines.Lined):  # a list knows its line; a lone scalar: 1
        raise ConfigError(
            f"{path}:{getattr(document, 'line', 1)}: expected a top-level `checks:` list"
        )
    if not isinstance(document.get("checks"), yaml_lines.LinedList):
        # the `checks` key's line, or without one the mapping's first
        line = document.line_of("checks")
        raise ConfigError(f"{path}:{line}: expected a top-level `checks:` list")
    return document


def _say(path: Path, line: int, check_id: object, field: str, message: str) -> str:
    return f"{path}:{line}: check {check_id!r}: {field}: {message}"


def _shared_keys(
    path: Path, checks: dict[str, CheckSpec], lines: dict[str, yaml_lines.Lined]
) -> list[str]:
    """One problem for each check whose incidents would share a key with an earlier check's."""
    owner: dict[tuple[str, str], str] = {}
    problems = []
    for check in checks.values():
        for kind_key, field in check.incident_keys().items():
            other = owner.setdefault(kind_key, check.id)
            if other == check.id:
                continue
            problems.append(
                _say(
                    path,
                    lines[check.id].line_of(field),
                    check.id,
                    field,
                    f"its incidents would share the key {kind_key[1]!r} with check {other!r} (line "
                    f"{lines[other].line}): give each check its own",
                )
            )
    return problems
