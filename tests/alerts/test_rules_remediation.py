"""A routing rule's remediation policy in the rules file: validated against the catalog with
the line of each mistake, and its action suggested by the incidents the rule routes."""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from alerts.rules import load_rules
from checks.config import ConfigError
from models.alert import Alert, Signal, Source
from playbooks.catalog import SUGGESTABLE

GOOD = """\
rules:
  - name: stale-tables
    match: {labels: {alertname: WarehouseStale}}
    params: {rerun_dbt: {models: [inbox_emails]}}
    remediation:
      action: rerun_dbt
      mode: auto
      verify_within_seconds: 600
"""

BAD = """\
rules:
  - name: unknown-action
    remediation:
      action: reboot_everything
  - name: bad-params
    remediation:
      action: rerun_dbt
      params: {no_such_param: 1}
  - name: no-rollback
    remediation:
      action: rerun_dbt
      rollback_on_failed_verification: true
"""


def written(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "alert_rules.yml"
    path.write_text(text)
    return path


def test_a_rule_with_a_policy_loads_and_suggests_its_action(tmp_path: Path) -> None:
    rules = load_rules(written(tmp_path, GOOD), SUGGESTABLE)
    policy = rules.policies(mode="auto")["stale-tables"]
    assert (policy.action, policy.verify_within_seconds) == ("rerun_dbt", 600)
    assert rules.policies(mode="propose") == {}
    alert = Alert(
        source=Source.ALERTMANAGER,
        signal=Signal.FIRING,
        key="WarehouseStale:1",
        summary="stale",
        labels={"alertname": "WarehouseStale"},
        at=datetime.now(UTC),
    )
    routed = rules.route(alert)
    assert routed.rule == "stale-tables"
    assert "rerun_dbt" in routed.playbooks


def test_each_mistake_is_named_with_its_line(tmp_path: Path) -> None:
    path = written(tmp_path, BAD)
    with pytest.raises(ConfigError) as refused:
        load_rules(path, SUGGESTABLE)
    said = str(refused.value)
    assert f"{path}:4: rules.0.remediation.action: unknown action 'reboot_everything'" in said
    assert f"{path}:8: rules.1.remediation.params" in said
    assert "no_such_param" in said
    assert f"{path}:12: rules.2.remediation.rollback_on_failed_verification" in said
    assert "does not support rollback" in said
