"""The incident report as a Prefect artifact on the real stack: `intervene services` publishes
it on the incident's action run once the incident is resolved, again for each saved report
version, and after a Prefect outage, once Prefect is back."""

import asyncio
import gc
from collections.abc import Iterator
from uuid import UUID

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from prefect import get_client
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import (
    ArtifactCollectionFilter,
    ArtifactCollectionFilterKey,
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    ArtifactFilterKey,
)
from prefect.client.schemas.objects import Artifact
from prefect.client.schemas.sorting import ArtifactSort
from prefect.settings import PREFECT_API_URL, temporary_settings
from sqlalchemy import select

from deployments.report_artifacts import report_key
from deployments.stack import wait_for_deployment
from models.db import Database, transaction
from models.report import ReportArtifact
from models.services.report_artifacts import due_reports
from tests.flows.test_end_to_end import BODY, open_incident
from tests.flows.test_prefect_outage import wait_for
from tests.stack import Stack

pytestmark = [
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

SECTIONS = ["## Summary", "## Impact window", "## Measurements", "## Actions", "## Who did what",
            "## Root cause", "## Follow-ups"]  # fmt: skip


@pytest.fixture(autouse=True)
def collected() -> Iterator[None]:
    """Prefect's client leaves connections to the garbage collector: collected here, under
    this module's warning filters."""
    yield
    gc.collect()


async def executed_then_resolved(client: AsyncClient, key: str) -> tuple[int, str]:
    """An incident whose rerun_dbt ran on the worker; its id and the action's flow run."""
    incident_id = await open_incident(client, key)
    executed = await client.post(
        f"/api/playbooks/incidents/{incident_id}/actions/execute?wait=120", json=BODY
    )
    assert executed.status_code == 200, executed.text
    assert executed.json()["status"] == "success", executed.json()
    return incident_id, str(executed.json()["flow_run_id"])


async def resolve(client: AsyncClient, incident_id: int) -> None:
    for verb in ("acknowledge", "mitigate", "resolve"):
        answer = await client.post(f"/api/incidents/{incident_id}/{verb}", json={})
        assert answer.status_code == 200, answer.text


async def versions(prefect: PrefectClient, incident_id: int, run_id: str) -> list[Artifact]:
    """Every publication of the incident's report on the run, newest first."""
    return await prefect.read_artifacts(
        artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=[report_key(incident_id)]),
            flow_run_id=ArtifactFilterFlowRunId(any_=[UUID(run_id)]),
        ),
        sort=ArtifactSort.CREATED_DESC,
    )


async def test_the_report_is_on_the_action_run_once_resolved_and_follows_its_versions(
    stack: Stack, stack_client: AsyncClient
) -> None:
    incident_id, run_id = await executed_then_resolved(stack_client, "INV_e2e_report_artifact")
    await resolve(stack_client, incident_id)

    with temporary_settings({PREFECT_API_URL: stack.env["PREFECT_API_URL"]}):
        async with get_client() as prefect:

            async def published() -> list[Artifact]:
                return await versions(prefect, incident_id, run_id)

            first, *_ = await wait_for("the report on the action's run", published, 90)
            assert first.type == "markdown"
            text = str(first.data)
            assert text.startswith(f"# Incident #{incident_id}: stale triage\n")
            positions = [text.index(section) for section in SECTIONS]
            assert positions == sorted(positions)
            assert "**Status** resolved" in text
            assert "rerun_dbt (run): success" in text
            assert "## Root cause\n\n_To be written._" in text

            saved = await stack_client.put(
                f"/api/incidents/{incident_id}/report",
                json={"root_cause": "The dbt schedule was paused", "follow_ups": "- alert on it"},
            )
            assert saved.status_code == 200, saved.text

            async def newer() -> list[Artifact]:
                found = await published()
                return found if "The dbt schedule was paused" in str(found[0].data) else []

            latest, *older = await wait_for("the saved version on Prefect", newer, 90)
            assert first.id in [artifact.id for artifact in older]
            assert "## Root cause\n\nThe dbt schedule was paused\n" in str(latest.data)
            assert "_Version 1, last edited by" in str(latest.data)
            [collection] = await prefect.read_latest_artifacts(
                artifact_filter=ArtifactCollectionFilter(
                    key=ArtifactCollectionFilterKey(any_=[report_key(incident_id)])
                )
            )
            assert collection.latest_id == latest.id  # what the UI shows for the key


@pytest.mark.timeout(600)  # a Prefect restart and the loop's backoff
async def test_a_report_due_while_prefect_is_down_is_published_once_it_is_back(
    stack: Stack, stack_app: FastAPI, stack_client: AsyncClient
) -> None:
    incident_id, run_id = await executed_then_resolved(stack_client, "INV_e2e_report_outage")
    database: Database = stack_app.state.db
    log = stack.logs / "services.log"
    logged = log.stat().st_size
    not_published = f"the report of incident {incident_id} was not published"

    stack.stop_prefect()
    try:
        await resolve(stack_client, incident_id)  # nothing in the API waits for Prefect

        async def tried() -> bool:
            written = await asyncio.to_thread(log.read_bytes)
            return not_published in written[logged:].decode(errors="replace")

        await wait_for("the services try to publish it", tried, 120)
        async with transaction(database.reader) as session:
            assert incident_id in await due_reports(session, limit=1000)
            marked = await session.get(ReportArtifact, incident_id)
        assert marked is None
    finally:
        stack.start_prefect()
        if stack.worker.poll() is not None:  # the stack goes on serving the tests after this one
            stack.start_worker()

    with temporary_settings({PREFECT_API_URL: stack.env["PREFECT_API_URL"]}):
        async with get_client() as prefect:

            async def published() -> list[Artifact]:
                return await versions(prefect, incident_id, run_id)

            artifact, *_ = await wait_for("the report once Prefect is back", published, 240)
    assert "**Status** resolved" in str(artifact.data)
    async with transaction(database.reader) as session:
        marked = await session.scalar(
            select(ReportArtifact).where(ReportArtifact.incident_id == incident_id)
        )
    assert marked is not None
    assert marked.flow_run_id == run_id
    await asyncio.to_thread(
        wait_for_deployment, stack.env["PREFECT_API_URL"], "rerun_dbt/rerun_dbt"
    )
