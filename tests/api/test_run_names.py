"""Action runs are named for what they do in the Prefect UI: the name run_name() gives, passed
by the playbook service to the Launcher for an execute and a rollback."""

from dataclasses import replace

import pytest
from httpx import AsyncClient

from models.base import utcnow
from models.db import Database, transaction
from models.enums import ActionStatus
from models.services.actions import advance_action
from playbooks.catalog import ACTIONS
from playbooks.launcher import run_name
from tests.factories import create_incident
from tests.fakes import RecordingLauncher

RERUN = {"task_id": "task-123", "models": ["inbox_emails"], "full_refresh": False}


def actions_url(incident_id: int, path: str = "") -> str:
    return f"/api/playbooks/incidents/{incident_id}/actions{path}"


def test_run_names() -> None:
    assert run_name("rerun_dbt", 12, 34) == "rerun_dbt · incident 12 · action 34"
    assert (
        run_name("rollback_planner", 12, 34, rollback=True)
        == "rollback_planner · incident 12 · rollback of action 34"
    )
    assert (
        run_name("rerun_dbt", 12, 34, dry_run=True)
        == "rerun_dbt · incident 12 · dry run of action 34"
    )
    assert run_name("rerun_dbt", None, 34) == "rerun_dbt · action 34"


async def test_an_execute_launches_a_named_run(
    client: AsyncClient, launcher: RecordingLauncher
) -> None:
    incident = await create_incident(client)

    response = await client.post(
        actions_url(incident["id"], "/execute"),
        json={"action_type": "rerun_dbt", "params": RERUN},
    )

    assert response.status_code == 200, response.text
    action_id = response.json()["action_id"]
    assert (
        launcher.launches[-1].name == f"rerun_dbt · incident {incident['id']} · action {action_id}"
    )


async def test_a_rollback_launches_a_run_named_for_the_action_it_undoes(
    client: AsyncClient, launcher: RecordingLauncher, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # rerun_dbt itself has no rollback; the engine path is the same for every action that does
    monkeypatch.setitem(
        ACTIONS, "rerun_dbt", replace(ACTIONS["rerun_dbt"], rollback_supported=True)
    )
    incident = await create_incident(client)
    original = (
        await client.post(
            actions_url(incident["id"], "/execute"),
            json={"action_type": "rerun_dbt", "params": RERUN},
        )
    ).json()["action_id"]
    async with transaction(db.writer) as session:
        for status in (ActionStatus.RUNNING, ActionStatus.SUCCESS):
            await advance_action(session, action_id=original, status=status, at=utcnow())

    response = await client.post(actions_url(incident["id"], f"/{original}/rollback"), json={})

    assert response.status_code == 200, response.text
    assert response.json()["action_id"] != original
    assert launcher.launches[-1].name == (
        f"rerun_dbt · incident {incident['id']} · rollback of action {original}"
    )
