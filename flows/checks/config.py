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

Budget checks also name `budget` (quality, latency_p95_ms, cost_per_day, ...); planner checks
return the canary's `version` as a column. A file with any error loads nothing.
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
    model_validator,
)

from models.enums import IncidentKind, Severity

Comparison = Literal["<", "<=", ">", ">=", "==", "!="]
COMPARE: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
    "==": operator.eq, "!=": operator.ne,
}  # fmt: skip
PRIORITY_SEVERITY = {
    "critical": Severity.SEV1, "high": Severity.SEV2, "medium": Severity.SEV3,
    "low": Severity.SEV4,
}  # fmt: skip
Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]+$", min_length=1, max_length=120)]


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
    severity: Severity | None = None
    priority: Literal["critical", "high", "medium", "low"] | None = None
    playbooks: list[Name] = Field(default_factory=list)
    every: float = Field(default=60, ge=5, le=86_400, description="seconds between runs")
    auto_resolve: bool = False
    budget: Name | None = None

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

    def passes(self, value: float) -> bool:
        return COMPARE[self.comparison](value, self.threshold)

    def incident_key(self, context: dict[str, Any]) -> str:
        if self.kind is IncidentKind.BUDGET:
            return f"BUDGET_{self.agent}_{self.budget}"
        if self.kind is IncidentKind.PLANNER:
            return f"PLANNER_{context.get('version') or self.id}"
        return f"INV_{self.id}"


class _Loader(yaml.SafeLoader):
    """SafeLoader that remembers the line where each mapping starts."""


def _mapping_with_line(loader: _Loader, node: yaml.MappingNode) -> dict[str, Any]:
    mapping = {str(key): value for key, value in loader.construct_mapping(node, deep=True).items()}
    mapping["__line__"] = node.start_mark.line + 1
    return mapping


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_with_line)


def load_checks(path: Path) -> dict[str, CheckSpec]:
    """Every check in `path`, or ConfigError listing each problem with its line."""
    try:
        document = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: checks file not found") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("checks"), list):
        raise ConfigError(f"{path}: expected a top-level `checks:` list")
    problems: list[str] = []
    checks: dict[str, CheckSpec] = {}
    for entry in document["checks"]:
        if not isinstance(entry, dict):
            problems.append(f"{path}: each entry under `checks:` must be a mapping")
            continue
        line = entry.pop("__line__", "?")
        try:
            check = CheckSpec.model_validate(entry)
        except ValidationError as exc:
            name = entry.get("id", "?")
            for error in exc.errors():
                field = ".".join(str(p) for p in error["loc"]) or "(check)"
                problems.append(f"{path}:{line}: check {name!r}: {field}: {error['msg']}")
            continue
        if check.id in checks:
            problems.append(f"{path}:{line}: check {check.id!r}: duplicate id")
            continue
        checks[check.id] = check
    if problems:
        raise ConfigError("invalid checks configuration:\n  " + "\n  ".join(problems))
    return checks
