"""One source for every estimate: the catalog (GET .../actions) quotes what a dry-run of the
action's typical run computes, for every action type in the registry; once an action type has
run, both scale by how long its recent runs took against their default estimates, and say so."""

from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from models.base import utcnow
from models.db import Database, transaction
from models.enums import ActionStatus
from models.services.actions import advance_action
from models.services.planner import set_traffic
from playbooks.catalog import ACTIONS
from tests.factories import create_incident

PLANNER = {"kind": "planner", "key": "PLANNER_v1.2.3", "playbooks": []}
PIPELINE = {"kind": "pipeline", "key": "PIPELINE_etl/nightly", "playbooks": []}
SYNONYMS = {
    "index_name": "products",
    "synonyms_set": "products-synonyms",
    "synonyms": ["tv, telly"],
}
# action type: (the incident, the params of its typical run, the dry-run's seconds and USD, the
# catalog's duration and cost). No Elasticsearch here: those dry-runs fail, with their plan.
TYPICAL: dict[str, tuple[dict[str, Any], dict[str, Any], int, float, str, str]] = {
    "rerun_dbt": ({}, {"models": ["inbox_emails"]}, 180, 0.03, "3 minutes", "$0.03"),
    "rerun_eval": ({}, {"checks": ["triage_quality"]}, 2, 0.0, "2 seconds", "$0"),
    "clear_cache": ({}, {"index_name": "products"}, 5, 0.0, "5 seconds", "$0"),
    "refresh_synonyms": ({}, SYNONYMS, 5, 0.0005, "5 seconds", "$0.0005"),
    "rollback_planner": (PLANNER, {"from_version": "v1.2.3"}, 35, 0.0, "35 seconds", "$0"),
    "adjust_canary_split": (PLANNER, {"version": "v1.2.3", "target_percent": 5}, 5, 0.0,
                            "5 seconds", "$0"),
    # no Prefect here: the dry-run says it cannot run now, with its plan
    "retry_flow_run": (PIPELINE, {"deployment": "etl/nightly", "parameters": {"day": 1}}, 60,
                       0.0, "60 seconds", "$0"),
}  # fmt: skip


def url(incident_id: int, path: str = "") -> str:
    return f"/api/playbooks/incidents/{incident_id}/actions{path}"


@pytest.fixture
async def canary(db: Database, client: AsyncClient) -> None:
    async with transaction(db.writer) as session:
        await set_traffic(
            session, traffic={"v1.2.2": 80, "v1.2.3": 20}, change="test setup", actor="test",
            at=utcnow(), stable_version="v1.2.2", canary_version="v1.2.3",
        )  # fmt: skip


async def offered(client: AsyncClient, incident_id: int, action_type: str) -> dict[str, Any]:
    actions = (await client.get(url(incident_id))).json()["available_actions"]
    return next(a for a in actions if a["action_type"] == action_type)


def test_every_action_type_has_a_typical_run_here() -> None:
    assert set(TYPICAL) == set(ACTIONS)


@pytest.mark.parametrize("action_type", sorted(TYPICAL))
async def test_the_catalog_quotes_what_the_dry_run_of_a_typical_run_computes(
    client: AsyncClient, app: FastAPI, canary: None, action_type: str
) -> None:
    incident_kind, params, seconds, cost, duration_text, cost_text = TYPICAL[action_type]
    incident = await create_incident(client, **incident_kind)

    listed = await offered(client, incident["id"], action_type)
    planned = await client.post(
        url(incident["id"], "/dry-run"), json={"action_type": action_type, "params": params}
    )

    assert planned.status_code == 200, planned.text
    body = planned.json()
    assert (body["estimated_duration"], body["estimated_cost"]) == (seconds, cost)
    assert body["details"]["estimate"] == {
        "basis": "default", "runs": 0, "default_duration": seconds, "default_cost": cost,
    }  # fmt: skip
    assert (listed["estimated_duration"], listed["estimated_cost"]) == (duration_text, cost_text)
    assert listed["estimate_basis"] == f"default, {ACTIONS[action_type].typical.what}"


async def run(client: AsyncClient, db: Database, incident_id: int, seconds: float,
              status: ActionStatus = ActionStatus.SUCCESS) -> None:  # fmt: skip
    """An execution of rerun_dbt (one model) that ran for `seconds` and ended with `status`."""
    body = {"action_type": "rerun_dbt", "params": {"models": ["inbox_emails"]}}
    action = (await client.post(url(incident_id, "/execute"), json=body)).json()
    started = utcnow()
    async with transaction(db.writer) as session:
        await advance_action(
            session, action_id=action["action_id"], status=ActionStatus.RUNNING, at=started
        )
        await advance_action(
            session, action_id=action["action_id"], status=status,
            at=started + timedelta(seconds=seconds),
        )  # fmt: skip


async def test_estimates_learn_from_the_last_successful_runs(
    client: AsyncClient, db: Database
) -> None:
    incident = await create_incident(client)
    for seconds in (2.0, 1.9, 2.2):  # the default says 180 s for one model
        await run(client, db, incident["id"], seconds)
    await run(client, db, incident["id"], 900.0, ActionStatus.FAILED)  # counts for nothing

    async def dry_run(*models: str) -> dict[str, Any]:
        body = {"action_type": "rerun_dbt", "params": {"models": list(models)}}
        response = await client.post(url(incident["id"], "/dry-run"), json=body)
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    one = await dry_run("inbox_emails")
    two = await dry_run("inbox_emails", "triage_results")
    listed = await offered(client, incident["id"], "rerun_dbt")

    # the median run took 2.0 s of the 180 s its default estimate said: 1/90 of it
    assert (one["estimated_duration"], one["estimated_cost"]) == (2, 0.0003)
    assert one["details"]["estimate"] == {
        "basis": "from the last 3 runs", "runs": 3, "default_duration": 180, "default_cost": 0.03,
    }  # fmt: skip
    assert two["estimated_duration"] == round(300 / 90)  # two models: 300 s by default
    assert (listed["estimated_duration"], listed["estimated_cost"]) == ("2 seconds", "$0.0003")
    assert listed["estimate_basis"] == "from the last 3 runs, for one model, incremental"
