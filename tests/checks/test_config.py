"""The checks file: the shipped one loads; a bad one says where and what, and loads nothing."""

from pathlib import Path

import pytest

from checks.config import ConfigError
from models.enums import IncidentKind, Severity
from models.settings import Settings
from playbooks.catalog import ACTIONS, ALIASES, SUGGESTABLE, load_checks, presets


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "checks.yml"
    path.write_text(text)
    return path


def refused(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        load_checks(path)
    return str(raised.value).replace(str(path), "checks.yml")


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
            ":6: check 'fresh': comparison: Input should be",  # the field's line
        ),
        (("    threshold: 300\n", ""), ":2: check 'fresh': threshold: Field required"),
        (("priority: critical", "priority: critical\n    severity: sev1"), "exactly one of"),
        (("kind: invariant", "kind: budget"), "names its `budget`"),
        (("kind: invariant", "kind: pipeline"), ":3: check 'fresh': kind: Value error, pipeline"),
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
    assert f"{path}:14: check 'other': threshold: Input should be a valid number" in message
    assert f"{path}:16: check 'fresh': id: duplicate id" in message


ENTRY = GOOD.split("checks:\n")[1]
WRONG = ENTRY.replace('"<="', '"=<"')  # a problem of its own: the comparison


@pytest.mark.parametrize(
    ("first", "second", "own"),
    [
        (WRONG, ENTRY, ["checks.yml:6: check 'fresh': comparison: Input should be"]),
        (ENTRY, WRONG, ["checks.yml:13: check 'fresh': comparison: Input should be"]),
        (WRONG, WRONG, [
            "checks.yml:6: check 'fresh': comparison", "checks.yml:13: check 'fresh': comparison",
        ]),
        (ENTRY, ENTRY + "    threshold: 400\n", ["checks.yml:16: check 'fresh': threshold: given"]),
    ],
)  # fmt: skip
def test_a_duplicate_id_is_reported_whatever_else_is_wrong(
    tmp_path: Path, first: str, second: str, own: list[str]
) -> None:
    message = refused(tmp_path, "checks:\n" + first + second)

    assert "checks.yml:9: check 'fresh': id: duplicate id (first on line 2)" in message
    assert all(problem in message for problem in own)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "checks.yml:1: expected a top-level `checks:` list (the file is empty)"),
        ("# nothing yet\n\n", "checks.yml:1: expected a top-level `checks:` list (the file is"),
        ("# a list\n- just a list\n", "checks.yml:2: expected a top-level `checks:` list"),
        ("just text\n", "checks.yml:1: expected a top-level `checks:` list"),
        ("# c\nchecks: 5\n", "checks.yml:2: expected a top-level `checks:` list"),
        ("# c\n\nchecks:\n", "checks.yml:3: expected a top-level `checks:` list"),
        ("# c\nchek:\n  - id: a\n", "checks.yml:2: expected a top-level `checks:` list"),
        ("checks:\n  - 42\n", "checks.yml:2: each entry under `checks:` must be a mapping"),
        (GOOD + "  - [fresh]\n  - just text\n",
         "checks.yml:9: each entry under `checks:` must be a mapping\n"
         "  checks.yml:10: each entry under `checks:` must be a mapping"),
        ("checks: [{id: a}, 42]\n", "checks.yml:1: each entry under `checks:` must be a mapping"),
    ],
)  # fmt: skip
def test_malformed_files_say_on_which_line(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in refused(tmp_path, text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("checks: [\n", "checks.yml:2: not valid YAML: expected the node content, but found "
         "'<stream end>' (while parsing a flow node)"),
        (GOOD + "    playbooks: [rerun_dbt\n    every: 60\n",
         "checks.yml:10: not valid YAML: expected ',' or ']', but got ':' (while parsing a flow "
         "sequence from line 9)"),
        (GOOD + "   every: 60\n", "checks.yml:9: not valid YAML: expected <block end>, but found"),
        (GOOD + "    agent: *nope\n", "checks.yml:9: not valid YAML: found undefined alias 'nope'"),
        (GOOD + "    description: \x07\n",
         "checks.yml:9: not valid YAML: unacceptable character #x0007"),
    ],
)  # fmt: skip
def test_yaml_errors_name_the_file_and_line(tmp_path: Path, text: str, expected: str) -> None:
    message = refused(tmp_path, text)

    assert expected in message
    assert "<unicode string>" not in message


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="checks file not found"):
        load_checks(tmp_path / "nope.yml")


def test_a_file_that_cannot_be_read_as_text(tmp_path: Path) -> None:
    latin1 = tmp_path / "checks.yml"
    latin1.write_bytes(b"checks:\n  - id: caf\xe9\n")
    with pytest.raises(ConfigError, match=r"checks.yml:2: not UTF-8 text \(byte 19\)"):
        load_checks(latin1)
    with pytest.raises(ConfigError, match="cannot read the checks file: Is a directory"):
        load_checks(tmp_path)


def test_the_playbook_names_are_the_registrys() -> None:
    assert set(SUGGESTABLE.actions) == set(ACTIONS)
    assert SUGGESTABLE.names == set(ACTIONS) | set(ALIASES)


def test_playbooks_must_be_known_and_aliases_are(tmp_path: Path) -> None:
    aliases = GOOD + "    playbooks: [rerun_dbt, reduce_traffic, pause_agent]\n"
    assert load_checks(write(tmp_path, aliases))["fresh"].playbooks[1] == "reduce_traffic"

    message = refused(tmp_path, GOOD + "    playbooks: [rerun_dbt, rerun_dtb]\n")

    assert "checks.yml:9: check 'fresh': playbooks: Value error, unknown playbook 'rerun_dtb'" in (
        message
    )
    assert "(known: adjust_canary_split, clear_cache, pause_agent, reduce_traffic," in message


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("    threshold: 400\n",
         "checks.yml:9: check 'fresh': threshold: given twice (first on line 7)"),
        ("    playbooks: [rerun_dbt]\n    params:\n      rerun_dbt: {models: [a], models: [b]}\n",
         "checks.yml:11: check 'fresh': params.rerun_dbt.models: given twice (first on line 11)"),
        ("checks: []\n", "checks.yml:9: checks: given twice (first on line 1)"),
    ],
)  # fmt: skip
def test_a_key_given_twice_is_refused(tmp_path: Path, extra: str, expected: str) -> None:
    assert expected in refused(tmp_path, GOOD + extra)


BUDGET = """\
  - id: {id}
    kind: budget
    budget: quality
    agent: inbox.triage
    query: select 1 as value
    comparison: ">="
    threshold: 85
    severity: sev2
"""
PLANNER = """\
  - id: {id}
    kind: planner
    agent: planner
    query: select 1 as value, 'v2' as version
    comparison: "<="
    threshold: 5
    severity: sev2
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("checks:\n" + BUDGET.format(id="a") + BUDGET.format(id="b"),
         "checks.yml:12: check 'b': budget: its incidents would share the key "
         "'BUDGET_inbox.triage_quality' with check 'a' (line 2): give each check its own"),
        ("checks:\n" + PLANNER.format(id="a") + PLANNER.format(id="b"),
         "checks.yml:10: check 'b': kind: its incidents would share the key "
         "'PLANNER_<canary version>' with check 'a' (line 2)"),
        (GOOD + GOOD.split("checks:\n")[1].replace("id: fresh", "id: check_fresh_stale"),
         "checks.yml:9: check 'check_fresh_stale': id: its incidents would share the key "
         "'INV_check_fresh_stale' with check 'fresh' (line 2)"),
    ],
)  # fmt: skip
def test_two_checks_sharing_an_incident_key_are_refused(
    tmp_path: Path, text: str, expected: str
) -> None:
    assert expected in refused(tmp_path, text)


def test_budget_checks_of_different_budgets_or_agents_load(tmp_path: Path) -> None:
    text = (
        "checks:\n"
        + BUDGET.format(id="a")
        + BUDGET.format(id="b").replace("budget: quality", "budget: cost")
    )
    assert set(load_checks(write(tmp_path, text))) == {"a", "b"}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ("      rerun_eval: {agent: x}\n", "'rerun_eval' is not an action among the check's"),
        ("      reduce_traffic: {}\n", "'reduce_traffic' is not an action among the check's"),
        ("      rerun_dbt: [inbox_emails]\n", "params.rerun_dbt: Input should be a valid dict"),
    ],
)
def test_params_are_for_the_checks_own_actions(tmp_path: Path, params: str, expected: str) -> None:
    text = GOOD + "    playbooks: [rerun_dbt, reduce_traffic]\n    params:\n" + params

    message = refused(tmp_path, text)

    assert "checks.yml:10: check 'fresh': params" in message
    assert expected in message


def test_params_load(tmp_path: Path) -> None:
    text = GOOD + "    playbooks: [rerun_dbt]\n    params:\n      rerun_dbt: {models: [a]}\n"

    assert load_checks(write(tmp_path, text))["fresh"].params == {"rerun_dbt": {"models": ["a"]}}


PRESETS = GOOD + "    playbooks: [rerun_dbt, rerun_eval, clear_cache]\n    params:\n"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ("      rerun_dbt: {modelz: 5}\n",
         "checks.yml:11: check 'fresh': params.rerun_dbt.modelz: unknown param 'modelz' for "
         "rerun_dbt (known: full_refresh, models, task_id, threads, upstream)"),
        ("      rerun_dbt: {models: []}\n",
         "checks.yml:11: check 'fresh': params.rerun_dbt.models: List should have at least 1 item"),
        ("      rerun_dbt: {models: ['inbox emails']}\n",
         "checks.yml:11: check 'fresh': params.rerun_dbt.models.0: String should match pattern"),
        ("      rerun_dbt:\n        models: [a]\n        threads: 99\n",
         "checks.yml:13: check 'fresh': params.rerun_dbt.threads: Input should be less than or "
         "equal to 16"),
        ("      rerun_eval: {agent: inbox.triage}\n      clear_cache: {cache_types: [all]}\n",
         "checks.yml:12: check 'fresh': params.clear_cache.cache_types.0: Input should be "
         "'query',"),
    ],
)  # fmt: skip
def test_preset_params_are_the_actions_own(tmp_path: Path, params: str, expected: str) -> None:
    message = refused(tmp_path, PRESETS + params)

    assert expected in message
    assert message.count("\n  ") == 1  # the one problem: what the preset leaves out is not one


def test_preset_problems_are_listed_with_the_checks_others(tmp_path: Path) -> None:
    text = PRESETS.replace('"<="', '"=<"') + "      rerun_dbt: {modelz: 5}\n"

    message = refused(tmp_path, text)

    assert "checks.yml:6: check 'fresh': comparison: Input should be" in message
    assert "checks.yml:11: check 'fresh': params.rerun_dbt.modelz: unknown param" in message


def test_loaded_presets_complete_the_actions_params(tmp_path: Path) -> None:
    params = "      rerun_dbt: {models: [a], threads: 2}\n      rerun_eval: {checks: [fresh]}\n"
    check = load_checks(write(tmp_path, PRESETS + params))["fresh"]
    metadata = {"agent": check.agent, "playbook_params": check.params}

    for action_type in ("rerun_dbt", "rerun_eval"):
        drawn = presets(action_type, incident_id=7, key="INV_fresh", details={}, metadata=metadata)
        ACTIONS[action_type].params_model.model_validate(drawn)  # as a dry-run would
