"""Escalation policies in the on-call file: which policy an incident gets, and every mistake
refused at load with its line (unknown people, schedules and channels included)."""

from pathlib import Path

import pytest
from httpx import AsyncClient

from checks.config import ConfigError
from models.enums import IncidentKind, Severity
from models.settings import Settings
from oncall.policies import policy_for
from oncall.schedules import load_oncall
from tests.oncall.test_schedules import GOOD

POLICIES = (
    GOOD
    + """\
channels:
  - id: ops
    slack_channel: C0OPS0001
policies:
  - name: urgent-data
    match: {severity: [sev1], key: "data_*"}
    steps:
      - notify: {schedule: primary}
        wait_minutes: 5
      - notify: {person: grace}
  - name: rest
    steps:
      - notify: {channel: ops}
"""
)


def refused(tmp_path: Path, text: str) -> str:
    path = tmp_path / "oncall.yml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_oncall(path)
    return str(caught.value).replace(f"{tmp_path / 'oncall.yml'}:", "line ")


def test_the_first_policy_that_fits_is_the_incidents(tmp_path: Path) -> None:
    demo = load_oncall(Settings(_env_file=None).oncall_file).policies  # type: ignore[call-arg]
    picked = [
        getattr(policy_for(demo, kind, severity, "x"), "name", None)
        for kind, severity in [
            (IncidentKind.ALERT, Severity.SEV1),
            (IncidentKind.PLANNER, Severity.SEV3),
            (IncidentKind.ALERT, Severity.SEV4),
        ]
    ]
    assert picked == ["data-urgent", "ml", "everything-else"]
    path = tmp_path / "oncall.yml"
    path.write_text(POLICIES)
    policies = load_oncall(path).policies
    urgent = policy_for(policies, IncidentKind.INVARIANT, Severity.SEV1, "data_freshness")
    assert urgent is not None
    assert [s.wait_minutes for s in urgent.steps] == [5, 5]
    other = policy_for(policies, IncidentKind.INVARIANT, Severity.SEV1, "cost_budget")
    assert other is not None
    assert other.name == "rest"
    assert policy_for(policies[:1], IncidentKind.ALERT, Severity.SEV2, "data_x") is None


def test_a_step_naming_someone_the_file_does_not_know_is_refused_with_its_line(
    tmp_path: Path,
) -> None:
    said = refused(tmp_path, POLICIES.replace("{person: grace}", "{person: alan}"))
    assert "line 26: policies.0.steps.1.notify.person: unknown person 'alan'" in said
    said = refused(tmp_path, POLICIES.replace("{channel: ops}", "{channel: pager}"))
    assert "line 29: policies.1.steps.0.notify.channel: unknown channel 'pager'" in said
    said = refused(tmp_path, POLICIES.replace("{schedule: primary}", "{schedule: nights}"))
    assert "line 24: policies.0.steps.0.notify.schedule: unknown schedule 'nights'" in said


def test_a_step_names_exactly_one_target_and_a_policy_has_steps(tmp_path: Path) -> None:
    said = refused(tmp_path, POLICIES.replace("{person: grace}", "{person: grace, channel: ops}"))
    assert "line 26: policies.0.steps.1.notify: Value error, name exactly one of" in said
    said = refused(tmp_path, POLICIES.replace("[sev1]", "[sev9]"))
    assert "line 22: policies.0.match.severity.0: Input should be 'sev1'" in said
    said = refused(tmp_path, POLICIES.replace("  - name: rest\n", "  - name: urgent-data\n"))
    assert "policies.1: 'urgent-data' is also policies.0" in said
    said = refused(tmp_path, POLICIES.replace("    slack_channel: C0OPS0001\n", ""))
    assert "channels.0: Value error, give slack_channel, email or both" in said


async def test_the_api_lists_the_policies_in_the_order_they_are_tried(
    client: AsyncClient,
) -> None:
    body = (await client.get("/api/oncall/policies")).json()
    assert [p["name"] for p in body["policies"]] == ["data-urgent", "ml", "everything-else"]
    assert body["policies"][0]["steps"][0] == {
        "notify": {"schedule": "data-platform", "person": None, "channel": None},
        "wait_minutes": 5,
    }
    assert body["channels"] == [
        {"id": "data-alerts", "slack_channel": "C0DATA0001", "email": "data-alerts@example.com"}
    ]
