"""A check's `remediation:` policy: it loads with its params merged over the check's preset,
and what the catalog refuses in it (unknown action, wrong kind, params, rollback) says its line."""

from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict

from checks.config import ConfigError, Suggestable
from checks.remediation import RemediationPolicy, policy_problems
from models.enums import IncidentKind
from playbooks.catalog import ACTIONS, SUGGESTABLE, load_checks

GOOD = """\
checks:
  - id: fresh
    kind: invariant
    agent: inbox.triage
    query: select 1 as value
    comparison: "<="
    threshold: 300
    priority: critical
    playbooks: [rerun_dbt, rerun_eval]
    params:
      rerun_dbt: {models: [inbox_emails], threads: 2}
"""
KNOWN = (
    "(known: adjust_canary_split, clear_cache, refresh_synonyms, rerun_dbt, rerun_eval, "
    "retry_flow_run, rollback_planner)"
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "checks.yml"
    path.write_text(text)
    return path


def refused(tmp_path: Path, text: str) -> list[str]:
    """Each problem the loader lists, the file's path as `checks.yml`."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        load_checks(path)
    message = str(raised.value).replace(str(path), "checks.yml")
    return message.split("\n  ")[1:]


def with_policy(body: str) -> str:
    """GOOD with a `remediation:` block on line 12, `body`'s lines (from line 13) under it."""
    return GOOD + "    remediation:\n" + "".join(f"      {line}\n" for line in body.splitlines())


def test_an_auto_policy_loads_with_its_params_over_the_checks_preset(tmp_path: Path) -> None:
    text = with_policy(
        "action: rerun_dbt\n"
        "params: {models: [inbox_emails, inbox_threads]}\n"
        "mode: auto\n"
        "verify: true\n"
        "max_attempts: 3\n"
        "rollback_on_failed_verification: false\n"
        "resolve_on_verify: false"
    )

    check = load_checks(write(tmp_path, text))["fresh"]

    assert check.remediation == RemediationPolicy(
        action="rerun_dbt",
        params={"models": ["inbox_emails", "inbox_threads"]},
        mode="auto",
        verify=True,
        max_attempts=3,
        rollback_on_failed_verification=False,
        resolve_on_verify=False,
    )
    assert check.remediation_params() == {"models": ["inbox_emails", "inbox_threads"], "threads": 2}
    assert check.params == {"rerun_dbt": {"models": ["inbox_emails"], "threads": 2}}  # untouched


def test_a_policy_names_only_its_action_and_takes_the_defaults(tmp_path: Path) -> None:
    check = load_checks(write(tmp_path, with_policy("action: rerun_eval")))["fresh"]

    assert check.remediation is not None
    assert check.remediation.model_dump() == {
        "action": "rerun_eval",
        "params": {},
        "mode": "propose",
        "verify": True,
        "max_attempts": 2,
        "rollback_on_failed_verification": False,
        "resolve_on_verify": True,
        "verify_within_seconds": 900,
    }
    assert check.remediation_params() == {}  # no preset for rerun_eval, none of its own


def test_a_policy_without_params_runs_with_the_checks_preset(tmp_path: Path) -> None:
    check = load_checks(write(tmp_path, with_policy("action: rerun_dbt\nmode: propose")))["fresh"]

    assert check.remediation is not None
    assert check.remediation.mode == "propose"
    assert check.remediation_params() == {"models": ["inbox_emails"], "threads": 2}


def test_a_check_without_a_policy_has_no_remediation(tmp_path: Path) -> None:
    check = load_checks(write(tmp_path, GOOD))["fresh"]

    assert check.remediation is None
    assert check.remediation_params() == {}


def test_rollback_on_failed_verification_loads_for_an_action_that_rolls_back(
    tmp_path: Path,
) -> None:
    text = with_policy(
        "action: refresh_synonyms\nmode: auto\nrollback_on_failed_verification: true"
    )

    check = load_checks(write(tmp_path, text))["fresh"]

    assert check.remediation is not None
    assert check.remediation.rollback_on_failed_verification is True


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("action: rerun_dtb",
         f"checks.yml:13: check 'fresh': remediation.action: unknown action 'rerun_dtb' {KNOWN}"),
        ("mode: auto\naction: reduce_traffic",
         "checks.yml:14: check 'fresh': remediation.action: 'reduce_traffic' is a playbook alias: "
         f"a remediation names an action type {KNOWN}"),
        ("action: rollback_planner\nmode: auto",
         "checks.yml:13: check 'fresh': remediation.action: rollback_planner does not apply to "
         "invariant incidents (it applies to: planner)"),
        ("action: rerun_dbt\nparams:\n  models: [inbox_emails]\n  modelz: 5",
         "checks.yml:16: check 'fresh': remediation.params.modelz: unknown param 'modelz' for "
         "rerun_dbt (known: full_refresh, models, task_id, threads, upstream)"),
        ("action: rerun_dbt\nparams:\n  threads: 99",
         "checks.yml:15: check 'fresh': remediation.params.threads: Input should be less than or "
         "equal to 16"),
        ("action: rerun_dbt\nparams: {models: ['inbox emails']}",
         "checks.yml:14: check 'fresh': remediation.params.models.0: String should match pattern "
         "'^[A-Za-z_][A-Za-z0-9_]*$'"),
        ("action: rerun_dbt\nmode: auto\nrollback_on_failed_verification: true",
         "checks.yml:15: check 'fresh': remediation.rollback_on_failed_verification: rerun_dbt "
         "does not support rollback"),
        ("action: rerun_dbt\nsurprise: true",
         "checks.yml:14: check 'fresh': remediation.surprise: Extra inputs are not permitted"),
        ("action: rerun_dbt\nmax_attempts: 0",
         "checks.yml:14: check 'fresh': remediation.max_attempts: Input should be greater than or "
         "equal to 1"),
        ("action: rerun_dbt\nmax_attempts: 11",
         "checks.yml:14: check 'fresh': remediation.max_attempts: Input should be less than or "
         "equal to 10"),
        ("action: rerun_dbt\nmode: always",
         "checks.yml:14: check 'fresh': remediation.mode: Input should be 'auto' or 'propose'"),
        ("mode: auto",
         "checks.yml:12: check 'fresh': remediation.action: Field required"),
        ("action: rerun dbt",
         "checks.yml:13: check 'fresh': remediation.action: String should match pattern "
         "'^[A-Za-z0-9_.-]+$'"),
        ("action: rerun_dbt\nmode: auto\nmode: propose",
         "checks.yml:15: check 'fresh': remediation.mode: given twice (first on line 14)"),
    ],
)  # fmt: skip
def test_what_a_policy_may_not_say_is_refused_on_its_line(
    tmp_path: Path, body: str, expected: str
) -> None:
    assert refused(tmp_path, with_policy(body)) == [expected]


def test_a_policy_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    assert refused(tmp_path, GOOD + "    remediation: rerun_dbt\n") == [
        "checks.yml:12: check 'fresh': remediation: Input should be a valid dictionary or "
        "instance of RemediationPolicy"
    ]


def test_every_problem_of_a_policy_is_listed_with_the_checks_others(tmp_path: Path) -> None:
    text = with_policy(
        "action: rerun_dbt\n"
        "params: {modelz: [a]}\n"
        "max_attempts: 20\n"
        "rollback_on_failed_verification: true"
    ).replace('"<="', '"=<"')

    assert refused(tmp_path, text) == [
        "checks.yml:6: check 'fresh': comparison: Input should be '<', '<=', '>', '>=', '==' or "
        "'!='",
        "checks.yml:15: check 'fresh': remediation.max_attempts: Input should be less than or "
        "equal to 10",
        "checks.yml:14: check 'fresh': remediation.params.modelz: unknown param 'modelz' for "
        "rerun_dbt (known: full_refresh, models, task_id, threads, upstream)",
        "checks.yml:16: check 'fresh': remediation.rollback_on_failed_verification: rerun_dbt does "
        "not support rollback",
    ]


def test_the_action_must_apply_to_the_checks_own_kind(tmp_path: Path) -> None:
    planner = GOOD.replace("kind: invariant", "kind: planner").replace(
        "agent: inbox.triage", "agent: planner"
    )
    text = planner.split("    playbooks:")[0] + "    remediation: {action: rerun_dbt}\n"

    assert refused(tmp_path, text) == [
        "checks.yml:9: check 'fresh': remediation.action: rerun_dbt does not apply to planner "
        "incidents (it applies to: budget, invariant)"
    ]
    text = text.replace("rerun_dbt}", "rollback_planner, rollback_on_failed_verification: true}")
    assert load_checks(write(tmp_path, text))["fresh"].remediation is not None


def test_a_kind_the_schema_refuses_is_said_once(tmp_path: Path) -> None:
    text = with_policy("action: rerun_dbt").replace("kind: invariant", "kind: nope")

    problems = refused(tmp_path, text)

    assert len(problems) == 1
    assert problems[0].startswith("checks.yml:3: check 'fresh': kind: Input should be")


def test_the_catalog_says_where_each_action_applies_and_which_roll_back() -> None:
    assert SUGGESTABLE.applies_to == {name: spec.applies_to for name, spec in ACTIONS.items()}
    assert SUGGESTABLE.rollback == {"refresh_synonyms", "rollback_planner", "adjust_canary_split"}


class _Page(BaseModel):
    model_config = ConfigDict(extra="forbid")

    team: str
    urgent: bool = False


def test_a_policy_is_judged_for_any_kind_of_incident_by_any_catalog() -> None:
    """Not tied to checks: a rule routing an alert judges its policy the same way."""
    catalog = Suggestable({"page": _Page}, applies_to={"page": frozenset({IncidentKind.PIPELINE})})
    policy = {"action": "page", "params": {"urgent": "very"}, "rollback_on_failed_verification": 1}

    assert list(policy_problems(policy, IncidentKind.PIPELINE, catalog)) == [
        (("params", "urgent"), "Input should be a valid boolean, unable to interpret input"),
        (("rollback_on_failed_verification",), "page does not support rollback"),
    ]
    assert list(policy_problems({"action": "page"}, IncidentKind.BUDGET, catalog)) == [
        (("action",), "page does not apply to budget incidents (it applies to: pipeline)")
    ]
    assert list(policy_problems({"action": "page"}, None, catalog)) == []  # kind refused elsewhere
    assert list(
        policy_problems({"action": "page"}, IncidentKind.PIPELINE, Suggestable({"page": _Page}))
    ) == [(("action",), "page does not apply to pipeline incidents (it applies to: none)")]
    assert list(policy_problems({"action": 5}, IncidentKind.PIPELINE, catalog)) == []  # shape
