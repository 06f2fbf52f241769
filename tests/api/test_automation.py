"""Automatic remediation through the API: the switch (GET /api/automation, pause, resume), an
incident's `remediation` and its retry, the `remediation_failed` webhook event, and the
remediation metrics. Attempts are rows written as the loop would (tests/remediation runs the
loop itself)."""

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import delete, func, select

from checks.config import CheckSpec
from checks.remediation import RemediationPolicy
from checks.service import Checks
from models.base import utcnow
from models.db import Database, transaction
from models.enums import Role
from models.remediation import AutomationState, Remediation
from models.services.incidents import get_incident
from models.services.webhooks import take_events
from models.settings import Settings
from remediation import journal
from tests.api.test_checks import SHIPPED
from tests.api.test_observability import scrape, series, value
from tests.auth import TESTER
from tests.factories import create_incident

AsRole = Callable[[str, Role], Awaitable[AsyncClient]]
FRESHNESS = SHIPPED["data_freshness_inbox"]
POLICY = RemediationPolicy(action="rerun_dbt", mode="auto", max_attempts=2)
AUTO = FRESHNESS.model_copy(update={"remediation": POLICY})


async def as_migrated(db: Database) -> None:
    async with transaction(db.writer) as session:
        await session.execute(delete(AutomationState))
        session.add(AutomationState(id=1, paused=False))


@pytest.fixture(autouse=True)
async def switch_as_migrated(db: Database) -> AsyncIterator[None]:
    """The switch's row outlives each test (tests/conftest.py keeps it): these start with it as
    the migration made it, and leave it so (running) for the tests after them."""
    await as_migrated(db)
    yield
    await as_migrated(db)


@pytest.fixture
def auto_check(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> CheckSpec:
    """The app's checks, data_freshness_inbox with an automatic rerun_dbt (for this test)."""
    checks: Checks = app.state.checks
    monkeypatch.setattr(checks, "specs", checks.specs | {AUTO.id: AUTO})
    return AUTO


async def check_incident(client: AsyncClient, check_id: str = AUTO.id, **fields: Any) -> int:
    """An incident as the check's failing run opens it (metadata.check_id)."""
    metadata = {"agent": "inbox.triage", "auto_created": True, "check_id": check_id}
    return int((await create_incident(client, metadata=metadata, **fields))["id"])


async def attempt(db: Database, incident_id: int, **fields: Any) -> int:
    """An attempt row as the loop writes it; finished unless `finished_at=None`."""
    now = utcnow()
    row = {
        "incident_id": incident_id,
        "key": f"invariant:{incident_id}",
        "check_id": AUTO.id,
        "attempt": 1,
        "step": "verified",
        "action_type": "rerun_dbt",
        "params": {"models": ["inbox_emails"]},
        "policy": POLICY.model_dump(mode="json"),
        "trigger_run_id": 1,
        "detected_at": now - timedelta(minutes=5),
        "finished_at": now,
    } | fields
    async with transaction(db.writer) as session:
        remediation = Remediation(**row)
        session.add(remediation)
        await session.flush()
        return remediation.id


async def remediation_of(client: AsyncClient, incident_id: int) -> Any:
    """The incident's `remediation`; None where the answer leaves it out (there is none)."""
    response = await client.get(f"/api/incidents/{incident_id}")
    assert response.status_code == 200, response.text
    return response.json().get("remediation")


# -- the switch -------------------------------------------------------------------------------


async def test_the_state_reads_the_switch_the_budgets_and_what_is_in_flight(
    client: AsyncClient, db: Database, settings: Settings, auto_check: CheckSpec
) -> None:
    incident_id = await check_incident(client)
    ago = utcnow() - timedelta(minutes=10)
    await attempt(db, incident_id, executed_at=ago)
    await attempt(db, incident_id, action_type="clear_cache", executed_at=ago, key="other")
    await attempt(db, incident_id, executed_at=utcnow() - timedelta(hours=2), key="old")
    moving = await attempt(db, incident_id, step="executing", executed_at=ago, finished_at=None,
                           action_type="rerun_dbt", key="moving")  # fmt: skip

    state = (await client.get("/api/automation")).json()

    total, rerun = settings.remediation_budget_per_hour, settings.remediation_action_budget
    assert state == {
        "paused": False,
        "changed_by": None,
        "changed_at": None,
        "reason": None,
        "budgets": {
            "per_hour": total,
            "left": total - 3,
            "actions": {
                "clear_cache": {"per_hour": rerun("clear_cache"), "left": rerun("clear_cache") - 1},
                "rerun_dbt": {"per_hour": rerun("rerun_dbt"), "left": rerun("rerun_dbt") - 2},
            },
        },
        "in_flight": [
            {"id": moving, "incident_id": incident_id, "check_id": AUTO.id, "rule": None,
             "step": "executing", "action_type": "rerun_dbt", "action_id": None},
        ],
    }  # fmt: skip


async def test_an_auto_policy_names_its_action_in_the_budgets_before_it_runs(
    client: AsyncClient, settings: Settings, auto_check: CheckSpec
) -> None:
    budgets = (await client.get("/api/automation")).json()["budgets"]

    limit = settings.remediation_action_budget("rerun_dbt")
    assert budgets["actions"] == {"rerun_dbt": {"per_hour": limit, "left": limit}}
    assert budgets["left"] == budgets["per_hour"] == settings.remediation_budget_per_hour


async def test_pausing_records_who_when_and_why_and_twice_is_fine(client: AsyncClient) -> None:
    before = utcnow()
    paused = await client.post("/api/automation/pause", json={"reason": "warehouse migration"})
    again = await client.post("/api/automation/pause")
    read = await client.get("/api/automation")
    resumed = await client.post("/api/automation/resume", json={"reason": "done"})

    assert [r.status_code for r in (paused, again, read, resumed)] == [200] * 4
    first = paused.json()
    assert (first["paused"], first["changed_by"], first["reason"]) == (
        True, TESTER, "warehouse migration",
    )  # fmt: skip
    assert datetime.fromisoformat(first["changed_at"]) >= before
    assert (again.json()["paused"], again.json()["reason"]) == (True, None)
    assert again.json()["changed_at"] >= first["changed_at"]
    assert read.json() == again.json()
    assert (resumed.json()["paused"], resumed.json()["reason"]) == (False, "done")
    assert (await client.get("/api/automation")).json() == resumed.json()


@pytest.mark.parametrize(
    ("body", "field"), [({"reason": "x" * 501}, "body.reason"), ({"why": "no"}, "body.why")]
)
async def test_a_bad_switch_body_is_422_and_switches_nothing(
    client: AsyncClient, body: dict[str, Any], field: str
) -> None:
    response = await client.post("/api/automation/pause", json=body)

    assert response.status_code == 422
    assert field in [e["field"] for e in response.json()["error"]["details"]["errors"]]
    assert (await client.get("/api/automation")).json()["paused"] is False


async def test_only_admins_switch_automation_and_viewers_read_it(
    strict_app: FastAPI, as_role: AsRole
) -> None:
    viewer = await as_role("vic@x.io", Role.VIEWER)
    refused = [
        await (await as_role(f"{role}@x.io", role)).post(f"/api/automation/{verb}")
        for role in (Role.VIEWER, Role.RESPONDER, Role.APPROVER)
        for verb in ("pause", "resume")
    ]
    async with AsyncClient(transport=ASGITransport(app=strict_app), base_url="http://t") as anon:
        unsigned = [
            await anon.get("/api/automation"),
            await anon.post("/api/automation/pause"),
            await anon.post("/api/automation/resume", json={"reason": "x"}),
        ]

    assert (await viewer.get("/api/automation")).status_code == 200
    assert [r.status_code for r in refused] == [403] * 6
    assert {r.json()["error"]["code"] for r in refused} == {"forbidden"}
    assert {r.json()["error"]["details"]["required_role"] for r in refused[2:]} == {"admin"}
    assert [r.status_code for r in unsigned] == [401] * 3
    assert {r.headers["www-authenticate"] for r in unsigned} == {"Bearer"}
    assert {r.json()["error"]["code"] for r in unsigned} == {"unauthorized"}
    assert (await viewer.get("/api/automation")).json()["paused"] is False


async def test_concurrent_switches_leave_one_row_saying_what_the_last_one_did(
    client: AsyncClient, db: Database
) -> None:
    async with transaction(db.writer) as session:  # from no row at all: the first makes it
        await session.execute(delete(AutomationState))

    calls = [
        client.post(f"/api/automation/{'pause' if n % 2 else 'resume'}", json={"reason": f"#{n}"})
        for n in range(10)
    ]
    answers = await asyncio.gather(*calls)

    assert [r.status_code for r in answers] == [200] * 10, [r.text for r in answers]
    last = max((r.json() for r in answers), key=lambda a: datetime.fromisoformat(a["changed_at"]))
    stored = (await client.get("/api/automation")).json()
    assert (stored["paused"], stored["reason"], stored["changed_at"]) == (
        last["paused"], last["reason"], last["changed_at"],
    )  # fmt: skip
    assert stored["paused"] is (int(stored["reason"][1:]) % 2 == 1)
    async with transaction(db.reader) as session:
        assert await session.scalar(select(func.count()).select_from(AutomationState)) == 1


# -- an incident's remediation ----------------------------------------------------------------


async def test_an_incident_of_an_auto_check_shows_its_policy_before_any_attempt(
    client: AsyncClient, auto_check: CheckSpec
) -> None:
    incident_id = await check_incident(client)

    assert await remediation_of(client, incident_id) == {
        "policy": {"action": "rerun_dbt", "params": {}, "mode": "auto", "verify": True,
                   "max_attempts": 2, "rollback_on_failed_verification": False,
                   "resolve_on_verify": True, "verify_within_seconds": 900},
        "mode": "auto",
        "attempts": 0,
        "max_attempts": 2,
        "step": None,
        "in_flight": False,
        "held": False,
        "attempts_history": [],
        "verification": None,
    }  # fmt: skip


async def test_incidents_without_a_policy_or_attempts_have_none(
    client: AsyncClient, auto_check: CheckSpec
) -> None:
    plain = (await create_incident(client))["id"]
    unpoliced = await check_incident(client, check_id="triage_cost")  # declares no remediation
    about_the_check = await check_incident(client, key=f"INV_check_{AUTO.id}_stale")

    listed = {i["id"]: i for i in (await client.get("/api/incidents")).json()["incidents"]}
    for incident_id in (plain, unpoliced, about_the_check):
        read = (await client.get(f"/api/incidents/{incident_id}")).json()
        assert "remediation" not in read
        assert read == listed[incident_id]  # as every other answer shows it


async def test_attempts_show_the_round_the_step_and_the_newest_verification(
    client: AsyncClient, db: Database, auto_check: CheckSpec
) -> None:
    incident_id = await check_incident(client)
    executed = utcnow() - timedelta(minutes=3)
    first = await attempt(db, incident_id, step="ineffective", action_id=None,
                          verify_check_run_id=41, executed_at=executed,
                          outcome="ineffective: check run 41 still fails")  # fmt: skip
    second = await attempt(db, incident_id, attempt=2, step="verifying", executed_at=utcnow(),
                           verify_check_run_id=None, finished_at=None)  # fmt: skip

    shown = await remediation_of(client, incident_id)

    assert (shown["attempts"], shown["max_attempts"], shown["step"]) == (2, 2, "verifying")
    assert (shown["in_flight"], shown["held"]) == (True, False)
    assert shown["verification"] == {"check_run_id": 41, "passed": False}
    assert [a["id"] for a in shown["attempts_history"]] == [first, second]
    one = shown["attempts_history"][0]
    assert set(one) == {
        "id", "attempt", "step", "action_type", "action_id", "dry_run_action_id", "approval_id",
        "verify_check_run_id", "rollback_action_id", "outcome", "detected_at", "executed_at",
        "verified_at", "finished_at", "gave_up", "released_at", "released_by",
    }  # fmt: skip
    assert (one["step"], one["outcome"], one["gave_up"]) == (
        "ineffective", "ineffective: check run 41 still fails", False,
    )  # fmt: skip


async def test_a_verified_attempt_is_the_verification_shown(
    client: AsyncClient, db: Database, auto_check: CheckSpec
) -> None:
    incident_id = await check_incident(client)
    await attempt(db, incident_id, step="ineffective", verify_check_run_id=7)
    await attempt(db, incident_id, attempt=2, step="verified", verify_check_run_id=9,
                  verified_at=utcnow())  # fmt: skip

    shown = await remediation_of(client, incident_id)

    assert shown["verification"] == {"check_run_id": 9, "passed": True}
    assert (shown["step"], shown["in_flight"]) == ("verified", False)


# -- retry ------------------------------------------------------------------------------------


async def test_retry_of_an_unknown_incident_is_404(client: AsyncClient) -> None:
    response = await client.post("/api/incidents/999999/remediation/retry")

    assert response.status_code == 404
    assert response.json()["error"] == {
        "code": "not_found",
        "message": "Incident 999999 not found",
        "details": {"incident_id": 999999},
    }


async def test_retry_with_nothing_held_is_409_and_changes_nothing(
    client: AsyncClient, db: Database, auto_check: CheckSpec
) -> None:
    never_tried = await check_incident(client)
    moving = await check_incident(client)
    await attempt(db, moving, step="executing", finished_at=None)

    refused = [
        await client.post(f"/api/incidents/{incident_id}/remediation/retry")
        for incident_id in (never_tried, moving)
    ]

    assert [r.status_code for r in refused] == [409, 409]
    for response, incident_id in zip(refused, (never_tried, moving), strict=True):
        error = response.json()["error"]
        assert (error["code"], error["details"]) == ("conflict", {"incident_id": incident_id})
    timeline = (await client.get(f"/api/incidents/{moving}/timeline")).json()["entries"]
    assert "remediation_retry" not in [e["verb"] for e in timeline]


async def test_retry_releases_a_give_up_and_starts_a_new_round(
    client: AsyncClient, db: Database, auto_check: CheckSpec
) -> None:
    incident_id = await check_incident(client)
    await attempt(db, incident_id, step="ineffective", verify_check_run_id=3)
    gave_up = await attempt(db, incident_id, attempt=2, step="failed", gave_up=True,
                            outcome="action 5 ended failed")  # fmt: skip
    held = await remediation_of(client, incident_id)
    assert (held["held"], held["attempts"]) == (True, 2)

    retried = await client.post(f"/api/incidents/{incident_id}/remediation/retry")
    again = await client.post(f"/api/incidents/{incident_id}/remediation/retry")

    assert retried.status_code == 200, retried.text
    body = retried.json()
    assert (body["held"], body["attempts"], body["step"]) == (False, 0, "failed")
    released = body["attempts_history"][-1]
    assert (released["id"], released["released_by"]) == (gave_up, TESTER)
    assert released["released_at"] is not None
    assert body["attempts_history"][0]["released_at"] is None  # it never held anything
    assert await remediation_of(client, incident_id) == body
    assert again.status_code == 409
    timeline = (await client.get(f"/api/incidents/{incident_id}/timeline")).json()["entries"]
    retry = [e for e in timeline if e["verb"] == "remediation_retry"]
    assert [(e["actor"], e["from_status"], e["to_status"]) for e in retry] == [
        (TESTER, "open", "open")
    ]
    assert str(gave_up) in retry[0]["notes"]


async def test_a_responder_may_retry_and_a_viewer_may_not(
    as_role: AsRole, strict_app: FastAPI
) -> None:
    admin = await as_role("root@x.io", Role.ADMIN)
    incident_id = (await create_incident(admin))["id"]
    await attempt(strict_app.state.db, incident_id, step="failed", gave_up=True)

    viewer = await (await as_role("vic@x.io", Role.VIEWER)).post(
        f"/api/incidents/{incident_id}/remediation/retry"
    )
    responder = await (await as_role("rita@x.io", Role.RESPONDER)).post(
        f"/api/incidents/{incident_id}/remediation/retry"
    )

    assert viewer.status_code == 403
    assert responder.status_code == 200, responder.text
    assert responder.json()["attempts_history"][0]["released_by"] == "rita@x.io"


# -- webhooks ---------------------------------------------------------------------------------


async def test_a_subscription_to_remediation_failed_gets_the_loops_event(
    client: AsyncClient, db: Database, auto_check: CheckSpec
) -> None:
    every = ["incident_created", "incident_updated", "action_executed", "remediation_failed"]
    hook = {"url": "http://127.0.0.1:9/all"}
    too_many = await client.post("/api/webhooks", json=hook | {"event_types": [*every, every[0]]})
    assert too_many.status_code == 422
    assert (
        await client.post("/api/webhooks", json=hook | {"event_types": every})
    ).status_code == 201
    wanted = (await client.post("/api/webhooks", json={
        "url": "http://127.0.0.1:9/failed", "event_types": ["remediation_failed"],
        "severities": ["sev2"]})).json()  # fmt: skip
    other_severity = (await client.post("/api/webhooks", json={
        "url": "http://127.0.0.1:9/sev1", "event_types": ["remediation_failed"],
        "severities": ["sev1"]})).json()  # fmt: skip
    incident_id = await check_incident(client, severity="sev2")
    remediation_id = await attempt(db, incident_id, step="failed", gave_up=True)

    async with transaction(db.writer) as session:  # as the loop gives up (remediation/steps.py)
        incident = await get_incident(session, incident_id, for_update=True)
        row = await session.get(Remediation, remediation_id)
        assert row is not None
        journal.escalate(incident, row, "action 5 ended failed", 1, utcnow())
    async with transaction(db.writer) as session:
        for hook in (wanted, other_severity):
            await take_events(session, webhook_id=hook["id"], now=utcnow())

    def deliveries(hook: dict[str, Any]) -> Any:
        return client.get(f"/api/webhooks/{hook['id']}/deliveries")

    queued = (await deliveries(wanted)).json()["deliveries"]
    assert [d["event_type"] for d in queued] == ["remediation_failed"]
    assert (await deliveries(other_severity)).json()["deliveries"] == []


# -- metrics ----------------------------------------------------------------------------------


async def test_the_metrics_count_runs_by_outcome_and_time_verified_fixes(
    client: AsyncClient, db: Database
) -> None:
    incident_id = (await create_incident(client))["id"]
    found = utcnow() - timedelta(hours=1)
    keys = itertools.count()

    async def ran(step: str, action_type: str = "rerun_dbt", **fields: Any) -> None:
        key = f"ran-{next(keys)}"
        await attempt(db, incident_id, step=step, action_type=action_type, detected_at=found,
                      executed_at=found + timedelta(seconds=1), key=key, **fields)  # fmt: skip

    await ran("verified", verified_at=found + timedelta(seconds=45))
    await ran("verified", verified_at=found + timedelta(seconds=400))
    await ran("ineffective")
    await ran("failed", action_type="clear_cache")
    await ran("executing", finished_at=None)  # not finished: no outcome yet
    await attempt(db, incident_id, step="cancelled", key="never-ran")  # executed nothing

    samples = await scrape(client)

    runs = {
        (dict(labels)["action_type"], dict(labels)["outcome"]): count
        for labels, count in series(samples, "intervene_remediation_runs_total").items()
    }
    assert runs == {("rerun_dbt", "verified"): 2, ("rerun_dbt", "ineffective"): 1,
                    ("clear_cache", "failed"): 1}  # fmt: skip
    name = "intervene_remediation_detect_to_verified_seconds"
    buckets = {dict(labels)["le"]: n for labels, n in series(samples, f"{name}_bucket").items()}
    assert buckets == {"5.0": 0, "10.0": 0, "30.0": 0, "60.0": 1, "120.0": 1, "300.0": 1,
                       "600.0": 2, "1800.0": 2, "+Inf": 2}  # fmt: skip
    assert value(samples, f"{name}_count") == 2
    assert value(samples, f"{name}_sum") == pytest.approx(445)


async def test_the_metrics_families_are_there_with_no_attempt(client: AsyncClient) -> None:
    text = (await client.get("/metrics")).text
    samples = await scrape(client)

    assert "# TYPE intervene_remediation_runs_total counter" in text
    assert "# TYPE intervene_remediation_detect_to_verified_seconds histogram" in text
    assert series(samples, "intervene_remediation_runs_total") == {}
    assert value(samples, "intervene_remediation_detect_to_verified_seconds_count") == 0
    assert value(samples, "intervene_remediation_detect_to_verified_seconds_bucket",
                 le="+Inf") == 0  # fmt: skip
