"""Routing rules for alerts from other tools, from a file (`INTERVENE_ALERT_RULES_FILE`):

    defaults:
      severity: sev3              # when the alert names no severity Intervene knows
      flap_window_seconds: 1800   # fired again this soon after its source resolved it: reopen
    rules:                        # the first rule that matches decides
      - name: warehouse-tests
        match: {source: dbt, key: "test.*", labels: {team: data}}   # globs; all must match
        kind: invariant           # default: alert (dbt: invariant)
        severity: sev2            # overrides the alert's own
        playbooks: [rerun_dbt]    # added to those the alert suggests
        params: {rerun_dbt: {full_refresh: false}}
        open_after: {occurrences: 3, within_seconds: 600}
        flap_window_seconds: 600
        remediation:              # optional: the policy that fixes its alerts (as a check's)
          action: rerun_dbt       # suggested by its incidents whatever their kind
          mode: auto              # auto: the loop runs it (remediation/loop.py)
          verify_within_seconds: 900   # verified when the source resolves the alert this soon

A file with an error is refused at start with its line, like the checks file.
"""

from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from checks import presets, yaml_lines
from checks.config import ConfigError
from checks.remediation import RemediationPolicy, policy_problems
from checks.suggestable import Suggestable
from models.alert import Alert, Source
from models.enums import IncidentKind, Severity
from models.services.alert_intake import Routed, Threshold


class Match(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: Source | None = None
    key: str | None = Field(default=None, min_length=1, max_length=200)
    labels: dict[str, str] = Field(default_factory=dict)

    def matches(self, alert: Alert) -> bool:
        if self.source is not None and alert.source is not self.source:
            return False
        if self.key is not None and not fnmatchcase(alert.key, self.key):
            return False
        return all(
            name in alert.labels and fnmatchcase(alert.labels[name], pattern)
            for name, pattern in self.labels.items()
        )


class OpenAfter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    occurrences: int = Field(ge=1, le=1000)
    within_seconds: int = Field(ge=1, le=7 * 86400)


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    match: Match = Field(default_factory=Match)
    kind: IncidentKind | None = None
    severity: Severity | None = None
    playbooks: list[str] = Field(default_factory=list, max_length=20)
    params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    open_after: OpenAfter | None = None
    flap_window_seconds: int | None = Field(default=None, ge=0, le=7 * 86400)
    remediation: RemediationPolicy | None = None

    @field_validator("kind")
    @classmethod
    def _not_pipeline(cls, kind: IncidentKind | None) -> IncidentKind | None:
        if kind is IncidentKind.PIPELINE:
            raise ValueError("pipeline incidents come from Prefect's events, not from alerts")
        return kind


class Defaults(BaseModel):
    model_config = ConfigDict(extra="forbid")

    severity: Severity = Severity.SEV3
    flap_window_seconds: int = Field(default=1800, ge=0, le=7 * 86400)


class AlertRules(BaseModel):
    model_config = ConfigDict(extra="forbid")

    defaults: Defaults = Field(default_factory=Defaults)
    rules: list[Rule] = Field(default_factory=list)

    def policies(self, *, mode: str | None = None) -> dict[str, RemediationPolicy]:
        """The remediation policy of each rule that has one (of `mode` only, if given)."""
        return {
            rule.name: rule.remediation
            for rule in self.rules
            if rule.remediation is not None and mode in (None, rule.remediation.mode)
        }

    def rule(self, name: str) -> Rule | None:
        return next((rule for rule in self.rules if rule.name == name), None)

    def route(self, alert: Alert) -> Routed:
        """The alert with the first matching rule (or the defaults) applied."""
        rule = next((rule for rule in self.rules if rule.match.matches(alert)), None)
        default_kind = IncidentKind.INVARIANT if alert.source is Source.DBT else IncidentKind.ALERT
        fixes = [rule.remediation.action] if rule and rule.remediation else []
        playbooks = list(
            dict.fromkeys([*alert.playbooks, *(rule.playbooks if rule else []), *fixes])
        )
        params = {**alert.params, **(rule.params if rule else {})}
        flap = rule.flap_window_seconds if rule and rule.flap_window_seconds is not None else None
        threshold = rule.open_after if rule else None
        return Routed(
            alert=alert if params == alert.params else _with_params(alert, params),
            kind=(rule.kind if rule and rule.kind else None) or alert.kind or default_kind,
            severity=(rule.severity if rule else None) or alert.severity or self.defaults.severity,
            playbooks=tuple(playbooks),
            rule=rule.name if rule else None,
            open_after=Threshold(threshold.occurrences, timedelta(seconds=threshold.within_seconds))
            if threshold
            else None,
            flap_window=timedelta(
                seconds=flap if flap is not None else self.defaults.flap_window_seconds
            ),
        )


def _with_params(alert: Alert, params: dict[str, dict[str, Any]]) -> Alert:
    return replace(alert, params=params)


def load_rules(path: Path | None, playbooks: Suggestable) -> AlertRules:
    """The rules in `path` (none: the defaults alone), or ConfigError naming each problem's
    line; a playbook must be one the catalog has, a preset one its action takes."""
    if path is None:
        return AlertRules()
    document = _document(path)
    rules, problems = yaml_lines.validated(path, document, AlertRules)
    if rules is None:
        raise ConfigError(_listed(problems))
    problems += _playbook_problems(path, document, rules, playbooks)
    problems += _policy_problems(path, document, rules, playbooks)
    if problems:
        raise ConfigError(_listed(problems))
    return rules


def _playbook_problems(
    path: Path, document: yaml_lines.Lined, rules: AlertRules, playbooks: Suggestable
) -> list[str]:
    known = {*playbooks.actions, *playbooks.aliases}
    problems = []
    for index, rule in enumerate(rules.rules):
        for position, name in enumerate(rule.playbooks):
            if name not in known:
                line = _line(document, ("rules", index, "playbooks", position))
                problems.append(
                    f"{path}:{line}: rules.{index}.playbooks: unknown playbook {name!r} "
                    f"(known: {', '.join(sorted(known))})"
                )
        for loc, message in presets.problems(rule.params, playbooks.actions):
            line = _line(document, ("rules", index, "params", *loc))
            problems.append(
                f"{path}:{line}: rules.{index}.params.{'.'.join(map(str, loc))}: {message}"
            )
        for action in rule.params:
            if action not in playbooks.actions:
                line = _line(document, ("rules", index, "params", action))
                problems.append(f"{path}:{line}: rules.{index}.params: unknown action {action!r}")
    return problems


def _policy_problems(
    path: Path, document: yaml_lines.Lined, rules: AlertRules, playbooks: Suggestable
) -> list[str]:
    """What the catalog refuses in each rule's remediation. Its incidents suggest the action
    (route), which lets it run on any kind: the kind is not judged."""
    problems = []
    for index, rule in enumerate(rules.rules):
        if rule.remediation is None:
            continue
        policy = rule.remediation.model_dump()
        for loc, message in policy_problems(policy, None, playbooks):
            line = _line(document, ("rules", index, "remediation", *loc))
            where = ".".join(map(str, ("rules", index, "remediation", *loc)))
            problems.append(f"{path}:{line}: {where}: {message}")
    return problems


def _line(document: yaml_lines.Lined, loc: tuple[str | int, ...]) -> int:
    return yaml_lines.line_through(document, loc)


def _document(path: Path) -> yaml_lines.Lined:
    try:
        return yaml_lines.read_document(
            path, "alert rules file", "a mapping with `defaults:` and `rules:`"
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def _listed(problems: list[str]) -> str:
    return "invalid alert rules:\n  " + "\n  ".join(problems)


def describe(rules: AlertRules) -> Mapping[str, Any]:
    """The rules as data (GET /api/integrations/rules)."""
    return rules.model_dump(mode="json")
