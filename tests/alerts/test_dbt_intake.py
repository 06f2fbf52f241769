"""dbt's real artifacts through the API, the CLI and lineage grouping, on SQLite and PostgreSQL:
a stale source opens its incident; the tests that fail downstream of it join it instead of
opening their own; a fresh source resolves it; then a failing test stands on its own, with
rerun_dbt suggested for its model."""

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from httpx import AsyncClient

from alerts import dbt
from alerts.rules import load_rules
from integrations.dbt_results import read_artifact
from models.db import Database, transaction
from models.services.incidents import IncidentCap
from models.settings import Settings
from playbooks.catalog import SUGGESTABLE
from tests.integrations.test_dbt_results import (  # noqa: F401 - dbt_artifacts, a fixture
    NOT_NULL,
    RAW_EMAILS,
    Artifacts,
    dbt_artifacts,
)

pytestmark = [
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]
ENDPOINT = "/api/integrations/dbt/run-results"


async def post(client: AsyncClient, path: Path) -> dict[str, Any]:
    document = json.loads(await asyncio.to_thread(path.read_bytes))
    answer = await client.post(ENDPOINT, json=document)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def take(db: Database, settings: Settings, path: Path, artifacts: Artifacts) -> list[Any]:
    """The artifact taken with the fixture project's own manifest (its lineage)."""
    parsed = read_artifact(path, manifest=artifacts.manifest)
    rules = load_rules(settings.alert_rules_file, SUGGESTABLE)
    async with transaction(db.writer) as session:
        intake = await dbt.take_artifact(
            session, parsed, manifest=artifacts.manifest, rules=rules, cap=IncidentCap()
        )
    return intake.taken


def outcome_of(taken: list[dict[str, Any]], prefix: str) -> dict[str, Any]:
    return next(item for item in taken if item["key"].startswith(prefix))


async def test_a_stale_source_groups_the_failures_below_it(
    client: AsyncClient, db: Database, settings: Settings, dbt_artifacts: Artifacts
) -> None:
    stale = await post(client, dbt_artifacts.stale)
    source = outcome_of(stale["taken"], RAW_EMAILS)
    assert source["outcome"] == "opened"
    incident = (await client.get(f"/api/incidents/{source['incident_id']}")).json()
    assert incident["kind"] == "invariant"
    assert incident["summary"].startswith("source demo.raw_emails is stale")
    assert incident["metadata"]["dbt_nodes"] == [RAW_EMAILS]

    taken = await take(db, settings, dbt_artifacts.test, dbt_artifacts)
    below = next(item for item in taken if item.key.startswith(NOT_NULL))
    assert below.outcome.value == "related"
    assert below.incident_id == source["incident_id"]
    shown = (await client.get(f"/api/incidents/{source['incident_id']}")).json()
    assert below.key in [r["key"] for r in shown["related"]]

    fresh = await post(client, dbt_artifacts.fresh)
    assert outcome_of(fresh["taken"], RAW_EMAILS)["outcome"] == "resolved"
    again = await take(db, settings, dbt_artifacts.test, dbt_artifacts)
    alone = next(item for item in again if item.key.startswith(NOT_NULL))
    assert alone.outcome.value == "opened"
    test_incident = (await client.get(f"/api/incidents/{alone.incident_id}")).json()
    assert test_incident["playbooks"] == ["rerun_dbt"]
    assert test_incident["severity"] == "sev2"  # the demo rule warehouse-tests
    assert test_incident["metadata"]["rule"] == "warehouse-tests"
    assert test_incident["metadata"]["playbook_params"] == {
        "rerun_dbt": {"models": ["inbox_emails"]}
    }
    dry_run = await client.post(
        f"/api/playbooks/incidents/{alone.incident_id}/actions/dry-run",
        json={"action_type": "rerun_dbt", "params": {}},
    )
    assert dry_run.status_code == 200, dry_run.text
    assert dry_run.json()["details"]["models"] == ["inbox_emails"]


async def test_the_api_says_what_became_of_each_result(
    client: AsyncClient, dbt_artifacts: Artifacts
) -> None:
    build = await post(client, dbt_artifacts.build)
    results = json.loads(dbt_artifacts.build.read_text())["results"]
    assert build["source"] == "dbt"
    assert build["received"] == len(results)
    assert build["ignored"] == 3  # skipped below the failed test
    for item in build["taken"]:  # each index names its own result
        assert results[item["index"]]["unique_id"] == item["key"]
    outcomes = {item["outcome"] for item in build["taken"]}
    assert outcomes == {"opened", "ignored"}  # passes resolve nothing open yet


async def test_an_artifact_of_another_kind_is_400(client: AsyncClient) -> None:
    manifest = {
        "metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/v12.json"}
    }
    answer = await client.post(ENDPOINT, json=manifest)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "bad_request"
    assert (await client.get("/api/incidents")).json()["total"] == 0


async def test_intervene_ingest_dbt(
    client: AsyncClient, settings: Settings, dbt_artifacts: Artifacts
) -> None:
    env = os.environ | {"INTERVENE_DATABASE_URL": settings.database_url}
    command = [
        sys.executable, "-m", "intervene_cli", "ingest", "dbt", str(dbt_artifacts.test),
        "--manifest", str(dbt_artifacts.manifest_path),
    ]  # fmt: skip
    done = await asyncio.to_thread(
        subprocess.run, command, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "opened" in done.stdout
    listed = (await client.get("/api/incidents", params={"kind": "invariant"})).json()
    assert any(i["key"].startswith(NOT_NULL) for i in listed["incidents"])
    missing = await asyncio.to_thread(
        subprocess.run,
        [*command[:5], "/nonexistent/run_results.json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode == 2
