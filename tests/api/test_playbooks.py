"""The Playbooks API with the launcher replaced by a recorder (Prefect is not the point here;
tests/flows/test_end_to_end.py runs the real thing)."""

import asyncio
import time
from collections import Counter
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from httpx import AsyncClient

from models.base import utcnow
from models.db import Database, transaction
from models.enums import ActionStatus
from models.services import actions as service
from models.services.actions import advance_action
from models.services.installation import installation_id
from models.services.planner import set_traffic
from playbooks.catalog import ACTIONS
from tests.factories import create_incident, create_incident_in
from tests.fakes import RecordingLauncher

RERUN = {"task_id": "task-123", "models": ["inbox_emails"], "full_refresh": False}


def actions_url(incident_id: int, path: str = "") -> str:
    return f"/api/playbooks/incidents/{incident_id}/actions{path}"


async def dry_run(client: AsyncClient, incident_id: int, **params: Any) -> Any:
    return await client.post(
        actions_url(incident_id, "/dry-run"),
        json={"action_type": "rerun_dbt", "params": RERUN | params},
    )


async def execute(
    client: AsyncClient, incident_id: int, headers: dict[str, str] | None = None, **body: Any
) -> Any:
    payload = {"action_type": "rerun_dbt", "params": RERUN} | body
    return await client.post(actions_url(incident_id, "/execute"), json=payload, headers=headers)


async def test_available_actions_have_the_contract_shape(client: AsyncClient) -> None:
    incident = await create_incident(client, playbooks=["rerun_dbt"])

    response = await client.get(actions_url(incident["id"]))

    assert response.status_code == 200
    body = response.json()
    assert body["incident_id"] == incident["id"]
    rerun = body["available_actions"][0]
    assert rerun == {
        "action_type": "rerun_dbt",
        "display_name": "Re-run DBT Models",
        "description": "Re-run specified dbt models to refresh data",
        "params": {
            "task_id": "string (required)",
            "models": "array[string] (required)",
            "full_refresh": "boolean (optional, default: false)",
            "upstream": "boolean (optional, default: false)",
            "threads": "integer (optional, default: 4)",
        },
        "requires_approval": False,
        # the contract's formats; the figures are the dry-run's for one model (test_estimates.py)
        "estimated_duration": "3 minutes",
        "estimated_cost": "$0.03",
        "estimate_basis": "default, for one model, incremental",
        "rollback_supported": False,
    }


async def test_actions_that_do_not_apply_are_not_offered(client: AsyncClient) -> None:
    incident = await create_incident(client, kind="planner", playbooks=["adjust_canary_split"])

    body = (await client.get(actions_url(incident["id"]))).json()

    offered = [a["action_type"] for a in body["available_actions"]]
    # suggested first, then the rest that apply to planner incidents (no dbt, no cache)
    assert offered == ["adjust_canary_split", "rerun_eval", "rollback_planner"]


async def test_available_actions_of_unknown_incident_is_404(client: AsyncClient) -> None:
    response = await client.get(actions_url(98765))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_dry_run_answers_as_the_contract_and_is_recorded(client: AsyncClient) -> None:
    incident = await create_incident(client)

    response = await dry_run(client, incident["id"])

    assert response.status_code == 200
    body = response.json()
    assert body["action_type"] == "rerun_dbt"
    assert body["status"] == "dry_run_success"
    assert body["message"] == "Command: dbt run --select inbox_emails --threads 4"
    assert body["details"]["command"] == "dbt run --select inbox_emails --threads 4"
    assert body["details"]["models"] == ["inbox_emails"]
    assert body["changes"] == [
        "Will re-run 1 dbt model",
        "Model: inbox_emails",
        "No full refresh (incremental only)",
    ]
    assert isinstance(body["estimated_duration"], int)
    assert body["estimated_duration"] > 0
    assert body["estimated_cost"] > 0
    assert body["requires_approval"] is False
    assert response.headers["X-Incident-RateLimit-Limit"] == "100"
    assert response.headers["X-Incident-RateLimit-Remaining"] == "99"
    assert int(response.headers["X-Incident-RateLimit-Reset"]) > time.time()
    assert response.headers["X-RateLimit-Limit"] == "1000000"  # always the address's budget
    history = (await client.get(actions_url(incident["id"], "/history"))).json()["actions"]
    assert [(a["id"], a["dry_run"], a["status"]) for a in history] == [
        (body["action_id"], True, "dry_run_success")
    ]


async def test_upstream_selects_ancestors_in_build_order(client: AsyncClient) -> None:
    incident = await create_incident(client)

    body = (await dry_run(client, incident["id"], models=["triage_results"], upstream=True)).json()

    assert body["details"]["command"] == "dbt run --select +triage_results --threads 4"
    assert body["details"]["models"] == ["inbox_emails", "triage_results"]
    assert body["changes"][0] == "Will re-run 2 dbt models"


async def test_full_refresh_requires_approval(client: AsyncClient) -> None:
    incident = await create_incident(client)

    body = (await dry_run(client, incident["id"], full_refresh=True)).json()

    assert body["requires_approval"] is True
    assert body["details"]["command"].endswith("--full-refresh")
    assert any("inbox_emails" in change and "Full refresh" in change for change in body["changes"])


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"models": ["no_such_model"]}, "body.params.models"),
        ({"models": ["inbox_emails; rm -rf /"]}, "body.params.models.0"),
        ({"models": []}, "body.params.models"),
        ({"threads": "many"}, "body.params.threads"),
        ({"threads": 0}, "body.params.threads"),
        ({"task_id": ""}, "body.params.task_id"),
        ({"surprise": True}, "body.params.surprise"),
    ],
)
async def test_bad_params_are_422_and_record_nothing(
    client: AsyncClient, params: dict[str, Any], field: str
) -> None:
    incident = await create_incident(client)

    response = await dry_run(client, incident["id"], **params)

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in [e["field"] for e in error["details"]["errors"]]
    history = (await client.get(actions_url(incident["id"], "/history"))).json()
    assert history["actions"] == []


async def test_unknown_action_type_is_400(client: AsyncClient) -> None:
    incident = await create_incident(client)

    response = await client.post(
        actions_url(incident["id"], "/dry-run"), json={"action_type": "reboot_prod", "params": {}}
    )

    assert response.status_code == 400
    assert response.json()["error"]["details"]["known"] == [
        "adjust_canary_split", "clear_cache", "pause_agent", "reduce_traffic",
        "refresh_synonyms", "rerun_dbt", "rerun_eval", "retry_flow_run", "rollback_planner",
    ]  # fmt: skip


async def test_an_action_that_does_not_apply_is_400(client: AsyncClient) -> None:
    incident = await create_incident(client, kind="planner", playbooks=[])

    response = await execute(client, incident["id"])

    assert response.status_code == 400
    assert "does not apply" in response.json()["error"]["message"]


async def test_dry_run_of_unknown_incident_is_404(client: AsyncClient) -> None:
    response = await dry_run(client, 123456)
    assert response.status_code == 404


async def test_execute_records_then_triggers_the_deployment(
    client: AsyncClient, launcher: RecordingLauncher, db: Database
) -> None:
    incident = await create_incident(client)

    response = await execute(client, incident["id"])

    assert response.status_code == 200
    body = response.json()
    for field in ["action_id", "action_type", "status", "message", "details",
                  "estimated_duration", "actual_duration", "estimated_cost", "logs_url",
                  "rollback_available", "created_at", "completed_at"]:  # fmt: skip
        assert field in body
    assert body["status"] == "scheduled"
    assert body["logs_url"] == body["flow_run_url"]
    assert body["flow_run_id"]
    assert body["rollback_available"] is False
    assert len(launcher.launches) == 1
    launch = launcher.launches[0]
    assert launch.deployment == "rerun_dbt/rerun_dbt"
    async with transaction(db.reader) as session:
        installation = await installation_id(session)
    assert launch.key == f"intervene-{installation}-action-{body['action_id']}"
    assert launch.parameters == {
        "action_id": body["action_id"],
        "params": RERUN | {"upstream": False, "threads": 4},
        "dry_run": False,
        "rollback": False,
        "prior_state": None,
    }
    assert f"action:{body['action_id']}" in launch.tags
    assert f"installation:{installation}" in launch.tags
    assert response.headers["X-Incident-RateLimit-Limit"] == "10"
    assert response.headers["X-Incident-RateLimit-Remaining"] == "9"
    assert response.headers["X-RateLimit-Limit"] == "1000000"


async def test_approval_required_without_approver_is_403_and_starts_nothing(
    client: AsyncClient, launcher: RecordingLauncher
) -> None:
    incident = await create_incident(client)

    response = await execute(client, incident["id"], params=RERUN | {"full_refresh": True})

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    assert launcher.launches == []
    history = (await client.get(actions_url(incident["id"], "/history"))).json()
    assert history["actions"] == []


async def test_approved_execute_records_the_approver(
    client: AsyncClient, launcher: RecordingLauncher
) -> None:
    incident = await create_incident(client)

    response = await execute(
        client, incident["id"], params=RERUN | {"full_refresh": True},
        approved_by="lead@x.io",
    )  # fmt: skip

    assert response.status_code == 200
    assert response.json()["approved_by"] == "lead@x.io"
    assert launcher.launches[0].parameters["params"]["full_refresh"] is True


async def test_idempotency_key_returns_the_original_action(
    client: AsyncClient, launcher: RecordingLauncher
) -> None:
    incident = await create_incident(client)
    headers = {"Idempotency-Key": "retry-me-1"}

    first = await execute(client, incident["id"], headers=headers)
    again = await asyncio.gather(
        *(execute(client, incident["id"], headers=headers) for _ in range(5))
    )

    assert first.status_code == 200
    assert {r.json()["action_id"] for r in again} == {first.json()["action_id"]}
    assert len(launcher.launches) == 1


async def test_racing_executes_never_exceed_the_per_incident_limit(
    client: AsyncClient, launcher: RecordingLauncher
) -> None:
    incident = await create_incident(client)

    responses = await asyncio.gather(*(execute(client, incident["id"]) for _ in range(14)))

    assert Counter(r.status_code for r in responses) == {200: 10, 429: 4}
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.json()["error"]["code"] == "rate_limited"
    assert 3500 < int(refused.headers["Retry-After"]) <= 3600
    assert refused.headers["X-Incident-RateLimit-Limit"] == "10"
    assert refused.headers["X-Incident-RateLimit-Remaining"] == "0"
    assert int(refused.headers["X-Incident-RateLimit-Reset"]) > time.time()
    assert refused.headers["X-RateLimit-Limit"] == "1000000"  # the address still has plenty
    assert int(refused.headers["X-RateLimit-Remaining"]) > 0
    assert len(launcher.launches) == 10


async def test_dry_runs_are_limited_to_100_per_incident_per_hour(client: AsyncClient) -> None:
    incident = await create_incident(client)
    for _ in range(100):
        assert (await dry_run(client, incident["id"])).status_code == 200

    response = await dry_run(client, incident["id"])

    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) >= 1
    assert response.headers["X-Incident-RateLimit-Limit"] == "100"
    assert response.headers["X-RateLimit-Limit"] == "1000000"
    other = await create_incident(client)
    assert (await dry_run(client, other["id"])).status_code == 200


async def test_prefect_unreachable_is_503_and_the_action_is_kept_as_failed(
    client: AsyncClient, launcher: RecordingLauncher
) -> None:
    incident = await create_incident(client)
    launcher.fail_with = "connection refused"

    response = await execute(client, incident["id"])

    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "unavailable"
    history = (await client.get(actions_url(incident["id"], "/history"))).json()["actions"]
    assert [(a["id"], a["status"]) for a in history] == [(error["details"]["action_id"], "failed")]
    assert "connection refused" in history[0]["message"]


async def test_wait_returns_once_the_action_finishes(
    client: AsyncClient, launcher: RecordingLauncher, db: Database
) -> None:
    incident = await create_incident(client)

    async def finish_soon() -> None:
        while not launcher.launches:
            await asyncio.sleep(0.05)
        action_id = launcher.launches[0].parameters["action_id"]
        for status in (ActionStatus.RUNNING, ActionStatus.SUCCESS):
            async with transaction(db.writer) as session:
                await advance_action(session, action_id=action_id, status=status, at=utcnow())

    response, _ = await asyncio.gather(
        client.post(
            actions_url(incident["id"], "/execute") + "?wait=10",
            json={"action_type": "rerun_dbt", "params": RERUN},
        ),
        finish_soon(),
    )

    body = response.json()
    assert body["status"] == "success"
    assert body["completed_at"] is not None
    assert body["actual_duration"] is not None


async def test_wait_above_300_seconds_is_422(client: AsyncClient) -> None:
    incident = await create_incident(client)
    response = await client.post(
        actions_url(incident["id"], "/execute") + "?wait=301",
        json={"action_type": "rerun_dbt", "params": RERUN},
    )
    assert response.status_code == 422


async def test_rollback_refusals(
    client: AsyncClient, launcher: RecordingLauncher, db: Database
) -> None:
    incident = await create_incident(client)
    preview = (await dry_run(client, incident["id"])).json()
    scheduled = (await execute(client, incident["id"])).json()
    succeeded = (await execute(client, incident["id"])).json()
    async with transaction(db.writer) as session:
        for status in (ActionStatus.RUNNING, ActionStatus.SUCCESS):
            await advance_action(
                session, action_id=succeeded["action_id"], status=status, at=utcnow()
            )

    async def rollback(action_id: int) -> Any:
        return await client.post(
            actions_url(incident["id"], f"/{action_id}/rollback"),
            json={"approved_by": "lead@x.io"},
        )

    unknown = await rollback(999999)
    of_dry_run = await rollback(preview["action_id"])
    of_unfinished = await rollback(scheduled["action_id"])
    of_no_rollback = await rollback(succeeded["action_id"])

    assert unknown.status_code == 404
    assert of_dry_run.status_code == 400
    assert "dry-run" in of_dry_run.json()["error"]["message"]
    assert of_unfinished.status_code == 400
    assert "did not succeed" in of_unfinished.json()["error"]["message"]
    assert of_no_rollback.status_code == 400
    assert "has no rollback" in of_no_rollback.json()["error"]["message"]
    assert len(launcher.launches) == 2


async def test_rollback_of_another_incidents_action_is_404(client: AsyncClient) -> None:
    first = await create_incident(client)
    second = await create_incident(client)
    action = (await dry_run(client, first["id"])).json()

    response = await client.post(
        actions_url(second["id"], f"/{action['action_id']}/rollback"), json={}
    )

    assert response.status_code == 404


async def test_history_is_oldest_first_with_results(
    client: AsyncClient, launcher: RecordingLauncher
) -> None:
    incident = await create_incident(client)
    await dry_run(client, incident["id"])
    await execute(client, incident["id"], approved_by="lead@x.io")

    response = await client.get(actions_url(incident["id"], "/history"))

    assert response.status_code == 200
    actions = response.json()["actions"]
    assert [a["dry_run"] for a in actions] == [True, False]
    assert actions[0]["id"] < actions[1]["id"]
    for field in ["id", "action_type", "params", "dry_run", "status", "approved_by", "result",
                  "created_at"]:  # fmt: skip
        assert field in actions[1]
    assert actions[1]["approved_by"] == "lead@x.io"
    assert actions[1]["flow_run_url"].startswith("http://prefect.test/runs/flow-run/")


async def test_history_result_holds_the_outcome_the_duration_and_the_logs_url(
    client: AsyncClient, launcher: RecordingLauncher, db: Database
) -> None:
    incident = await create_incident(client)
    preview = (await dry_run(client, incident["id"])).json()
    done = (await execute(client, incident["id"])).json()
    scheduled = (await execute(client, incident["id"])).json()
    outcome = {"success": True, "message": "Successfully ran 1 model(s)", "exit_code": 0}
    started = utcnow()
    async with transaction(db.writer) as session:
        await advance_action(
            session, action_id=done["action_id"], status=ActionStatus.RUNNING, at=started
        )
        await advance_action(
            session, action_id=done["action_id"], status=ActionStatus.SUCCESS,
            at=started + timedelta(seconds=12), result=outcome,
        )  # fmt: skip

    history = (await client.get(actions_url(incident["id"], "/history"))).json()["actions"]

    by_id = {a["id"]: a for a in history}
    finished = by_id[done["action_id"]]
    assert finished["result"] == outcome | {
        "actual_duration": 12.0, "logs_url": done["logs_url"],
    }  # fmt: skip
    assert finished["actual_duration"] == 12.0  # the top-level fields stay
    assert finished["flow_run_url"] == done["logs_url"]
    assert by_id[scheduled["action_id"]]["result"] is None  # nothing to say until it runs
    assert by_id[preview["action_id"]]["result"] is None  # a dry-run ran nothing


async def test_history_of_unknown_incident_is_404(client: AsyncClient) -> None:
    response = await client.get(actions_url(4242424, "/history"))
    assert response.status_code == 404


async def test_rollback_runs_the_flow_with_rollback_and_the_captured_state(
    client: AsyncClient,
    launcher: RecordingLauncher,
    db: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # rerun_dbt itself has no rollback; the engine path is the same for every action that does.
    spec = ACTIONS["rerun_dbt"]
    monkeypatch.setitem(ACTIONS, "rerun_dbt", replace(spec, rollback_supported=True))
    incident = await create_incident(client)
    original = (
        await execute(
            client, incident["id"], params=RERUN | {"full_refresh": True}, approved_by="lead@x.io"
        )
    ).json()
    async with transaction(db.writer) as session:
        await service.store_result(
            session, action_id=original["action_id"],
            result={"prior_state": {"version": "v1.2.2"}}, at=utcnow(),
        )  # fmt: skip
        for status in (ActionStatus.RUNNING, ActionStatus.SUCCESS):
            await advance_action(
                session, action_id=original["action_id"], status=status, at=utcnow()
            )
    url = actions_url(incident["id"], f"/{original['action_id']}/rollback")

    unapproved = await client.post(url, json={})
    response = await client.post(url, json={"approved_by": "lead@x.io"})
    again = await client.post(url, json={"approved_by": "lead@x.io"})

    assert unapproved.status_code == 403  # the original needed approval, so does its rollback
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["rollback_of"] == original["action_id"]
    assert body["action_id"] != original["action_id"]
    assert body["status"] == "scheduled"
    assert body["action_type"] == "rerun_dbt"
    launch = launcher.launches[-1]
    assert launch.parameters["rollback"] is True
    assert launch.parameters["action_id"] == body["action_id"]
    assert launch.parameters["prior_state"] == {"version": "v1.2.2"}
    assert again.status_code == 400
    assert "already been rolled back" in again.json()["error"]["message"]
    history = (await client.get(actions_url(incident["id"], "/history"))).json()["actions"]
    assert [(a["id"], a["rollback_of"]) for a in history][-1] == (
        body["action_id"],
        original["action_id"],
    )


async def finish(db: Database, action_id: int, status: ActionStatus) -> None:
    async with transaction(db.writer) as session:
        for step in (ActionStatus.RUNNING, status):
            await advance_action(session, action_id=action_id, status=step, at=utcnow())


@pytest.mark.parametrize("void", [ActionStatus.FAILED, ActionStatus.CRASHED,
                                  ActionStatus.CANCELLED])  # fmt: skip
async def test_rollback_available_is_false_while_and_once_rolled_back(
    client: AsyncClient, launcher: RecordingLauncher, db: Database, void: ActionStatus
) -> None:
    async with transaction(db.writer) as session:
        await set_traffic(
            session, traffic={"v1.2.2": 80, "v1.2.3": 20}, change="test setup", actor="test",
            at=utcnow(), stable_version="v1.2.2", canary_version="v1.2.3",
        )  # fmt: skip
    incident = await create_incident(client, kind="planner", key="PLANNER_v1.2.3", playbooks=[])
    lower = {"action_type": "adjust_canary_split",
             "params": {"version": "v1.2.3", "target_percent": 5}}  # fmt: skip
    same_key = {"Idempotency-Key": "lower-once"}
    original = (
        await client.post(actions_url(incident["id"], "/execute"), json=lower, headers=same_key)
    ).json()
    url = actions_url(incident["id"], f"/{original['action_id']}/rollback")

    async def available() -> tuple[bool, bool]:
        """What the history says, and what a retried execute (the same action back) says."""
        history = (await client.get(actions_url(incident["id"], "/history"))).json()["actions"]
        retried = await client.post(
            actions_url(incident["id"], "/execute"), json=lower, headers=same_key
        )
        mine = next(a for a in history if a["id"] == original["action_id"])
        assert retried.json()["action_id"] == original["action_id"]
        assert all(not a["rollback_available"] for a in history if a["rollback_of"])
        return mine["rollback_available"], retried.json()["rollback_available"]

    unfinished = await available()
    await finish(db, original["action_id"], ActionStatus.SUCCESS)
    succeeded = await available()
    first = (await client.post(url, json={})).json()
    in_flight = await available()
    refused_in_flight = await client.post(url, json={})
    await finish(db, first["action_id"], void)
    after_void = await available()
    second = await client.post(url, json={})
    await finish(db, second.json()["action_id"], ActionStatus.SUCCESS)
    rolled_back = await available()
    refused = await client.post(url, json={})

    assert unfinished == (False, False)  # not until it succeeded
    assert succeeded == (True, True)
    assert in_flight == (False, False)
    assert refused_in_flight.status_code == 400
    assert after_void == (True, True)  # a rollback that came to nothing may be tried again
    assert second.status_code == 200, second.text
    assert rolled_back == (False, False)
    assert refused.status_code == 400
    assert "already been rolled back" in refused.json()["error"]["message"]


async def test_no_playbooks_on_a_closed_incident(client: AsyncClient) -> None:
    incident = await create_incident_in(client, "closed")

    response = await dry_run(client, incident["id"])

    assert response.status_code == 400
    assert "closed" in response.json()["error"]["message"]


async def test_a_suggested_playbook_that_does_not_exist_yet_says_so(client: AsyncClient) -> None:
    incident = await create_incident(client, playbooks=["page_the_ceo"])

    response = await client.post(
        actions_url(incident["id"], "/dry-run"), json={"action_type": "page_the_ceo", "params": {}}
    )

    assert response.status_code == 400
    assert "not available in this version" in response.json()["error"]["message"]


async def test_a_launch_that_timed_out_stays_pending_for_the_reconciler(
    client: AsyncClient, launcher: RecordingLauncher
) -> None:
    incident = await create_incident(client)
    launcher.fail_with, launcher.maybe_started = "no answer in 15 s", True

    response = await execute(client, incident["id"])

    assert response.status_code == 503
    assert response.json()["error"]["details"]["status"] == "pending"
    history = (await client.get(actions_url(incident["id"], "/history"))).json()["actions"]
    assert [a["status"] for a in history] == ["pending"]
