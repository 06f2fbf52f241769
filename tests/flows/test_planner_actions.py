"""The planner playbooks' flows on the real database, with rollback (their plans, which are
pure: tests/playbooks/test_planner_plans.py)."""

import pytest
from httpx import AsyncClient

from flows.adjust_canary_split import adjust_canary_split as adjust_flow
from flows.rollback_planner import rollback_planner as rollback_flow
from models.base import utcnow
from models.db import Database, transaction
from models.enums import ActionStatus
from models.services.actions import advance_action
from models.services.planner import set_traffic
from tests.factories import create_incident
from tests.fakes import RecordingLauncher


@pytest.fixture
async def planner(db: Database, client: AsyncClient) -> None:
    async with transaction(db.writer) as session:
        await set_traffic(
            session, traffic={"v1.2.2": 80, "v1.2.3": 20}, change="test setup", actor="test",
            at=utcnow(), stable_version="v1.2.2", canary_version="v1.2.3",
        )  # fmt: skip


async def succeed(db: Database, action_id: int) -> None:
    async with transaction(db.writer) as session:
        for status in (ActionStatus.RUNNING, ActionStatus.SUCCESS):
            await advance_action(session, action_id=action_id, status=status, at=utcnow())


async def test_rollback_planner_runs_and_its_rollback_restores_exactly(
    client: AsyncClient, db: Database, launcher: RecordingLauncher, flow_env: None,
    planner: None,
) -> None:  # fmt: skip
    incident = await create_incident(client, kind="planner", key="PLANNER_v1.2.3",
                                     playbooks=["rollback_planner"])  # fmt: skip
    url = f"/api/playbooks/incidents/{incident['id']}/actions"
    body = {"action_type": "rollback_planner", "params": {"from_version": "v1.2.3"}}
    started = (await client.post(f"{url}/execute", json=body)).json()
    launch = launcher.launches[-1]

    result = await rollback_flow.fn(**launch.parameters)
    await succeed(db, started["action_id"])

    assert result["message"] == "Rolled back to v1.2.2"
    state = (await client.get("/api/planner")).json()
    assert state["traffic"] == {"v1.2.2": 100}
    assert state["canary_version"] is None
    assert state["active_version"] == "v1.2.2"
    assert [c["change"] for c in state["history"][:2]] == [
        "rollback_planner v1.2.3 -> v1.2.2 (step 2/2)",
        "rollback_planner v1.2.3 -> v1.2.2 (step 1/2)",
    ]
    assert state["history"][1]["after"]["traffic"] == {"v1.2.2": 90, "v1.2.3": 10}

    unapproved = await client.post(f"{url}/{started['action_id']}/rollback", json={})
    assert unapproved.status_code == 403  # undoing gives the regressed canary traffic again
    undo = (await client.post(f"{url}/{started['action_id']}/rollback",
                              json={"approved_by": "lead@x.io"})).json()  # fmt: skip
    rollback_launch = launcher.launches[-1]
    assert rollback_launch.parameters["rollback"] is True
    await rollback_flow.fn(**rollback_launch.parameters)
    await succeed(db, undo["action_id"])

    restored = (await client.get("/api/planner")).json()
    assert restored["traffic"] == {"v1.2.2": 80, "v1.2.3": 20}
    assert restored["canary_version"] == "v1.2.3"
    assert restored["stable_version"] == "v1.2.2"
    again = await client.post(f"{url}/{undo['action_id']}/rollback",
                              json={"approved_by": "lead@x.io"})  # fmt: skip
    assert again.status_code == 400
    assert "itself a rollback" in again.json()["error"]["message"]


async def test_adjust_canary_split_approval_and_rollback(
    client: AsyncClient, db: Database, launcher: RecordingLauncher, flow_env: None,
    planner: None,
) -> None:  # fmt: skip
    incident = await create_incident(client, kind="planner", key="PLANNER_v1.2.3", playbooks=[])
    url = f"/api/playbooks/incidents/{incident['id']}/actions"
    body = {"action_type": "adjust_canary_split",
            "params": {"version": "v1.2.3", "target_percent": 50}}  # fmt: skip

    refused = await client.post(f"{url}/execute", json=body)
    approved = (
        await client.post(f"{url}/execute", json=body | {"approved_by": "lead@x.io"})
    ).json()
    await adjust_flow.fn(**launcher.launches[-1].parameters)
    await succeed(db, approved["action_id"])
    raised = (await client.get("/api/planner")).json()["traffic"]
    unapproved_undo = await client.post(f"{url}/{approved['action_id']}/rollback", json={})
    undo = await client.post(f"{url}/{approved['action_id']}/rollback",
                             json={"approved_by": "lead@x.io"})  # fmt: skip
    await adjust_flow.fn(**launcher.launches[-1].parameters)

    assert refused.status_code == 403
    assert raised == {"v1.2.2": 50, "v1.2.3": 50}
    assert unapproved_undo.status_code == 403  # the rollback follows the action's approval rule
    assert undo.status_code == 200
    assert (await client.get("/api/planner")).json()["traffic"] == {"v1.2.2": 80, "v1.2.3": 20}


async def test_planner_dry_run_shows_the_steps(client: AsyncClient, planner: None) -> None:
    incident = await create_incident(client, kind="planner", key="PLANNER_v1.2.3", playbooks=[])

    response = await client.post(
        f"/api/playbooks/incidents/{incident['id']}/actions/dry-run",
        json={"action_type": "rollback_planner", "params": {"from_version": "v1.2.3",
                                                             "immediate": True}},
    )  # fmt: skip

    body = response.json()
    assert response.status_code == 200
    assert body["requires_approval"] is True
    assert body["details"]["steps"] == [{"v1.2.2": 100}]
    assert "v1.2.3: 20% -> 0%" in body["changes"]


async def test_suggested_playbooks_get_presets_from_the_incident(
    client: AsyncClient, launcher: RecordingLauncher, planner: None
) -> None:
    incident = await create_incident(
        client, kind="planner", key="PLANNER_v1.2.3", metadata={"agent": "planner"},
        playbooks=["rollback_planner", "reduce_traffic", "pause_agent"],
        details={"planner": {"version": "v1.2.3", "stable": "v1.2.2"}},
    )  # fmt: skip
    url = f"/api/playbooks/incidents/{incident['id']}/actions"

    offered = (await client.get(url)).json()["available_actions"]
    dry_run = {"action_type": "rollback_planner", "params": {}}
    preview = (await client.post(f"{url}/dry-run", json=dry_run)).json()
    reduced = await client.post(f"{url}/execute", json={"action_type": "reduce_traffic"})
    paused = await client.post(f"{url}/execute", json={"action_type": "pause_agent"})
    evaluated = await client.post(f"{url}/dry-run", json={"action_type": "rerun_eval"})

    names = [a["action_type"] for a in offered]
    assert names[:3] == ["rollback_planner", "reduce_traffic", "pause_agent"]
    reduce = offered[1]
    assert "target_percent" not in reduce["params"]
    assert offered[2]["requires_approval"] is True
    assert preview["details"]["from_version"] == "v1.2.3"
    assert reduced.status_code == 200, reduced.text
    assert launcher.launches[-1].deployment == "adjust_canary_split/adjust_canary_split"
    assert launcher.launches[-1].parameters["params"] == {
        "version": "v1.2.3", "target_percent": 5, "gradual": False,
    }  # fmt: skip
    assert paused.status_code == 403  # pause_agent always needs approval
    assert evaluated.json()["details"]["agent"] == "planner"


async def test_a_concurrent_change_stops_a_walk_instead_of_being_overwritten(
    db: Database, client: AsyncClient, flow_env: None, planner: None
) -> None:
    from flows import planner_steps
    from models.errors import Conflict

    async with transaction(db.writer) as session:  # someone else moved the canary meanwhile
        await set_traffic(session, traffic={"v1.2.2": 95, "v1.2.3": 5}, change="other",
                          actor="test", at=utcnow())  # fmt: skip

    with pytest.raises(Conflict, match="changed since this was planned"):
        await planner_steps.walk(
            action_id=1, actor="test", start={"v1.2.2": 80, "v1.2.3": 20},
            steps=[{"v1.2.2": 100}], change="stale plan",
        )  # fmt: skip

    assert (await client.get("/api/planner")).json()["traffic"] == {"v1.2.2": 95, "v1.2.3": 5}


async def test_an_idempotent_retry_gets_its_action_even_after_the_state_moved(
    client: AsyncClient, db: Database, launcher: RecordingLauncher, planner: None
) -> None:
    incident = await create_incident(client, kind="planner", key="PLANNER_v1.2.3", playbooks=[])
    url = f"/api/playbooks/incidents/{incident['id']}/actions/execute"
    body = {"action_type": "rollback_planner", "params": {"from_version": "v1.2.3"}}
    first = (await client.post(url, json=body, headers={"Idempotency-Key": "k1"})).json()
    async with transaction(db.writer) as session:
        await set_traffic(session, traffic={"v1.2.2": 100}, change="done", actor="test",
                          at=utcnow())  # fmt: skip

    retry = await client.post(url, json=body, headers={"Idempotency-Key": "k1"})

    assert retry.status_code == 200
    assert retry.json()["action_id"] == first["action_id"]


async def test_a_run_that_failed_after_a_change_can_still_be_rolled_back(
    client: AsyncClient, db: Database, launcher: RecordingLauncher, planner: None
) -> None:
    from models.services.actions import store_result

    incident = await create_incident(client, kind="planner", key="PLANNER_v1.2.3", playbooks=[])
    url = f"/api/playbooks/incidents/{incident['id']}/actions"
    body = {"action_type": "rollback_planner", "params": {"from_version": "v1.2.3"}}
    started = (await client.post(f"{url}/execute", json=body)).json()
    async with transaction(db.writer) as session:  # it captured the state, then crashed
        prior = {"prior_state": {"traffic": {"v1.2.2": 80, "v1.2.3": 20}}}
        await store_result(session, action_id=started["action_id"], at=utcnow(), result=prior)
        for status in (ActionStatus.RUNNING, ActionStatus.CRASHED):
            await advance_action(session, action_id=started["action_id"], status=status,
                                 at=utcnow())  # fmt: skip

    response = await client.post(f"{url}/{started['action_id']}/rollback",
                                 json={"approved_by": "lead@x.io"})  # fmt: skip

    assert response.status_code == 200, response.text
    assert launcher.launches[-1].parameters["prior_state"]["traffic"] == {"v1.2.2": 80,
                                                                          "v1.2.3": 20}  # fmt: skip
