"""The production path end to end (issue 17): a real Prefect server, `intervene prefect setup`,
`prefect deploy --all` from prefect.yaml, a process work pool worker, `intervene services` and
the API (in this process, with the real PrefectLauncher); see tests/pool.py.

Runs in CI with the rest of the suite (about 3-4 minutes on 2 cores): the module's own timeout
is long enough for a busy machine, and every wait has a deadline, not a timing assertion. The
crash bounds printed here (`-s`) are the ones docs/operations.md states.
"""

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from prefect.settings import PREFECT_API_URL, temporary_settings

from api.launcher import PrefectLauncher
from api.main import create_app
from deployments.prefect_setup import REPORT_AUTOMATION, ZOMBIE_AUTOMATION
from models.base import utcnow
from models.db import transaction
from models.services.planner import set_traffic
from tests.auth import bearer, issue
from tests.pool import TOKEN, ZOMBIE_SECONDS, PoolStack, pool_stack, wait_until

__all__ = ["pool_stack"]  # the module's fixture

# Prefect's client leaves sockets to its server for the garbage collector; not ours to fix.
pytestmark = [
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
    pytest.mark.timeout(900),  # the first test also waits for the whole stack to start
]

RERUN_DBT = {
    "action_type": "rerun_dbt",
    "params": {"task_id": "pool", "models": ["triage_results"], "upstream": True},
}


@pytest.fixture(scope="module")
async def pool_app(pool_stack: PoolStack) -> AsyncIterator[FastAPI]:
    with temporary_settings({PREFECT_API_URL: pool_stack.api_url}):
        app = create_app(pool_stack.settings, launcher=PrefectLauncher())
        async with app.router.lifespan_context(app):
            yield app


@pytest.fixture
async def api(pool_app: FastAPI) -> AsyncIterator[AsyncClient]:
    headers = bearer(await issue(pool_app.state.db))
    async with AsyncClient(
        transport=ASGITransport(app=pool_app), base_url="http://test", timeout=180,
        headers=headers,
    ) as http:  # fmt: skip
        yield http


@pytest.fixture
async def prefect(pool_stack: PoolStack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=pool_stack.api_url, timeout=10) as http:
        yield http


async def open_incident(api: AsyncClient, **fields: Any) -> int:
    body = {"kind": "invariant", "severity": "sev2", "summary": "pool path"} | fields
    response = await api.post("/api/incidents", json=body)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def action(api: AsyncClient, incident_id: int, action_id: int) -> dict[str, Any]:
    history = await api.get(f"/api/playbooks/incidents/{incident_id}/actions/history")
    found: dict[str, Any] = next(a for a in history.json()["actions"] if a["id"] == action_id)
    return found


async def flow_run(prefect: httpx.AsyncClient, run_id: str) -> dict[str, Any]:
    response = await prefect.get(f"/flow_runs/{run_id}")
    response.raise_for_status()
    run: dict[str, Any] = response.json()
    return run


async def automation(prefect: httpx.AsyncClient, name: str) -> dict[str, Any]:
    response = await prefect.post("/automations/filter", json={})
    found: dict[str, Any] = next(a for a in response.json() if a["name"] == name)
    return found


async def heartbeats(prefect: httpx.AsyncClient, run_id: str) -> list[dict[str, Any]]:
    response = await prefect.post("/events/filter", json={"filter": {
        "event": {"name": ["prefect.flow-run.heartbeat"]},
        "resource": {"id": [f"prefect.flow-run.{run_id}"]},
    }})  # fmt: skip
    events: list[dict[str, Any]] = response.json()["events"]
    return events


def test_prefect_setup_again_changes_nothing(pool_stack: PoolStack) -> None:
    out = pool_stack.cli(*pool_stack.setup_args)

    lines = out.splitlines()
    assert len(lines) == 4, out
    assert all(line.endswith(": unchanged") for line in lines), out


async def test_setup_made_the_pool_heartbeats_and_the_automations(
    pool_stack: PoolStack, prefect: httpx.AsyncClient
) -> None:
    pool = (await prefect.get("/work_pools/intervene")).json()
    assert pool["type"] == "process"
    env = pool["base_job_template"]["variables"]["properties"]["env"]["default"]
    assert env == {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30"}

    zombie = await automation(prefect, ZOMBIE_AUTOMATION)
    trigger = zombie["trigger"]
    assert trigger["posture"] == "Proactive"
    assert trigger["after"] == ["prefect.flow-run.heartbeat"]
    assert "prefect.flow-run.heartbeat" in trigger["expect"]
    assert trigger["within"] == ZOMBIE_SECONDS
    assert trigger["match_related"] == {
        "prefect.resource.role": "tag", "prefect.resource.id": "prefect.tag.intervene",
    }  # fmt: skip
    assert [(a["type"], a["state"]) for a in zombie["actions"]] == [
        ("change-flow-run-state", "CRASHED")
    ]

    report = await automation(prefect, REPORT_AUTOMATION)
    assert sorted(report["trigger"]["expect"]) == [
        "prefect.flow-run.Completed",
        "prefect.flow-run.Crashed",
        "prefect.flow-run.Failed",
    ]
    (call,) = report["actions"]
    assert call["type"] == "call-webhook"
    assert json.loads(call["payload"].replace("{{ flow_run.id }}", "x")) == {"flow_run_id": "x"}
    block = (await prefect.get(f"/block_documents/{call['block_document_id']}",
                               params={"include_secrets": True})).json()  # fmt: skip
    assert (
        block["data"]["url"]
        == pool_stack.reports.url.removesuffix("/hook") + "/api/prefect/flow-runs"
    )
    assert block["data"]["headers"] == {
        "Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json",
    }  # fmt: skip


async def test_execute_rerun_dbt_on_the_pool_and_deliver_a_webhook(
    pool_stack: PoolStack, api: AsyncClient, prefect: httpx.AsyncClient
) -> None:
    from tests.receiver import serve_receiver

    receiving = serve_receiver()
    receiver = next(receiving)
    try:
        subscribed = await api.post(
            "/api/webhooks", json={"url": receiver.url, "event_types": ["incident_created"]}
        )
        assert subscribed.status_code == 201, subscribed.text
        incident_id = await open_incident(api, key="INV_pool_success", playbooks=["rerun_dbt"])

        response = await api.post(
            f"/api/playbooks/incidents/{incident_id}/actions/execute?wait=240", json=RERUN_DBT
        )

        body = response.json()
        assert response.status_code == 200, body
        assert body["status"] == "success", body
        assert all(m["status"] == "success" for m in body["result"]["models"])

        # the action's hook can report before Prefect has stored the run's final state
        async def completed() -> dict[str, Any] | None:
            run = await flow_run(prefect, body["flow_run_id"])
            return run if run["state"]["type"] == "COMPLETED" else None

        run = await wait_until("the pool's flow run Completed", completed, 60)
        assert run["work_pool_name"] == "intervene"  # the pool worker ran it, nothing else

        async def delivered() -> list[dict[str, Any]]:
            bodies = [json.loads(r.body) for r in receiver.requests]
            return [b for b in bodies if b["data"]["id"] == incident_id]

        (event,) = await wait_until("the incident_created webhook", delivered, 60)
        assert event["type"] == "incident_created"

        # the pool's job variables turned Prefect's heartbeats on in the flow run
        await wait_until("a heartbeat of the run", lambda: heartbeats(prefect, run["id"]), 30)
    finally:
        receiving.close()


def test_services_left_the_deployments_as_prefect_deploy_made_them(pool_stack: PoolStack) -> None:
    now = pool_stack.deployments()

    assert now == pool_stack.deployments_before_services
    rerun = now["rerun_dbt"]
    assert rerun["entrypoint"] == "flows/rerun_dbt.py:rerun_dbt"
    assert rerun["work_pool_name"] == "intervene"
    step = rerun["pull_steps"][0]["prefect.deployments.steps.set_working_directory"]
    assert step["directory"] == pool_stack.env["INTERVENE_HOME"]
    assert [s["schedule"]["interval"] for s in now["data_freshness_inbox"]["schedules"]] == [60]


async def start_planner_action(
    pool_stack: PoolStack, api: AsyncClient, pool_app: FastAPI, body: dict[str, Any]
) -> tuple[int, int]:
    async with transaction(pool_app.state.db.writer) as session:
        await set_traffic(
            session, traffic={"v1.2.2": 80, "v1.2.3": 20}, change="test setup", actor="test",
            at=utcnow(), stable_version="v1.2.2", canary_version="v1.2.3",
        )  # fmt: skip
    incident_id = await open_incident(
        api, kind="planner", key=f"PLANNER_v1.2.3_{body['action_type']}",
        playbooks=["rollback_planner", "adjust_canary_split"],
    )  # fmt: skip
    started = await api.post(
        f"/api/playbooks/incidents/{incident_id}/actions/execute",
        json=body | {"approved_by": "lead@x.io"},
    )
    assert started.status_code == 200, started.text
    action_id = int(started.json()["action_id"])

    async def running() -> bool:
        found = await action(api, incident_id, action_id)
        assert found["status"] in ("scheduled", "running"), found
        return found["status"] == "running"

    try:
        await wait_until("the planner action running on the pool", running, 120, every=0.2)
    except AssertionError:
        found = await action(api, incident_id, action_id)
        async with httpx.AsyncClient(timeout=10) as http:
            run = (await http.get(f"{pool_stack.api_url}/flow_runs/{found['flow_run_id']}")).json()
        raise AssertionError(f"action {found}, flow run {run}") from None
    return incident_id, action_id


async def test_killed_worker_and_flow_end_crashed_with_services(
    pool_stack: PoolStack, pool_app: FastAPI, api: AsyncClient, prefect: httpx.AsyncClient
) -> None:
    body = {"action_type": "rollback_planner", "params": {"from_version": "v1.2.3"}}
    incident_id, action_id = await start_planner_action(pool_stack, api, pool_app, body)

    pool_stack.kill_worker_and_its_flows()  # mid-run: the walk sleeps between its steps
    killed = time.monotonic()
    try:

        async def crashed() -> dict[str, Any] | None:
            found = await action(api, incident_id, action_id)
            return found if found["status"] != "running" else None

        found = await wait_until("the reconciler marking the action", crashed, 90)
        print(f"\npool crash -> action crashed, with services: {time.monotonic() - killed:.1f} s")
        assert found["status"] == "crashed"
        assert "No heartbeat" in found["message"]
        run = await flow_run(prefect, found["flow_run_id"])
        assert run["state"]["type"] == "CRASHED"  # the reconciler told Prefect too
    finally:
        pool_stack.start_worker()


async def test_killed_worker_and_flow_end_crashed_without_services(
    pool_stack: PoolStack, pool_app: FastAPI, api: AsyncClient, prefect: httpx.AsyncClient
) -> None:
    """Prefect's zombie automation alone marks the run Crashed, and the report automation
    (`intervene prefect setup --intervene-url`) posts the run to Intervene, whose API ends the
    action `crashed` at once: no `intervene services` anywhere. The automation's request, as
    the receiver got it, goes to the API under test (in-process here; the recipe against a
    live `intervene api` is tests/pipelines/test_on_prefect.py's)."""
    pool_stack.stop_services()
    body = {"action_type": "adjust_canary_split",
            "params": {"version": "v1.2.3", "target_percent": 50, "gradual": True}}  # fmt: skip
    incident_id, action_id = await start_planner_action(pool_stack, api, pool_app, body)
    run_id = (await action(api, incident_id, action_id))["flow_run_id"]
    # Prefect's trigger starts from a run's first heartbeat (sent as it starts): a run killed
    # before that event reached the server is left to the reconciler (the test above)
    await wait_until("the run's first heartbeat", lambda: heartbeats(prefect, run_id), 60)

    pool_stack.kill_worker_and_its_flows()
    killed = time.monotonic()
    try:

        async def prefect_crashed() -> dict[str, Any] | None:
            run = await flow_run(prefect, run_id)
            return run if run["state"]["type"] == "CRASHED" else None

        run = await wait_until("Prefect's zombie automation", prefect_crashed, ZOMBIE_SECONDS + 90)
        prefect_took = time.monotonic() - killed
        assert ZOMBIE_AUTOMATION in run["state"]["message"]
        assert (await action(api, incident_id, action_id))["status"] == "running"  # nobody told

        async def reported() -> list[Any]:
            return [r for r in pool_stack.reports.requests
                    if json.loads(r.body) == {"flow_run_id": run_id}]  # fmt: skip

        (report,) = await wait_until("the report automation's call", reported, 30)
        assert report.headers["authorization"] == f"Bearer {TOKEN}"

        response = await api.post(
            "/api/prefect/flow-runs", content=report.body,
            headers={"content-type": report.headers["content-type"]},
        )  # fmt: skip
        assert response.status_code == 200, response.text
        assert response.json()["outcome"] == "settled"
        found = await action(api, incident_id, action_id)
        took = time.monotonic() - killed
        print(f"\npool crash -> Prefect Crashed, without services: {prefect_took:.1f} s; "
              f"reported -> action crashed: {took:.1f} s")  # fmt: skip
        assert found["status"] == "crashed"
        assert found["message"] == run["state"]["message"]  # Prefect's verdict, followed
    finally:
        pool_stack.start_worker()
        if pool_stack.services is None:
            pool_stack.start_services()
