"""Check runs on a real Prefect server (the session's stack): Failed when broken, linked to
their flow runs, manual when started by hand, Run now through the deployment, late runs
skipped, schedules anchored, next_run_at from Prefect."""

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from prefect import get_client
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    DeploymentFilter,
    DeploymentFilterId,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateName,
)
from prefect.client.schemas.objects import FlowRun
from prefect.client.schemas.sorting import FlowRunSort
from prefect.settings import (
    PREFECT_API_URL,
    PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
    temporary_settings,
)
from prefect.states import Cancelled, Pending, Running, Scheduled

from api.launcher import PrefectLauncher
from api.main import create_app
from deployments.stack import wait_for_deployment
from flows.checks.flow import ANCHOR, check, check_deployments
from flows.checks.late import late_reason
from flows.checks.outcome import SKIPPED_AS_LATE, artifact_key
from flows.checks.trigger import STARTUP_TAGS
from models.settings import get_settings
from playbooks.catalog import load_checks
from tests.auth import bearer, issue
from tests.stack import Stack

pytestmark = [
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

SERVED = "e2e_always_failing"  # the stack's worker serves check/e2e_always_failing, every 15 s
CHECKS = """\
checks:
  - id: e2e_always_failing
    kind: invariant
    agent: e2e
    description: Never true on purpose.
    query: select count(*) as value from triage_results
    comparison: "<"
    threshold: 0
    severity: sev3
    playbooks: [rerun_dbt]
    every: 15
  - id: e2e_passing
    kind: invariant
    agent: e2e
    description: Always true.
    query: select count(*) as value from triage_results
    comparison: ">"
    threshold: 0
    severity: sev3
    every: 15
  - id: e2e_broken_query
    kind: invariant
    agent: e2e
    description: Its query fails.
    query: select count(*) as value from no_such_table
    comparison: ">"
    threshold: 0
    severity: sev3
    every: 15
"""
PUBLIC_URL = "https://intervene.example.com"


@pytest.fixture(scope="module")
def checks_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("checks") / "checks.yml"
    path.write_text(CHECKS)
    return path


@pytest.fixture
def prefect_env(stack: Stack) -> Iterator[None]:
    with temporary_settings(
        {PREFECT_API_URL: stack.env["PREFECT_API_URL"], PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
    ):
        yield


@pytest.fixture
def flow_settings(
    stack: Stack, checks_file: Path, monkeypatch: pytest.MonkeyPatch, prefect_env: None
) -> Iterator[None]:
    """What the check flow reads from its environment, for calls in this process."""
    monkeypatch.setenv("INTERVENE_DATABASE_URL", stack.settings.database_url)
    monkeypatch.setenv("INTERVENE_WAREHOUSE_URL", stack.settings.warehouse_url)
    monkeypatch.setenv("INTERVENE_CHECKS_FILE", str(checks_file))
    monkeypatch.setenv("INTERVENE_PUBLIC_URL", PUBLIC_URL)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
async def wide_client(
    stack: Stack, checks_file: Path, prefect_env: None
) -> AsyncIterator[AsyncClient]:
    """The API on the stack's database and Prefect, declaring checks no worker serves."""
    settings = stack.settings.model_copy(update={"checks_file": checks_file})
    app: FastAPI = create_app(settings, launcher=PrefectLauncher())
    async with app.router.lifespan_context(app):
        headers = bearer(await issue(app.state.db))
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test",
                               timeout=180, headers=headers) as http:  # fmt: skip
            yield http


async def runs_of(client: AsyncClient, check_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/api/checks/{check_id}/runs", params={"limit": 500})
    assert response.status_code == 200, response.text
    result: list[dict[str, Any]] = response.json()["runs"]
    return result


async def artifacts_of(prefect: PrefectClient, flow_run_id: UUID) -> list[Any]:
    return await prefect.read_artifacts(
        artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
    )


async def test_a_violation_ends_failed_with_its_artifact_and_a_pass_completed(
    flow_settings: None, wide_client: AsyncClient
) -> None:
    failing = await check(check_id=SERVED, return_state=True)  # type: ignore[call-overload]
    passing = await check(check_id="e2e_passing", return_state=True)  # type: ignore[call-overload]
    broken = await check(check_id="e2e_broken_query", return_state=True)  # type: ignore[call-overload]

    assert failing.is_failed(), failing
    assert passing.is_completed(), passing
    assert broken.is_failed(), broken
    assert "could not be measured" in broken.message
    run = next(r for r in await runs_of(wide_client, SERVED)
               if r["flow_run_id"] == str(failing.state_details.flow_run_id))  # fmt: skip
    assert run["passed"] is False
    assert run["trigger"] == "manual"  # called directly: nobody's schedule
    assert run["flow_run_url"].endswith(f"/runs/flow-run/{run['flow_run_id']}")
    incident = run["incident_id"]
    assert incident is not None
    assert failing.message == (
        f"Check {SERVED} fails: value 200 (must be < 0); "
        f"incident {incident} {PUBLIC_URL}/#/incidents/{incident}"
    )
    async with get_client() as prefect:
        stored = await prefect.read_flow_run(failing.state_details.flow_run_id)
        artifacts = await artifacts_of(prefect, failing.state_details.flow_run_id)
        passed_artifacts = await artifacts_of(prefect, passing.state_details.flow_run_id)
    assert stored.state is not None
    assert stored.state.type.value == "FAILED"
    assert stored.state.message == failing.message
    assert [a.key for a in artifacts] == [artifact_key(SERVED)] == ["check-e2e-always-failing"]
    assert artifacts[0].type == "table"
    [row] = json.loads(str(artifacts[0].data))  # Prefect keeps a table as its JSON text
    assert row["value"] == 200
    assert row["threshold"] == 0
    assert row["passed"] is False
    assert row["incident"] == f"{PUBLIC_URL}/#/incidents/{incident}"
    assert [a.key for a in passed_artifacts] == ["check-e2e-passing"]


async def test_run_now_triggers_the_deployment_and_returns_its_manual_run(
    stack: Stack, stack_client: AsyncClient
) -> None:
    await asyncio.to_thread(wait_for_deployment, stack.env["PREFECT_API_URL"], f"check/{SERVED}")

    response = await stack_client.post(f"/api/checks/{SERVED}/run", params={"wait": 120})

    body = response.json()
    assert response.status_code == 200, body
    assert body["trigger"] == "manual"
    assert body["passed"] is False
    assert body["flow_run_id"]
    assert body["flow_run_url"].endswith(f"/runs/flow-run/{body['flow_run_id']}")
    with temporary_settings({PREFECT_API_URL: stack.env["PREFECT_API_URL"]}):
        async with get_client() as prefect:
            flow_run = await prefect.read_flow_run(UUID(body["flow_run_id"]))
    assert flow_run.auto_scheduled is False
    assert flow_run.state is not None
    assert flow_run.state.is_failed()  # the check fails: the run is not green
    listed = await runs_of(stack_client, SERVED)
    assert [r["id"] for r in listed if r["flow_run_id"] == body["flow_run_id"]] == [body["id"]]


async def test_run_now_with_wait_0_answers_at_once_with_the_flow_run(
    stack: Stack, stack_client: AsyncClient
) -> None:
    await asyncio.to_thread(wait_for_deployment, stack.env["PREFECT_API_URL"], f"check/{SERVED}")

    response = await stack_client.post(f"/api/checks/{SERVED}/run", params={"wait": 0})

    body = response.json()
    assert response.status_code == 202, body
    assert body["check_id"] == SERVED
    assert body["flow_run_url"].endswith(f"/runs/flow-run/{body['flow_run_id']}")
    deadline = time.monotonic() + 120
    while not [r for r in await runs_of(stack_client, SERVED)
               if r["flow_run_id"] == body["flow_run_id"]]:  # fmt: skip
        assert time.monotonic() < deadline, "the flow run never recorded its check run"
        await asyncio.sleep(1)


async def test_run_now_of_a_check_no_worker_serves_is_503(wide_client: AsyncClient) -> None:
    response = await wide_client.post("/api/checks/e2e_passing/run", params={"wait": 5})

    body = response.json()
    assert response.status_code == 503, body
    assert response.headers["Retry-After"]
    assert body["error"]["code"] == "unavailable"
    assert "check/e2e_passing" in body["error"]["message"]


async def test_run_now_with_prefect_down_is_503(stack: Stack, checks_file: Path) -> None:
    settings = stack.settings.model_copy(update={"checks_file": checks_file})
    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        app: FastAPI = create_app(settings, launcher=PrefectLauncher())
        async with app.router.lifespan_context(app):
            headers = bearer(await issue(app.state.db))
            async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test",
                                   headers=headers) as http:  # fmt: skip
                response = await http.post(f"/api/checks/{SERVED}/run")
                listed = await http.get("/api/checks")

    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"]
    assert response.json()["error"]["code"] == "unavailable"
    assert listed.status_code == 200  # next_run_at falls back to the computed time


async def test_next_run_at_is_prefects_next_scheduled_run_on_the_anchored_grid(
    stack: Stack, stack_client: AsyncClient
) -> None:
    await asyncio.to_thread(wait_for_deployment, stack.env["PREFECT_API_URL"], f"check/{SERVED}")
    deadline = time.monotonic() + 60
    while True:
        checks = (await stack_client.get("/api/checks")).json()["checks"]
        shown = next(c for c in checks if c["id"] == SERVED)["next_run_at"]
        if shown is not None:
            offset = (datetime.fromisoformat(shown) - ANCHOR).total_seconds()
            if offset % 15 == 0:  # a computed time (last run + 15 s) is never on the grid
                break
        assert time.monotonic() < deadline, f"next_run_at {shown} is not Prefect's"
        await asyncio.sleep(1)


# -- late runs -----------------------------------------------------------------------------


async def probe_deployment(prefect: PrefectClient, name: str) -> UUID:
    """A check deployment that no worker serves: its runs stay where the test puts them."""
    spec = load_checks(Path(__file__).parent / "e2e_checks.yml")[SERVED]
    # to_deployment answers a coroutine on an event loop: build it as serve() does, in sync code
    deployment = (await asyncio.to_thread(check_deployments, {SERVED: spec}))[0]
    deployment.name = name
    deployment.schedules = []
    return UUID(str(await deployment.apply()))


async def flow_run(prefect: PrefectClient, deployment_id: UUID, *, ago: float,
                   tags: list[str], running: bool) -> FlowRun:  # fmt: skip
    run = await prefect.create_flow_run_from_deployment(
        deployment_id,
        tags=tags,
        state=Scheduled(scheduled_time=datetime.now(UTC) - timedelta(seconds=ago)),
    )
    if running:
        await prefect.set_flow_run_state(run.id, Running(), force=True)
    return await prefect.read_flow_run(run.id)


async def test_a_scheduled_run_right_after_the_one_before_is_skipped_as_late(
    prefect_env: None,
) -> None:
    async with get_client() as prefect:
        deployment_id = await probe_deployment(prefect, f"late-probe-{time.monotonic_ns()}")
        first = await flow_run(prefect, deployment_id, ago=40, tags=STARTUP_TAGS, running=True)
        # a manual run in between is not the schedule's: it neither skips nor is skipped
        manual = await flow_run(prefect, deployment_id, ago=30, tags=[], running=True)
        queued = await flow_run(prefect, deployment_id, ago=20, tags=STARTUP_TAGS, running=False)
        mine = await flow_run(prefect, deployment_id, ago=10, tags=STARTUP_TAGS, running=True)

        assert await late_reason(prefect, first, every=60) is None  # nothing before it
        reason = await late_reason(prefect, manual, every=60)
        assert reason is not None  # (the flow asks only for scheduled runs; this shows why)
        assert await late_reason(prefect, queued, every=60) is not None  # first started < 30 s
        late = await late_reason(prefect, mine, every=60)
        assert late is not None
        assert str(queued.id) in late  # the one before it is about to run: one per interval
        await prefect.delete_deployment(deployment_id)


async def test_a_late_run_is_skipped_by_the_worker_and_records_nothing(
    stack: Stack, stack_client: AsyncClient, prefect_env: None
) -> None:
    """A due scheduled run whose predecessor is about to run (what an outage's burst hands the
    worker at once) ends Completed "Skipped as late" and records no check run. The predecessor
    is held Pending, where no worker takes it, so the outcome does not hang on timing."""
    await asyncio.to_thread(wait_for_deployment, stack.env["PREFECT_API_URL"], f"check/{SERVED}")
    now = datetime.now(UTC)
    async with get_client() as prefect:
        deployment = await prefect.read_deployment_by_name(f"check/{SERVED}")
        held = await prefect.create_flow_run_from_deployment(
            deployment.id,
            tags=STARTUP_TAGS,
            state=Scheduled(scheduled_time=now - timedelta(seconds=2)),
        )
        await prefect.set_flow_run_state(held.id, Pending(), force=True)
        late = await prefect.create_flow_run_from_deployment(
            deployment.id,
            tags=STARTUP_TAGS,
            state=Scheduled(scheduled_time=now - timedelta(seconds=1)),
        )
        deadline = time.monotonic() + 120
        while not ((ended := await prefect.read_flow_run(late.id)).state or Pending()).is_final():
            assert time.monotonic() < deadline, ended.state
            await asyncio.sleep(1)
        await prefect.set_flow_run_state(held.id, Cancelled(), force=True)
    assert ended.state is not None
    assert ended.state.is_completed()
    assert ended.state.name == SKIPPED_AS_LATE
    assert str(held.id) in (ended.state.message or "")
    recorded = {r["flow_run_id"] for r in await runs_of(stack_client, SERVED)}
    assert str(late.id) not in recorded


# -- schedules that hold ---------------------------------------------------------------------


async def next_times(prefect: PrefectClient, deployment_id: UUID) -> list[datetime]:
    runs = await prefect.read_flow_runs(
        deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
        flow_run_filter=FlowRunFilter(
            state=FlowRunFilterState(name=FlowRunFilterStateName(any_=["Scheduled"]))
        ),
        sort=FlowRunSort.EXPECTED_START_TIME_ASC,
        limit=8,
    )
    return [r.expected_start_time for r in runs if r.expected_start_time]


async def test_registering_the_deployment_again_keeps_its_run_times(prefect_env: None) -> None:
    """What serve() does at every restart (and `prefect deploy` at every redeploy): the
    deployment is upserted, Prefect deletes its queued runs and schedules them again, on the
    same anchored grid, so the next run keeps its time."""
    spec = load_checks(Path(__file__).parent / "e2e_checks.yml")[SERVED]
    name = f"anchor-probe-{time.monotonic_ns()}"

    ids: set[UUID] = set()

    async def register() -> list[datetime]:
        deployment = (await asyncio.to_thread(check_deployments, {SERVED: spec}))[0]
        deployment.name = name
        deployment_id = UUID(str(await deployment.apply()))
        ids.add(deployment_id)
        deadline = time.monotonic() + 90
        async with get_client() as prefect:
            # queued runs already due survive the upsert: wait for the ones ahead
            while True:
                times = await next_times(prefect, deployment_id)
                if any(t > datetime.now(UTC) + timedelta(seconds=spec.every) for t in times):
                    return times
                assert time.monotonic() < deadline, "Prefect scheduled no run"
                await asyncio.sleep(1)

    before = await register()
    after = await register()
    async with get_client() as prefect:
        for deployment_id in ids:  # nobody serves it: its runs would only pile up
            await prefect.delete_deployment(deployment_id)

    for when in before + after:
        assert (when - ANCHOR).total_seconds() % spec.every == 0
    # the queued runs that are still ahead come back at the same times
    soon = datetime.now(UTC) + timedelta(seconds=spec.every)
    kept = [t for t in before if soon < t <= max(after)]
    assert kept
    assert set(kept) <= set(after)


async def test_restarting_the_worker_keeps_the_next_scheduled_time(
    stack: Stack, prefect_env: None
) -> None:
    """The worker's serve() re-registers check/<id> at every start: with the anchored schedule
    the runs ahead come back at the same times (without it, they moved to the restart time)."""
    await asyncio.to_thread(wait_for_deployment, stack.env["PREFECT_API_URL"], f"check/{SERVED}")
    async with get_client() as prefect:
        deployment = await prefect.read_deployment_by_name(f"check/{SERVED}")
        before = await next_times(prefect, deployment.id)
        stack.kill_worker()
        stack.start_worker()
        deadline = time.monotonic() + 120
        while True:  # re-registered (the upsert stamps `updated`), runs ahead scheduled again
            again = await prefect.read_deployment_by_name(f"check/{SERVED}")
            after = await next_times(prefect, deployment.id)
            ahead = [t for t in after if t > datetime.now(UTC) + timedelta(seconds=15)]
            if (
                again.updated
                and deployment.updated
                and again.updated > deployment.updated
                and ahead
            ):
                break
            assert time.monotonic() < deadline, "the worker did not serve the check again"
            await asyncio.sleep(1)

    assert again.id == deployment.id
    assert [s.schedule.model_dump() for s in again.schedules] == [
        s.schedule.model_dump() for s in deployment.schedules
    ]
    for when in before + after:
        assert (when - ANCHOR).total_seconds() % 15 == 0
    soon = datetime.now(UTC) + timedelta(seconds=15)
    kept = [t for t in before if soon < t <= max(after)]
    assert kept
    assert set(kept) <= set(after)
