"""Check schedules on a real Prefect server (the session's stack): anchored so that restarts
and redeploys keep the run times, late runs skipped, next_run_at from Prefect."""

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from httpx import AsyncClient
from prefect import get_client
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateName,
    FlowRunFilterTags,
)
from prefect.client.schemas.objects import FlowRun
from prefect.client.schemas.sorting import FlowRunSort
from prefect.settings import (
    PREFECT_API_URL,
    PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
    temporary_settings,
)
from prefect.states import Cancelled, Pending, Running, Scheduled

from deployments.stack import wait_for_deployment
from flows.checks.flow import ANCHOR, check_deployments
from flows.checks.late import late_reason
from flows.checks.outcome import SKIPPED_AS_LATE
from flows.checks.trigger import STARTUP_TAGS
from playbooks.catalog import load_checks
from tests.stack import Stack

pytestmark = [
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

SERVED = "e2e_always_failing"  # the stack's worker serves check/e2e_always_failing, every 15 s


@pytest.fixture
def prefect_env(stack: Stack) -> Iterator[None]:
    with temporary_settings(
        {PREFECT_API_URL: stack.env["PREFECT_API_URL"], PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
    ):
        yield


async def runs_of(client: AsyncClient, check_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/api/checks/{check_id}/runs", params={"limit": 500})
    assert response.status_code == 200, response.text
    result: list[dict[str, Any]] = response.json()["runs"]
    return result


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
    # the held run, or a run of the check's own schedule that came due just before (every 15 s)
    said = ended.state.message or ""
    assert str(held.id) in said or f"(check {SERVED}, " in said, said
    recorded = {r["flow_run_id"] for r in await runs_of(stack_client, SERVED)}
    assert str(late.id) not in recorded


# -- schedules that hold ---------------------------------------------------------------------


async def next_times(prefect: PrefectClient, deployment_id: UUID) -> list[datetime]:
    """The queued runs that the deployment's schedule made (Prefect's scheduler tags them
    auto-scheduled): a run that another test or the API started is due at any time."""
    runs = await prefect.read_flow_runs(
        deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
        flow_run_filter=FlowRunFilter(
            state=FlowRunFilterState(name=FlowRunFilterStateName(any_=["Scheduled"])),
            tags=FlowRunFilterTags(all_=["auto-scheduled"]),
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
