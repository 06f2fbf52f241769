"""Pipelines on a real Prefect server (tests/stack.py): a user's failing deployment on the same
server opens a `pipeline` incident through the event follower and through the endpoint, a
replayed event adds nothing, Intervene's own flows are ignored, retry_flow_run plans and re-runs
the deployment with its parameters, and that completed run resolves the incident."""

import asyncio
import gc
import logging
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from prefect import get_client
from prefect.automations import Automation
from prefect.blocks.webhook import Webhook
from prefect.deployments import run_deployment
from prefect.events.actions import CallWebhook
from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter
from prefect.events.schemas.automations import EventTrigger, Posture
from prefect.settings import PREFECT_API_URL, temporary_settings

from api.launcher import PrefectLauncher
from api.main import create_app
from deployments.prefect_events import follow_prefect_events
from deployments.stack import free_port, start, stop, wait_for_deployment, wait_healthy
from models.enums import Role
from models.settings import Settings
from tests.auth import bearer, issue, issue_at
from tests.stack import CLI, Stack

# Prefect's client leaves sockets to its server for the garbage collector; not ours to fix.
pytestmark = [
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

ROOT = Path(__file__).resolve().parents[2]
DEPLOYMENT = "user_pipeline/nightly"
HOURLY = "user_pipeline/hourly"  # the same flow, another deployment: an incident of its own
WEEKLY = "user_pipeline/weekly"
KEY = f"PIPELINE_{DEPLOYMENT}"
FOLLOWER = "intervene.prefect_events"


@pytest.fixture(scope="module")
def user_pipeline(stack: Stack) -> Iterator[None]:
    """The user's deployment, served by a runner of its own (as the user's workers would)."""
    env = stack.env | {"PYTHONPATH": str(ROOT)}
    runner = start(
        [sys.executable, "-m", "tests.pipelines.user_flow"], env, stack.logs / "user.log"
    )
    try:
        wait_for_deployment(stack.env["PREFECT_API_URL"], DEPLOYMENT, seconds=90)
        wait_for_deployment(stack.env["PREFECT_API_URL"], HOURLY, seconds=30)
        wait_for_deployment(stack.env["PREFECT_API_URL"], WEEKLY, seconds=30)
        yield
    finally:
        stop([runner])
        gc.collect()  # Prefect's leftover sockets, while this module ignores their warnings


@pytest.fixture(scope="module")
def watching(stack: Stack) -> Settings:
    return stack.settings.model_copy(update={"pipeline_deployments": ["user_pipeline/*"]})


@pytest.fixture(scope="module")
async def pipeline_app(stack: Stack, watching: Settings) -> AsyncIterator[FastAPI]:
    with temporary_settings({PREFECT_API_URL: stack.env["PREFECT_API_URL"]}):
        app = create_app(watching, launcher=PrefectLauncher())
        async with app.router.lifespan_context(app):
            yield app


@pytest.fixture
async def http(pipeline_app: FastAPI) -> AsyncIterator[AsyncClient]:
    headers = bearer(await issue(pipeline_app.state.db))
    async with AsyncClient(
        transport=ASGITransport(app=pipeline_app), base_url="http://t", timeout=180, headers=headers
    ) as client:
        yield client


@pytest.fixture
def prefect_env(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """PREFECT_API_URL in this process's environment too: retry_flow_run's preflight reads the
    server from it (integrations/prefect_api.py), as the API process's environment has it."""
    monkeypatch.setenv("PREFECT_API_URL", stack.env["PREFECT_API_URL"])
    with temporary_settings({PREFECT_API_URL: stack.env["PREFECT_API_URL"]}):
        yield


class Follower:
    """deployments/prefect_events.py's loop, in this process, started and stopped at will."""

    def __init__(self, settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
        self.settings, self.caplog = settings, caplog
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.caplog.clear()
        self.task = asyncio.create_task(follow_prefect_events(self.settings))

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)

    async def took(self, flow_run_id: str, *outcomes: str, seconds: float = 60) -> None:
        """Wait until the follower has taken `flow_run_id` in with one of `outcomes`."""
        deadline = time.monotonic() + seconds
        wanted = f"flow run {flow_run_id} "
        while not any(
            r.getMessage().startswith(wanted) and f": {outcome}," in r.getMessage()
            for r in self.caplog.records
            if r.name == FOLLOWER
            for outcome in outcomes
        ):
            assert self.task is not None
            assert not self.task.done(), "the follower stopped"
            assert time.monotonic() < deadline, f"{flow_run_id} never {outcomes}"
            await asyncio.sleep(0.2)


@pytest.fixture
async def follower(
    watching: Settings, prefect_env: None, caplog: pytest.LogCaptureFixture
) -> AsyncIterator[Follower]:
    caplog.set_level(logging.INFO, logger=FOLLOWER)
    following = Follower(watching, caplog)
    following.start()
    yield following
    await following.stop()


async def run_user_pipeline(marker: Path, day: str, deployment: str = DEPLOYMENT) -> str:
    """A run of the user's deployment, waited for; its id."""
    run = await run_deployment(  # type: ignore[misc]
        deployment, parameters={"marker": str(marker), "day": day}, timeout=120
    )
    assert run.state is not None
    assert run.state.is_final(), run.state
    return str(run.id)


async def stored(flow_run_id: str, event: str) -> None:
    """Wait until Prefect has stored the run's event: a new subscription's replay reads the
    stored events (the server writes them in batches, a moment after sending them live)."""
    wanted = EventFilter(  # type: ignore[call-arg]
        event=EventNameFilter(name=[event]),
        resource=EventResourceFilter(id=[f"prefect.flow-run.{flow_run_id}"]),
    )

    async def found() -> bool:
        async with get_client() as prefect:
            return bool((await prefect.read_events(filter=wanted, limit=1)).events)

    await until(found, f"Prefect never stored {event} of {flow_run_id}")


async def pipeline_incidents(http: AsyncClient) -> list[dict[str, Any]]:
    listed = (await http.get("/api/incidents", params={"kind": "pipeline"})).json()["incidents"]
    return [i for i in listed if i["key"] == KEY]


async def until(check: Any, what: str, seconds: float = 60) -> Any:
    deadline = time.monotonic() + seconds
    while not (found := await check()):
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.2)
    return found


async def test_a_failing_pipeline_is_an_incident_retried_and_resolved(
    stack: Stack, user_pipeline: None, http: AsyncClient, follower: Follower, tmp_path: Path
) -> None:
    marker = tmp_path / "source"
    marker.write_text("late")
    failed = await run_user_pipeline(marker, "2026-12-01")

    await follower.took(failed, "opened")
    [incident] = await pipeline_incidents(http)
    assert incident["status"] == "open"
    assert incident["kind"] == "pipeline"
    assert incident["occurrence_count"] == 1
    assert incident["summary"] == f"Prefect flow user_pipeline, deployment {DEPLOYMENT}: run Failed"
    pipeline = incident["details"]["pipeline"]
    assert pipeline["flow_run_id"] == failed
    assert pipeline["deployment"] == DEPLOYMENT
    assert pipeline["state"] == "Failed"
    assert pipeline["parameters"] == {"marker": str(marker), "day": "2026-12-01"}
    assert "the source for 2026-12-01 is not ready" in pipeline["message"]
    assert pipeline["flow_run_url"].endswith(f"/runs/flow-run/{failed}")

    # the same run reported by an automation, and replayed by a new subscription: nothing new
    told = await http.post("/api/prefect/flow-runs", json={"flow_run_id": failed})
    assert told.status_code == 200, told.text
    assert told.json() == {
        "flow_run_id": failed, "incident_id": incident["id"], "outcome": "seen",
        "reason": f"flow run {failed} already recorded",
    }  # fmt: skip
    await stored(failed, "prefect.flow-run.Failed")
    await follower.stop()
    follower.start()
    await follower.took(failed, "seen")
    [same] = await pipeline_incidents(http)
    assert same["occurrence_count"] == 1

    # the dry-run says exactly what will run
    actions = f"/api/playbooks/incidents/{incident['id']}/actions"
    offered = [a["action_type"] for a in (await http.get(actions)).json()["available_actions"]]
    assert offered == ["retry_flow_run"]
    planned = await http.post(f"{actions}/dry-run", json={"action_type": "retry_flow_run"})
    assert planned.status_code == 200, planned.text
    plan = planned.json()
    assert plan["status"] == "dry_run_success", plan
    assert plan["message"] == (
        f'Run deployment {DEPLOYMENT} again with parameters {{"day": "2026-12-01", '
        f'"marker": "{marker}"}}'
    )
    assert plan["details"]["retry_of"] == failed
    assert plan["rollback_available"] is False

    # the source is there now: the retry completes, and its completion resolves the incident
    marker.write_text("ok")
    executed = await http.post(
        f"{actions}/execute?wait=120", json={"action_type": "retry_flow_run"}
    )
    body = executed.json()
    assert executed.status_code == 200, body
    assert body["status"] == "success", body
    retry = body["result"]["flow_run_id"]
    assert body["result"]["parameters"] == {"marker": str(marker), "day": "2026-12-01"}
    async with get_client() as prefect:
        rerun = await prefect.read_flow_run(uuid.UUID(retry))
    assert rerun.state is not None
    assert rerun.state.is_completed()
    assert rerun.parameters == {"marker": str(marker), "day": "2026-12-01"}
    assert {"intervene-retry", f"incident:{incident['id']}"} <= set(rerun.tags)

    await follower.took(retry, "resolved")
    resolved = (await http.get(f"/api/incidents/{incident['id']}")).json()
    assert resolved["status"] == "resolved"
    timeline = (await http.get(f"/api/incidents/{incident['id']}/timeline")).json()["entries"]
    changes = [e for e in timeline if e["from_status"] != e["to_status"]]  # not the action's
    assert changes[-1]["verb"] == "resolve"
    assert changes[-1]["actor"] == "prefect"
    assert f"({retry}) of {DEPLOYMENT} completed" in changes[-1]["notes"]

    # Intervene's own runs (the retry action's flow run) are never pipeline incidents:
    # the run is its action's, and that action has already finished
    own = await http.post(f"/api/prefect/flow-runs/{body['flow_run_id']}")
    assert own.status_code == 200, own.text
    assert own.json()["outcome"] == "seen", own.json()
    assert f"action {body['action_id']} is already success" in own.json()["reason"]
    # (the follower may have been first to end the action, from the Completed event)
    await follower.took(body["flow_run_id"], "seen", "settled")
    assert [i["id"] for i in await pipeline_incidents(http)] == [incident["id"]]


async def test_the_endpoint_opens_the_incident_without_the_follower(
    stack: Stack, user_pipeline: None, http: AsyncClient, prefect_env: None, tmp_path: Path
) -> None:
    marker = tmp_path / "source"
    marker.write_text("late")
    failed = await run_user_pipeline(marker, "2026-12-02", HOURLY)

    opened = await http.post(f"/api/prefect/flow-runs/{failed}")
    again = await http.post("/api/prefect/flow-runs", json={"flow_run_id": failed, "x": 1})
    marker.write_text("ok")
    fixed = await run_user_pipeline(marker, "2026-12-02", HOURLY)
    resolved = await http.post("/api/prefect/flow-runs", json={"flow_run_id": fixed})

    assert opened.status_code == 200, opened.text
    assert opened.json()["outcome"] == "opened"
    assert again.json()["outcome"] == "seen"
    assert resolved.json() == {
        "flow_run_id": fixed, "incident_id": opened.json()["incident_id"], "outcome": "resolved",
        "reason": f"flow run {fixed} completed",
    }  # fmt: skip


async def test_the_endpoints_errors(
    stack: Stack, pipeline_app: FastAPI, http: AsyncClient, prefect_env: None
) -> None:
    unknown = str(uuid.uuid4())

    missing = await http.post(f"/api/prefect/flow-runs/{unknown}")
    missing_body = await http.post("/api/prefect/flow-runs", json={"flow_run_id": unknown})
    bad_path = await http.post("/api/prefect/flow-runs/not-a-run")
    bad_body = await http.post("/api/prefect/flow-runs", json={"flow_run_id": "not-a-run"})
    with temporary_settings({PREFECT_API_URL: f"http://127.0.0.1:{free_port()}/api"}):
        down = await http.post(f"/api/prefect/flow-runs/{unknown}")
    viewer = bearer(await issue(pipeline_app.state.db, "viewer@x.io", Role.VIEWER))
    forbidden = await http.post(f"/api/prefect/flow-runs/{unknown}", headers=viewer)
    anonymous = await http.post(
        "/api/prefect/flow-runs", json={"flow_run_id": unknown}, headers={"Authorization": ""}
    )

    for response, status, code in [
        (missing, 404, "not_found"), (missing_body, 404, "not_found"),
        (bad_path, 422, "validation_error"), (bad_body, 422, "validation_error"),
        (down, 503, "unavailable"), (forbidden, 403, "forbidden"), (anonymous, 401, "unauthorized"),
    ]:  # fmt: skip
        assert response.status_code == status, response.text
        assert response.json()["error"]["code"] == code
    assert missing.json()["error"]["message"] == f"Prefect has no flow run {unknown}"
    assert down.headers["Retry-After"]
    fields = [e["field"] for e in bad_body.json()["error"]["details"]["errors"]]
    assert fields == ["body.flow_run_id"]


async def test_the_automation_recipe_reports_runs_to_a_live_api(
    stack: Stack, user_pipeline: None, prefect_env: None, tmp_path: Path
) -> None:
    """docs/prefect-pipelines.md's recipe as written: a webhook block and an automation on the
    stack's Prefect server call `intervene api`; no follower runs."""
    port = free_port()
    env = stack.env | {
        "PYTHONPATH": str(ROOT),
        "INTERVENE_PIPELINE_DEPLOYMENTS": f'["{HOURLY}"]',
        "INTERVENE_RATE_LIMIT": "10000/hour",
    }
    api = start(
        [*CLI, "api", "--host", "127.0.0.1", "--port", str(port)], env, stack.logs / "api.log"
    )
    automation: Automation | None = None
    try:
        await asyncio.to_thread(wait_healthy, f"http://127.0.0.1:{port}/api/health", api)
        token = await issue_at(stack.settings.database_url, "prefect-automation", Role.RESPONDER)
        block = Webhook(
            method="POST",
            url=f"http://127.0.0.1:{port}/api/prefect/flow-runs",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            allow_private_urls=True,  # the API is on 127.0.0.1
        )
        block_id = await block.asave("intervene-flow-runs", overwrite=True)
        automation = await Automation(
            name="intervene: finished flow runs",
            trigger=EventTrigger(
                match={"prefect.resource.id": "prefect.flow-run.*"},
                expect={
                    "prefect.flow-run.Failed",
                    "prefect.flow-run.Crashed",
                    "prefect.flow-run.Completed",
                },
                posture=Posture.Reactive,
                threshold=1,
            ),
            actions=[
                CallWebhook(
                    block_document_id=block_id, payload='{"flow_run_id": "{{ flow_run.id }}"}'
                )
            ],
        ).acreate()
        marker = tmp_path / "source"
        marker.write_text("late")

        async with AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers=bearer(token), timeout=30
        ) as http:

            async def incident_of(flow_run_id: str, status: str) -> dict[str, Any] | None:
                listed = await http.get("/api/incidents", params={"kind": "pipeline"})
                return next(
                    (
                        i
                        for i in listed.json()["incidents"]
                        if i["key"] == f"PIPELINE_{HOURLY}"
                        and i["details"]["pipeline"]["flow_run_id"] == flow_run_id
                        and i["status"] == status
                    ),
                    None,
                )

            failed = await run_user_pipeline(marker, "2026-12-03", HOURLY)
            opened = await until(
                lambda: incident_of(failed, "open"), "the automation never opened it", 90
            )
            marker.write_text("ok")
            await run_user_pipeline(marker, "2026-12-03", HOURLY)
            resolved = await until(
                lambda: incident_of(failed, "resolved"), "the automation never resolved it", 90
            )

        assert resolved["id"] == opened["id"]
        assert opened["occurrence_count"] == 1
    finally:
        if automation is not None:
            await automation.adelete()
        stop([api])


async def test_a_retry_that_fails_again_fails_the_action_and_counts(
    stack: Stack, user_pipeline: None, http: AsyncClient, prefect_env: None, tmp_path: Path
) -> None:
    marker = tmp_path / "source"
    marker.write_text("late")
    failed = await run_user_pipeline(marker, "2026-12-04", WEEKLY)
    incident_id = (await http.post(f"/api/prefect/flow-runs/{failed}")).json()["incident_id"]

    executed = await http.post(
        f"/api/playbooks/incidents/{incident_id}/actions/execute?wait=120",
        json={"action_type": "retry_flow_run", "params": {"wait_seconds": 90}},
    )
    body = executed.json()
    retry = body["result"]["flow_run_id"]
    told = await http.post(f"/api/prefect/flow-runs/{retry}")
    incident = (await http.get(f"/api/incidents/{incident_id}")).json()

    assert executed.status_code == 200, body
    assert body["status"] == "failed", body
    assert f"of {WEEKLY} ended Failed" in body["message"]
    assert "the source for 2026-12-04 is not ready" in body["message"]
    assert told.json()["outcome"] == "counted"
    assert incident["occurrence_count"] == 2
    assert incident["details"]["pipeline"]["flow_run_id"] == retry
    assert set(incident["details"]["pipeline"]["tags"]) == {
        "etl", "intervene-retry", f"incident:{incident_id}",
    }  # fmt: skip


async def test_the_follower_subscribes_again_after_a_prefect_outage(
    stack: Stack,
    user_pipeline: None,
    watching: Settings,
    prefect_env: None,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.INFO, logger=FOLLOWER)
    quick = watching.model_copy(update={"prefect_events_backoff_max_seconds": 1.0})
    follower = Follower(quick, caplog)
    follower.start()

    def said(text: str) -> int:
        return sum(text in r.getMessage() for r in caplog.records if r.name == FOLLOWER)

    async def following(times: int) -> bool:
        return said("following Prefect's flow run events") >= times

    try:
        await until(lambda: following(1), "the follower never subscribed")
        await asyncio.to_thread(stack.stop_prefect)
        try:

            async def failing() -> bool:
                return said("following Prefect's events failed") >= 2  # and tried again

            await until(failing, "the follower never noticed the outage")
        finally:
            await asyncio.to_thread(stack.start_prefect)
        await until(lambda: following(2), "the follower never subscribed again", 90)
        await asyncio.to_thread(wait_for_deployment, stack.env["PREFECT_API_URL"], WEEKLY, 60)
        marker = tmp_path / "source"
        marker.write_text("late")
        failed = await run_user_pipeline(marker, "2026-12-05", WEEKLY)

        await follower.took(failed, "counted")  # on the incident of the test above
    finally:
        await follower.stop()
    assert follower.task is not None
    assert follower.task.cancelled()
