"""Check runs on a real Prefect server (the session's stack): Failed when broken, linked to
their flow runs, manual when started by hand, Run now through the deployment, and a Retry
that never measures twice (schedules: test_check_schedules.py)."""

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
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
)
from prefect.settings import (
    PREFECT_API_URL,
    PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
    temporary_settings,
)
from prefect.states import AwaitingRetry

from api.launcher import PrefectLauncher
from api.main import create_app
from deployments.stack import wait_for_deployment
from flows.checks.flow import check, check_deployments
from flows.checks.outcome import artifact_key
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


async def test_run_now_of_a_check_without_a_deployment_is_503(wide_client: AsyncClient) -> None:
    response = await wide_client.post("/api/checks/e2e_passing/run", params={"wait": 5})

    body = response.json()
    assert response.status_code == 503, body
    assert response.headers["Retry-After"]
    assert body["error"]["code"] == "unavailable"
    assert "check/e2e_passing" in body["error"]["message"]


async def test_run_now_that_outwaits_its_wait_is_503_naming_the_flow_run(
    wide_client: AsyncClient, checks_file: Path
) -> None:
    """The deployment exists but no worker serves it: the run stays Scheduled."""
    spec = load_checks(checks_file)["e2e_passing"]
    # to_deployment answers a coroutine on an event loop: build it as serve() does, in sync code
    deployment = (await asyncio.to_thread(check_deployments, {spec.id: spec}))[0]
    deployment.schedules = []
    deployment_id = UUID(str(await deployment.apply()))
    try:
        response = await wide_client.post("/api/checks/e2e_passing/run", params={"wait": 1})
    finally:
        async with get_client() as prefect:
            await prefect.delete_deployment(deployment_id)

    body = response.json()
    assert response.status_code == 503, body
    assert response.headers["Retry-After"]
    assert body["error"]["code"] == "unavailable"
    assert "still Scheduled after 1 s" in body["error"]["message"]
    assert body["error"]["details"]["flow_run_id"]
    assert body["error"]["details"]["deployment"] == "check/e2e_passing"


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


async def test_a_retry_of_a_failed_check_run_does_not_measure_again(
    stack: Stack, stack_client: AsyncClient, prefect_env: None
) -> None:
    """The Prefect UI offers Retry on a Failed run: the worker runs it again, and it ends as it
    did (Failed, same message) without measuring or recording again."""
    await asyncio.to_thread(wait_for_deployment, stack.env["PREFECT_API_URL"], f"check/{SERVED}")
    first = (await stack_client.post(f"/api/checks/{SERVED}/run", params={"wait": 120})).json()
    flow_run_id = UUID(first["flow_run_id"])
    async with get_client() as prefect:
        before = await prefect.read_flow_run(flow_run_id)
        await prefect.set_flow_run_state(flow_run_id, AwaitingRetry(), force=True)
        deadline = time.monotonic() + 120
        while True:
            after = await prefect.read_flow_run(flow_run_id)
            if after.run_count > before.run_count and after.state and after.state.is_final():
                break
            assert time.monotonic() < deadline, after.state
            await asyncio.sleep(1)

    assert after.state.is_failed()
    assert before.state is not None
    assert after.state.message == before.state.message
    # one check run for the flow run, so one occurrence: a repeat counts only with a new run
    runs = await runs_of(stack_client, SERVED)
    assert [r["id"] for r in runs if r["flow_run_id"] == first["flow_run_id"]] == [first["id"]]
