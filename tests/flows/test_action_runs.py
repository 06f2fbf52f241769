"""What an action's run tells in Prefect, on a real Prefect server: its name, its plan and
result artifacts, dbt's per-model lines in its logs, a persisted result; and admission: a run
that is not the one Intervene started for a pending action ends Failed saying why."""

import asyncio
import time
from typing import Any
from uuid import UUID

import pytest
from httpx import AsyncClient
from prefect import flow, get_client
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterKey,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.client.schemas.objects import FlowRun
from prefect.deployments.flow_runs import arun_deployment
from prefect.settings import (
    PREFECT_API_URL,
    PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
    temporary_settings,
)

from flows.rerun_dbt import _invoke_dbt, rerun_dbt
from integrations.warehouse import DbtProject
from models.base import utcnow
from models.db import connect, transaction
from models.enums import ActionStatus
from models.installation import action_run_key, action_run_tags
from models.services.actions import NewAction, record_action
from models.services.installation import installation_id
from playbooks.actions.rerun_dbt import Params
from tests.factories import create_incident
from tests.fakes import RecordingLauncher
from tests.stack import Stack

# Prefect's client leaves sockets to its server for the garbage collector; not ours to fix.
pytestmark = [
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

PARAMS = {"task_id": "story", "models": ["triage_results"], "upstream": True}
BODY = {"action_type": "rerun_dbt", "params": PARAMS}


async def open_incident(client: AsyncClient, key: str) -> int:
    response = await client.post(
        "/api/incidents",
        json={"kind": "invariant", "key": key, "severity": "sev2", "summary": "stale triage",
              "playbooks": ["rerun_dbt"]},
    )  # fmt: skip
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def artifact(prefect: PrefectClient, key: str) -> str:
    found = await prefect.read_artifacts(
        artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
    )
    assert found, f"no artifact {key}"
    return str(found[-1].data)


async def model_lines(prefect: PrefectClient, flow_run_id: UUID, count: int) -> list[str]:
    """The run's `model ...` log lines, once `count` arrived (a run ships its logs in batches,
    the last when its process exits)."""
    deadline = time.monotonic() + 30
    while True:
        logs = await prefect.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))
        )
        lines = [log.message for log in logs if log.message.startswith("model ")]
        if len(lines) >= count or time.monotonic() > deadline:
            return lines if lines else [log.message for log in logs]
        await asyncio.sleep(0.5)


async def final(prefect: PrefectClient, flow_run_id: UUID, seconds: float = 120) -> FlowRun:
    deadline = time.monotonic() + seconds
    while True:
        run = await prefect.read_flow_run(flow_run_id)
        if run.state is not None and run.state.is_final():
            return run
        assert time.monotonic() < deadline, f"flow run {flow_run_id} never ended: {run.state}"
        await asyncio.sleep(0.5)


async def test_an_executed_action_tells_its_story_in_prefect(
    stack: Stack, stack_client: AsyncClient
) -> None:
    incident_id = await open_incident(stack_client, "INV_story")

    response = await stack_client.post(
        f"/api/playbooks/incidents/{incident_id}/actions/execute?wait=120", json=BODY
    )

    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "success", body
    action_id = body["action_id"]
    with temporary_settings({PREFECT_API_URL: stack.env["PREFECT_API_URL"]}):
        async with get_client() as prefect:
            run = await final(prefect, UUID(body["flow_run_id"]))
            plan = await artifact(prefect, f"action-{action_id}-plan")
            result = await artifact(prefect, f"action-{action_id}-result")
            assert run.state is not None
            returned: Any = await run.state.result()  # type: ignore[misc]

    assert run.name == f"rerun_dbt · incident {incident_id} · action {action_id}"
    assert run.state.is_completed()
    assert run.state.data is not None  # persisted: Prefect can show and track it
    assert returned["message"] == "Successfully ran 2 model(s)"
    assert f"Intervene action {action_id} (rerun_dbt) on incident {incident_id}" in plan
    assert "Command: dbt run --select +triage_results" in plan
    assert "- Model: triage_results" in plan
    assert '| models | ["triage_results"] |' in plan
    assert "## Estimate" in plan
    assert "**Outcome: success**" in result
    assert "| model | status | duration (s) | rows |" in result
    assert "| inbox_emails | success |" in result
    assert "| triage_results | success |" in result


async def test_dbt_model_lines_reach_the_run_logs(stack: Stack, warehouse: DbtProject) -> None:
    """rerun_dbt's dbt step inside a flow run here (the stack's worker logs only warnings):
    one line per model in the run's logs on the Prefect server."""

    @flow(name="dbt-step")
    def dbt_step() -> dict[str, Any]:
        return _invoke_dbt(Params.model_validate(PARAMS), ["inbox_emails", "triage_results"],
                           warehouse)  # fmt: skip

    with temporary_settings(
        {PREFECT_API_URL: stack.env["PREFECT_API_URL"], PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
    ):
        state = await asyncio.to_thread(dbt_step, return_state=True)
        assert state.state_details.flow_run_id is not None
        async with get_client() as prefect:
            lines = await model_lines(prefect, state.state_details.flow_run_id, 2)

    assert state.is_completed()
    assert [line.split(":")[0] for line in lines] == ["model inbox_emails", "model triage_results"]
    assert all(": success in " in line and line.endswith((" s", " rows)")) for line in lines)
    if warehouse.warehouse_url.startswith("postgresql"):
        assert lines[-1].endswith("(200 rows)")


async def test_a_run_from_prefect_for_no_pending_action_fails_saying_why(
    stack: Stack, stack_client: AsyncClient
) -> None:
    """Run from the Prefect UI: for an action that does not exist, and for one that already
    ended. Neither is a green no-op; the finished action is left as it was."""
    incident_id = await open_incident(stack_client, "INV_refused")
    done = await stack_client.post(
        f"/api/playbooks/incidents/{incident_id}/actions/execute?wait=120", json=BODY
    )
    assert done.json()["status"] == "success", done.json()
    finished = done.json()["action_id"]

    with temporary_settings({PREFECT_API_URL: stack.env["PREFECT_API_URL"]}):
        async with get_client() as prefect:
            runs = {}
            for action_id in (999_999, finished):
                started = await arun_deployment(
                    "rerun_dbt/rerun_dbt",
                    parameters={"action_id": action_id, "params": PARAMS},
                    timeout=0,
                    as_subflow=False,
                )
                runs[action_id] = await final(prefect, started.id)

    missing, again = runs[999_999], runs[finished]
    assert missing.state is not None
    assert missing.state.is_failed()
    assert "action 999999 does not exist" in str(missing.state.message)
    assert missing.name == "rerun_dbt · action 999999"  # started without a name
    assert again.state is not None
    assert again.state.is_failed()
    assert f"action {finished} is already success: start it from Intervene" in str(
        again.state.message
    )
    history = (
        await stack_client.get(f"/api/playbooks/incidents/{incident_id}/actions/history")
    ).json()["actions"]
    assert [(a["id"], a["status"]) for a in history] == [(finished, "success")]


async def test_a_second_run_for_a_pending_action_fails_and_leaves_the_action_alone(
    stack: Stack, client: AsyncClient, launcher: RecordingLauncher, flow_env: None
) -> None:
    """The action is scheduled with its own run (the recording launcher's); another run of its
    deployment, here this process, may not act for it, and its failure is not the action's."""
    incident = await create_incident(client)
    started = await client.post(
        f"/api/playbooks/incidents/{incident['id']}/actions/execute", json=BODY
    )
    assert started.status_code == 200, started.text
    action_id = started.json()["action_id"]

    with temporary_settings(
        {PREFECT_API_URL: stack.env["PREFECT_API_URL"], PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
    ):
        state = await rerun_dbt(**launcher.launches[-1].parameters, return_state=True)
        async with get_client() as prefect:
            assert state.state_details.flow_run_id is not None
            run = await prefect.read_flow_run(state.state_details.flow_run_id)

    assert state.is_failed()
    assert f"this run is not the one Intervene started for action {action_id}" in str(state.message)
    assert run.name == f"rerun_dbt · action {action_id}"
    history = (
        await client.get(f"/api/playbooks/incidents/{incident['id']}/actions/history")
    ).json()["actions"]
    assert [(a["id"], a["status"]) for a in history] == [(action_id, "scheduled")]


async def test_a_failing_action_ends_failed_with_its_reason(
    stack: Stack, stack_client: AsyncClient
) -> None:
    """The run Intervene asked for but whose id it never recorded (a launch that timed out) is
    admitted by its idempotency key; its failure is the action's, with the reason, in Prefect
    and in the result artifact."""
    incident_id = await open_incident(stack_client, "INV_failing")
    params = {"task_id": "t", "models": ["ghost"]}
    database = connect(stack.settings.database_url)
    try:
        async with transaction(database.writer) as session:
            action = await record_action(
                session,
                new=NewAction(
                    incident_id=incident_id, action_type="rerun_dbt", params=params,
                    dry_run=False, requested_by="e2e", message="m", details={}, changes=[],
                    estimated_duration=1, estimated_cost=0.0, requires_approval=False,
                ),
                status=ActionStatus.PENDING,
                at=utcnow(),
            )  # fmt: skip
            installation = await installation_id(session)
    finally:
        await database.dispose()
    with temporary_settings({PREFECT_API_URL: stack.env["PREFECT_API_URL"]}):
        async with get_client() as prefect:
            deployment = await prefect.read_deployment_by_name("rerun_dbt/rerun_dbt")
            created = await prefect.create_flow_run_from_deployment(
                deployment.id,
                parameters={"action_id": action.id, "params": params},
                idempotency_key=action_run_key(installation, action.id),
                tags=action_run_tags(installation, action.id, incident_id),
            )
            run = await final(prefect, created.id)
            result = await artifact(prefect, f"action-{action.id}-result")

    assert run.state is not None
    assert run.state.is_failed()
    assert "ghost" in str(run.state.message)
    assert "**Outcome: failed**" in result
    assert "## Reason" in result
    assert "ghost" in result
    history_url = f"/api/playbooks/incidents/{incident_id}/actions/history"
    deadline = time.monotonic() + 30
    while (history := (await stack_client.get(history_url)).json()["actions"])[0]["status"] in (
        "pending", "scheduled", "running",
    ):  # fmt: skip
        assert time.monotonic() < deadline, history
        await asyncio.sleep(0.2)
    assert history[0]["status"] == "failed"
    assert "ghost" in history[0]["message"]
