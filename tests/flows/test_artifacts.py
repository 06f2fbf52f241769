"""The plan and result artifacts' markdown (pure), and that an artifact Prefect refuses is a
warning in the run's logs, never the action's failure, and one Prefect does not answer holds
the run no longer than ARTIFACT_SECONDS (real flow runs)."""

import asyncio
import logging
import socket

import pytest
from prefect import flow, get_client
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from prefect.settings import (
    PREFECT_API_URL,
    PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
    temporary_settings,
)

from flows import artifacts
from flows.admission import Admitted
from tests.stack import Stack

pytestmark = [
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

ACTION = Admitted(
    action_id=34,
    incident_id=12,
    action_type="rerun_dbt",
    message="Command: dbt run --select orders --threads 4",
    changes=["Will re-run 1 dbt model", "Model: orders"],
    params={"task_id": "t-1", "models": ["orders"]},
    estimated_duration=30,
    estimated_cost=0.005,
    rollback_of=None,
)


def test_keys_are_what_prefect_allows() -> None:
    assert artifacts.plan_key(34) == "action-34-plan"
    assert artifacts.result_key(34) == "action-34-result"


def test_the_plan_names_the_action_and_links_its_incident() -> None:
    markdown = artifacts.plan_markdown(ACTION, "https://intervene.example.com/")

    assert markdown.startswith("# rerun_dbt · incident 12 · action 34\n")
    assert (
        "Intervene action 34 (rerun_dbt) on "
        "[incident 12](https://intervene.example.com/#/incidents/12)."
    ) in markdown
    assert "- Will re-run 1 dbt model\n- Model: orders\n" in markdown
    assert '| models | ["orders"] |' in markdown
    assert "About 30 s, cost 0.005." in markdown


def test_without_a_public_url_the_incident_is_named_not_linked() -> None:
    markdown = artifacts.plan_markdown(ACTION, None)

    assert "on incident 12." in markdown
    assert "](" not in markdown


def test_a_rollback_says_what_it_undoes() -> None:
    undoing = Admitted(**{**ACTION.__dict__, "action_id": 35, "rollback_of": 34})

    markdown = artifacts.result_markdown(undoing, None, result={"message": "Restored"})

    assert markdown.startswith("# rerun_dbt · incident 12 · rollback of action 34\n")
    assert "Intervene action 35 (rerun_dbt)" in markdown
    assert "**Outcome: success**\n\nRestored\n" in markdown


def test_a_failed_result_gives_the_reason_and_the_models() -> None:
    result = {
        "message": "dbt run failed for: orders",
        "models": [
            {"name": "raw_orders", "status": "success", "execution_time": 0.4, "rows_affected": 9},
            {"name": "orders", "status": "error", "execution_time": 0.1, "rows_affected": None},
        ],
    }

    markdown = artifacts.result_markdown(
        ACTION, None, result=result, failed="dbt run failed for: orders"
    )

    assert "**Outcome: failed**" in markdown
    assert "## Reason\n\ndbt run failed for: orders\n" in markdown
    assert markdown.count("dbt run failed for: orders") == 1
    assert "| raw_orders | success | 0.4 | 9 |" in markdown
    assert "| orders | error | 0.1 |  |" in markdown


async def test_an_artifact_prefect_refuses_is_a_warning_not_a_failure(stack: Stack) -> None:
    @flow(name="artifact-refused")
    async def publishing() -> str:
        await artifacts._publish("Not A Valid Key", "# hello", "refused")
        return "done"

    with temporary_settings(
        {PREFECT_API_URL: stack.env["PREFECT_API_URL"], PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
    ):
        state = await publishing(return_state=True)
        run_id = state.state_details.flow_run_id
        assert run_id is not None
        async with get_client() as prefect:
            for _ in range(60):
                logs = await prefect.read_logs(
                    log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id]))
                )
                warnings = [log.message for log in logs if "could not write" in log.message]
                if warnings:
                    break
                await asyncio.sleep(0.5)

    assert state.is_completed()
    assert warnings
    assert warnings[0].startswith("could not write the artifact Not A Valid Key")


async def test_an_artifact_prefect_does_not_answer_holds_the_run_no_longer_than_its_limit(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Before: a server that stopped answering held the action's work back while Prefect's client
    retried (a minute and more), so its result was recorded late."""
    silent = socket.socket()  # accepts connections and never answers, like a server going down
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    monkeypatch.setattr(artifacts, "ARTIFACT_SECONDS", 1.0)
    logger = logging.getLogger("prefect.flow_runs")
    logger.addHandler(caplog.handler)

    @flow(name="artifact-unanswered")
    async def publishing() -> str:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/api"
        async with PrefectClient(url) as client:
            await artifacts._publish("action-1-plan", "# hello", "unanswered", client)
        return "done"

    try:
        with temporary_settings(
            {
                PREFECT_API_URL: stack.env["PREFECT_API_URL"],
                PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None,
            }
        ):
            state = await publishing(return_state=True)
    finally:
        logger.removeHandler(caplog.handler)
        silent.close()

    assert state.is_completed()
    assert "could not write the artifact action-1-plan: Prefect did not answer within 1 s" in [
        record.getMessage() for record in caplog.records
    ]
