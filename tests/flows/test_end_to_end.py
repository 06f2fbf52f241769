"""Execute rerun_dbt through the API on a real Prefect server, worker, dbt and DuckDB."""

import asyncio
import time
from typing import Any
from uuid import UUID

import duckdb
import pytest
from httpx import AsyncClient
from prefect import get_client
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.settings import PREFECT_API_URL, temporary_settings

from deployments.stack import wait_for_deployment
from models.installation import action_run_tags
from tests.receiver import Receiver
from tests.stack import Stack

# Prefect's client leaves sockets to its server for the garbage collector; not ours to fix.
pytestmark = [
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

BODY = {
    "action_type": "rerun_dbt",
    "params": {"task_id": "e2e", "models": ["triage_results"], "upstream": True},
}


async def open_incident(client: AsyncClient, key: str) -> int:
    response = await client.post(
        "/api/incidents",
        json={"kind": "invariant", "key": key, "severity": "sev2", "summary": "stale triage",
              "playbooks": ["rerun_dbt"]},
    )  # fmt: skip
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def triage_rows(stack: Stack) -> tuple[int, Any]:
    path = stack.settings.warehouse_url.removeprefix("duckdb:///")
    with duckdb.connect(path, read_only=True) as conn:
        row = conn.execute("select count(*), max(triaged_at) from triage_results").fetchone()
    assert row is not None
    return int(row[0]), row[1]


async def test_execute_runs_dbt_on_the_worker_and_reports_success(
    stack: Stack, stack_client: AsyncClient
) -> None:
    incident_id = await open_incident(stack_client, "INV_e2e_success")
    _, built_before = triage_rows(stack)

    response = await stack_client.post(
        f"/api/playbooks/incidents/{incident_id}/actions/execute?wait=120", json=BODY
    )

    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "success", body
    assert body["message"] == "Successfully ran 2 model(s)"
    assert [m["name"] for m in body["result"]["models"]] == ["inbox_emails", "triage_results"]
    assert all(m["status"] == "success" for m in body["result"]["models"])
    assert body["actual_duration"] > 0
    assert body["logs_url"].endswith(f"/runs/flow-run/{body['flow_run_id']}")
    count, built_after = triage_rows(stack)
    assert count == 200
    assert built_after > built_before  # the model was rebuilt by this run
    # the action is recorded as the work ends (flows/hooks.py finish); Prefect hears that the
    # run completed a moment later, after the result artifact
    with temporary_settings({PREFECT_API_URL: stack.env["PREFECT_API_URL"]}):
        async with get_client() as prefect:
            deadline = time.monotonic() + 60
            run = await prefect.read_flow_run(body["flow_run_id"])
            while run.state is not None and not run.state.is_final():
                assert time.monotonic() < deadline, f"still {run.state.name} after 60 s"
                await asyncio.sleep(0.5)
                run = await prefect.read_flow_run(body["flow_run_id"])
    assert run.state is not None
    assert run.state.is_completed()
    assert f"action:{body['action_id']}" in run.tags


async def test_a_worker_killed_mid_run_ends_crashed_not_running(
    stack: Stack, stack_client: AsyncClient
) -> None:
    incident_id = await open_incident(stack_client, "INV_e2e_crash")
    started = await stack_client.post(
        f"/api/playbooks/incidents/{incident_id}/actions/execute", json=BODY
    )
    action_id = started.json()["action_id"]
    history_url = f"/api/playbooks/incidents/{incident_id}/actions/history"

    async def status() -> str:
        actions = (await stack_client.get(history_url)).json()["actions"]
        return str(next(a["status"] for a in actions if a["id"] == action_id))

    deadline = time.monotonic() + 60
    while await status() != "running":
        assert time.monotonic() < deadline, "the action never started running"
        await asyncio.sleep(0.05)
    stack.kill_worker()  # SIGKILL the runner and the flow's subprocess: no hook can run
    assert await status() == "running"

    stack.start_worker()  # its reconciler finds the silent action
    deadline = time.monotonic() + 60
    while (current := await status()) == "running":
        assert time.monotonic() < deadline, "the reconciler never repaired the action"
        await asyncio.sleep(0.5)

    assert current == "crashed"
    actions = (await stack_client.get(history_url)).json()["actions"]
    assert "No heartbeat" in next(a["message"] for a in actions if a["id"] == action_id)


async def test_a_scheduled_check_served_by_the_worker_opens_an_incident(
    stack: Stack, stack_client: AsyncClient
) -> None:
    """The worker also runs each check once at start-up: only a run that Prefect's scheduler
    created (auto-scheduled, not tagged `startup`, not skipped as late) and that was recorded,
    found by its flow run id, proves the schedule."""
    # the stack is ready once the playbooks are served; the checks' deployments may follow
    await asyncio.to_thread(
        wait_for_deployment, stack.env["PREFECT_API_URL"], "check/e2e_always_failing"
    )
    with temporary_settings({PREFECT_API_URL: stack.env["PREFECT_API_URL"]}):
        async with get_client() as prefect:
            deployment = await prefect.read_deployment_by_name("check/e2e_always_failing")
            deadline = time.monotonic() + 120
            while True:
                scheduled = await scheduled_runs_done(prefect, deployment.id)
                runs = (await stack_client.get("/api/checks/e2e_always_failing/runs")).json()[
                    "runs"
                ]
                if scheduled and len(runs) >= 2:
                    break
                assert time.monotonic() < deadline, "no scheduled run of the check completed"
                await asyncio.sleep(1)
    assert deployment.schedules
    assert all(run.state and run.state.is_failed() for run in scheduled)  # the check fails

    flow_runs = {str(flow.id) for flow in scheduled}
    from_schedule = [run for run in runs if run["flow_run_id"] in flow_runs]
    assert from_schedule, (runs, flow_runs)
    assert {run["trigger"] for run in from_schedule} == {"schedule"}
    incident = (await stack_client.get(f"/api/incidents/{runs[-1]['incident_id']}")).json()
    assert incident["key"] == "INV_e2e_always_failing"
    assert incident["metadata"]["auto_created"] is True
    assert incident["details"]["invariant"] == {
        "id": "e2e_always_failing", "threshold": 0, "actual": 200.0, "comparison": "<",
    }  # fmt: skip
    assert from_schedule[0]["incident_id"] == incident["id"]
    assert incident["occurrence_count"] >= 2
    listed = (await stack_client.get("/api/incidents", params={"kind": "invariant"})).json()
    # the schedule keeps running: compare what does not change with each recurrence
    assert [(i["key"], i["details"], i["metadata"]) for i in listed["incidents"]
            if i["id"] == incident["id"]] == [
        (incident["key"], incident["details"], incident["metadata"])
    ]  # fmt: skip


async def scheduled_runs_done(prefect: PrefectClient, deployment_id: UUID) -> list[FlowRun]:
    """The deployment's flow runs that its schedule created and that ran the check to the end
    (Failed: the check fails; not those Completed as "Skipped as late")."""
    runs = await prefect.read_flow_runs(
        deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
        flow_run_filter=FlowRunFilter(
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.FAILED]))
        ),
    )
    return [
        run for run in runs
        if run.auto_scheduled and "startup" not in run.tags and run.start_time and run.end_time
    ]  # fmt: skip


async def test_the_reconciler_finds_or_fails_actions_that_lost_their_flow_run(
    stack: Stack, stack_client: AsyncClient
) -> None:
    from datetime import timedelta

    from prefect.states import Cancelled

    from deployments.reconciler import reconcile_once
    from models.base import utcnow
    from models.db import connect, transaction
    from models.enums import ActionStatus
    from models.services.actions import NewAction, record_action
    from models.services.installation import installation_id

    incident_id = await open_incident(stack_client, "INV_e2e_lost")
    database = connect(stack.settings.database_url)
    try:
        with temporary_settings({PREFECT_API_URL: stack.env["PREFECT_API_URL"]}):
            async with get_client() as prefect:
                ids = []
                # The run is created before the actions commit: the worker's own reconciler,
                # which may get there first, must never see the first action without its run.
                async with transaction(database.writer) as session:
                    for _ in range(2):  # recorded, but the API stopped before it saw a flow run
                        action = await record_action(
                            session,
                            new=NewAction(
                                incident_id=incident_id, action_type="rerun_dbt", params={},
                                dry_run=False, requested_by="e2e", message="m", details={},
                                changes=[], estimated_duration=1, estimated_cost=0.0,
                                requires_approval=False,
                            ),
                            status=ActionStatus.PENDING,
                            at=utcnow() - timedelta(minutes=5),
                        )  # fmt: skip
                        ids.append(action.id)
                    deployment = await prefect.read_deployment_by_name("rerun_dbt/rerun_dbt")
                    tags = action_run_tags(await installation_id(session), ids[0], incident_id)
                    run = await prefect.create_flow_run_from_deployment(
                        deployment.id, tags=tags, state=Cancelled(),
                        parameters={"action_id": ids[0], "params": {}},
                    )  # fmt: skip
                # the worker's own reconciler may get there first; either way, same outcome
                await reconcile_once(database, prefect, stack.settings)
    finally:
        await database.dispose()

    history = (
        await stack_client.get(f"/api/playbooks/incidents/{incident_id}/actions/history")
    ).json()["actions"]
    assert [(a["status"], a["flow_run_id"]) for a in history] == [
        ("cancelled", str(run.id)),
        ("failed", None),
    ]
    assert "Never started" in history[1]["message"]


async def test_the_worker_delivers_webhooks(stack_client: AsyncClient, receiver: Receiver) -> None:
    hook = await stack_client.post("/api/webhooks", json={
        "url": receiver.url, "event_types": ["incident_created"], "kinds": ["budget"]})  # fmt: skip
    assert hook.status_code == 201, hook.text
    body = {"kind": "budget", "key": "BUDGET_e2e_hook", "severity": "sev2", "summary": "e2e hook"}
    incident = (await stack_client.post("/api/incidents", json=body)).json()

    deadline = time.monotonic() + 30
    while not receiver.requests and time.monotonic() < deadline:
        await asyncio.sleep(0.2)

    [request] = receiver.requests
    assert request.headers["x-intervene-event"] == "incident_created"
    assert request.headers["x-intervene-signature"].startswith("v1=")
    assert f'"id":{incident["id"]}' in request.body.decode()
    statuses: list[str] = []
    while statuses != ["succeeded"] and time.monotonic() < deadline:  # recorded just after
        await asyncio.sleep(0.2)
        page = await stack_client.get(f"/api/webhooks/{hook.json()['id']}/deliveries")
        statuses = [d["status"] for d in page.json()["deliveries"]]
    assert statuses == ["succeeded"]
