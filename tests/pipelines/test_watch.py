"""Which finished flow runs count (pipelines/watch.py): the settings' filter, Intervene's own
flows never, and what each final state means."""

import pytest

from flows.checks.flow import FLOW_NAME
from flows.registry import FLOWS
from pipelines.watch import OWN_FLOWS, Verdict, Watch

WATCH = Watch(deployments=("etl/*", "reports/daily"), tags=("critical",))


def judge(flow: str, deployment: str | None, state: str = "FAILED", *tags: str) -> Verdict:
    return WATCH.judge(
        flow_name=flow, deployment=deployment, state_type=state, tags=list(tags)
    ).verdict


def test_intervenes_own_flows_are_every_flow_it_serves() -> None:
    assert {*FLOWS, FLOW_NAME} == OWN_FLOWS


@pytest.mark.parametrize(
    ("flow", "deployment", "state", "tags", "verdict"),
    [
        ("etl", "etl/nightly", "FAILED", [], Verdict.FAILURE),
        ("etl", "etl/nightly", "CRASHED", [], Verdict.FAILURE),
        ("etl", "etl/nightly", "COMPLETED", [], Verdict.SUCCESS),
        ("etl", "etl/nightly", "CANCELLED", [], Verdict.IGNORE),
        ("reports", "reports/daily", "FAILED", [], Verdict.FAILURE),
        ("reports", "reports/weekly", "FAILED", [], Verdict.IGNORE),  # not named
        ("reports", "reports/weekly", "FAILED", ["critical"], Verdict.FAILURE),  # its tag
        ("etl", None, "FAILED", ["critical"], Verdict.IGNORE),  # not a deployment's run
        ("rerun_dbt", "rerun_dbt/rerun_dbt", "FAILED", ["critical"], Verdict.IGNORE),
        ("check", "check/triage_quality", "FAILED", ["critical"], Verdict.IGNORE),
        ("etl", "etl/nightly", "FAILED", ["intervene"], Verdict.IGNORE),  # tagged as ours
        ("etl", "etl/nightly", "COMPLETED", ["intervene-retry"], Verdict.SUCCESS),  # a retry
    ],
)
def test_what_a_finished_run_means(
    flow: str, deployment: str | None, state: str, tags: list[str], verdict: Verdict
) -> None:
    assert judge(flow, deployment, state, *tags) is verdict


def test_nothing_is_watched_by_default() -> None:
    nothing = Watch()

    judged = nothing.judge(flow_name="etl", deployment="etl/nightly", state_type="FAILED", tags=[])

    assert not nothing.watches_anything
    assert judged.verdict is Verdict.IGNORE
    assert "not watched" in judged.reason
