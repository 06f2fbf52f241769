"""The checks file: the shipped one loads; a bad one says where and what, and loads nothing."""

from pathlib import Path

import pytest

from flows.checks.config import ConfigError, load_checks
from models.enums import IncidentKind, Severity
from models.settings import Settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "checks.yml"
    path.write_text(text)
    return path


GOOD = """\
checks:
  - id: fresh
    kind: invariant
    agent: inbox.triage
    query: select 1 as value
    comparison: "<="
    threshold: 300
    priority: critical
"""


def test_the_shipped_checks_load() -> None:
    checks = load_checks(Settings().checks_file)

    assert set(checks) == {
        "data_freshness_inbox", "triage_quality", "triage_latency", "triage_cost",
        "planner_canary",
    }  # fmt: skip
    assert checks["data_freshness_inbox"].incident_severity is Severity.SEV1
    assert checks["triage_quality"].incident_severity is Severity.SEV2
    assert checks["triage_latency"].incident_key({}) == "BUDGET_inbox.triage_latency_p95_ms"
    assert checks["planner_canary"].incident_key({"version": "v1.2.3"}) == "PLANNER_v1.2.3"
    assert checks["data_freshness_inbox"].incident_key({}) == "INV_data_freshness_inbox"


def test_priority_maps_to_severity_and_comparisons_work(tmp_path: Path) -> None:
    check = load_checks(write(tmp_path, GOOD))["fresh"]

    assert check.kind is IncidentKind.INVARIANT
    assert check.incident_severity is Severity.SEV1
    assert check.passes(300) is True
    assert check.passes(300.5) is False


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            ('comparison: "<="', 'comparison: "=<"'),
            ":2: check 'fresh': comparison: Input should be",
        ),
        (("    threshold: 300\n", ""), ":2: check 'fresh': threshold: Field required"),
        (("priority: critical", "priority: critical\n    severity: sev1"), "exactly one of"),
        (("kind: invariant", "kind: budget"), "names its `budget`"),
        (("every: 60", ""), None),
        (("    agent: inbox.triage\n", "    agent: inbox triage\n"), "agent: String should match"),
        (("query: select 1 as value", "query: select 1\n    surprise: true"), "surprise: Extra"),
    ],
)
def test_errors_name_the_file_line_and_field(
    tmp_path: Path, edit: tuple[str, str], expected: str | None
) -> None:
    path = write(tmp_path, GOOD.replace(*edit))

    if expected is None:
        assert "fresh" in load_checks(path)
        return
    with pytest.raises(ConfigError) as raised:
        load_checks(path)
    assert f"{path}{expected}" in str(raised.value) or expected in str(raised.value)
    assert str(path) in str(raised.value)


def test_every_problem_is_reported_and_nothing_is_loaded(tmp_path: Path) -> None:
    second = GOOD.split("checks:\n")[1].replace("fresh", "other").replace("300", "'high'")
    path = write(tmp_path, GOOD + second + GOOD.split("checks:\n")[1])

    with pytest.raises(ConfigError) as raised:
        load_checks(path)

    message = str(raised.value)
    assert f"{path}:9: check 'other': threshold" in message
    assert f"{path}:16: check 'fresh': duplicate id" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("checks: [\n", "not valid YAML"),
        ("- just a list\n", "expected a top-level `checks:` list"),
        ("checks:\n  - 42\n", "must be a mapping"),
    ],
)
def test_malformed_files(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_checks(write(tmp_path, text))


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="checks file not found"):
        load_checks(tmp_path / "nope.yml")
