"""A check that declares the dbt model it reads (`watches:`) joins the incident of a failing node
upstream of it instead of opening its own, on SQLite and PostgreSQL: the demo's freshness check
on inbox_emails while dbt says its source demo.raw_emails is stale (dbt's real sources.json)."""

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from httpx import AsyncClient

from checks.config import CheckSpec
from checks.runner import record_many
from integrations.lineage import Lineage
from models.check_run import CheckRun
from models.db import Database
from models.services.checks import Measurement
from models.settings import Settings
from playbooks.catalog import load_checks
from tests.integrations.test_dbt_results import (  # noqa: F401 - dbt_artifacts, a fixture
    PROJECT,
    RAW_EMAILS,
    Artifacts,
    dbt_artifacts,
)

pytestmark = [
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]
ENDPOINT = "/api/integrations/dbt/run-results"
FRESHNESS: CheckSpec = load_checks(Settings().checks_file)["data_freshness_inbox"]
INBOX = f"model.{PROJECT}.inbox_emails"
KEY = "INV_data_freshness_inbox"


async def post(client: AsyncClient, path: Path) -> dict[str, Any]:
    document = json.loads(await asyncio.to_thread(path.read_bytes))
    answer = await client.post(ENDPOINT, json=document)
    assert answer.status_code == 200, answer.text
    [source] = [item for item in answer.json()["taken"] if item["key"] == RAW_EMAILS]
    return dict(source)


async def measure(
    db: Database, settings: Settings, *, passed: bool, spec: CheckSpec = FRESHNESS
) -> CheckRun:
    value = 60.0 if passed else 9000.0
    measured = Measurement(spec.id, datetime.now(UTC), 1.0, spec.threshold, value, passed)
    [run] = await record_many([(spec, measured)], db, settings)
    return run


async def incidents_keyed(client: AsyncClient, key: str) -> list[dict[str, Any]]:
    listed = (await client.get("/api/incidents", params={"limit": 100})).json()["incidents"]
    return [incident for incident in listed if incident["key"] == key]


def test_the_demo_check_watches_the_model_it_reads() -> None:
    assert FRESHNESS.watches == ["inbox_emails"]


def test_a_watched_name_resolves_to_its_node(dbt_artifacts: Artifacts) -> None:
    lineage: Lineage = dbt_artifacts.manifest.lineage
    assert lineage.ids_of(["inbox_emails", "demo.raw_emails", "no_such_model"]) == (
        INBOX,
        RAW_EMAILS,
    )
    assert lineage.ids_of([INBOX]) == (INBOX,)
    assert lineage.is_downstream((INBOX,), (RAW_EMAILS,))


async def test_a_failing_check_on_the_failing_node_itself_opens_its_own(
    client: AsyncClient, db: Database, settings: Settings, dbt_artifacts: Artifacts
) -> None:
    """Strictly downstream, as for dbt's own results: a check that reads demo.raw_emails is not
    the source's freshness failing again (another failure of the same node stands alone)."""
    await post(client, dbt_artifacts.stale)
    on_source = FRESHNESS.model_copy(update={"watches": ["demo.raw_emails"]})

    run = await measure(db, settings, passed=False, spec=on_source)

    [own] = await incidents_keyed(client, KEY)
    assert run.incident_id == own["id"]


async def test_a_failing_check_below_a_stale_source_joins_its_incident(
    client: AsyncClient, db: Database, settings: Settings, dbt_artifacts: Artifacts
) -> None:
    source = await post(client, dbt_artifacts.stale)
    assert source["outcome"] == "opened"

    first = await measure(db, settings, passed=False)
    second = await measure(db, settings, passed=False)

    assert (first.incident_id, second.incident_id) == (None, None)
    assert first.context["related_to"] == source["incident_id"]
    assert await incidents_keyed(client, KEY) == []
    upstream = (await client.get(f"/api/incidents/{source['incident_id']}")).json()
    [related] = upstream["related"]
    assert (related["kind"], related["key"], related["source"]) == ("invariant", KEY, "check")
    assert (related["occurrences"], related["firing"]) == (2, True)
    timeline = (await client.get(f"/api/incidents/{source['incident_id']}/timeline")).json()
    joined = [entry for entry in timeline["entries"] if entry["verb"] == "related"]
    assert len(joined) == 1  # noted once, counted after
    assert joined[0]["actor"] == "check:data_freshness_inbox"
    assert KEY in joined[0]["notes"]
    assert INBOX in joined[0]["notes"]

    # the source is fresh again: the next failure stands on its own, with the node it watches
    assert (await post(client, dbt_artifacts.fresh))["outcome"] == "resolved"
    alone = await measure(db, settings, passed=False)
    [own] = await incidents_keyed(client, KEY)
    assert alone.incident_id == own["id"]
    assert "related_to" not in alone.context
    assert own["metadata"]["dbt_nodes"] == [INBOX]
    shown = (await client.get(f"/api/incidents/{source['incident_id']}")).json()
    assert shown["related"][0]["firing"] is False  # released when the upstream ended


async def test_a_pass_ends_the_related_hold(
    client: AsyncClient, db: Database, settings: Settings, dbt_artifacts: Artifacts
) -> None:
    source = await post(client, dbt_artifacts.stale)
    await measure(db, settings, passed=False)
    await measure(db, settings, passed=True)

    [related] = (await client.get(f"/api/incidents/{source['incident_id']}")).json()["related"]
    assert (related["occurrences"], related["firing"]) == (1, False)
    # a later failure while the source is still stale joins it afresh
    again = await measure(db, settings, passed=False)
    assert again.context["related_to"] == source["incident_id"]
    listed = (await client.get(f"/api/incidents/{source['incident_id']}")).json()["related"]
    assert [(r["occurrences"], r["firing"]) for r in listed] == [(1, False), (1, True)]


async def test_a_check_that_watches_nothing_opens_its_own(
    client: AsyncClient, db: Database, settings: Settings, dbt_artifacts: Artifacts
) -> None:
    await post(client, dbt_artifacts.stale)
    blind = FRESHNESS.model_copy(update={"watches": []})

    run = await measure(db, settings, passed=False, spec=blind)

    [own] = await incidents_keyed(client, KEY)
    assert run.incident_id == own["id"]
    assert "dbt_nodes" not in own["metadata"]


async def test_without_a_parsed_project_the_check_opens_its_own(
    client: AsyncClient, db: Database, settings: Settings, dbt_artifacts: Artifacts, tmp_path: Path
) -> None:
    await post(client, dbt_artifacts.stale)
    unparsed = settings.model_copy(update={"dbt_target_dir": tmp_path})

    run = await measure(db, unparsed, passed=False)

    [own] = await incidents_keyed(client, KEY)
    assert run.incident_id == own["id"]


async def test_its_own_incident_names_the_node_it_watches(
    client: AsyncClient, db: Database, settings: Settings
) -> None:
    """What a dbt failure further down (a test on triage_results) joins when the check broke
    first: its `dbt_nodes`, as a source's incident has them."""
    run = await measure(db, settings, passed=False)
    assert run.incident_id is not None
    own = (await client.get(f"/api/incidents/{run.incident_id}")).json()
    assert own["metadata"]["dbt_nodes"] == [INBOX]
