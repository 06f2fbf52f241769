"""The remediation loop, pass by pass, on SQLite and PostgreSQL: detect -> plan -> act ->
verify -> resolve, or give up, roll back where it can, and escalate; and its guardrails."""

import asyncio
from dataclasses import replace
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import func, select

from checks.runner import record_many
from models.action import Action
from models.base import utcnow
from models.db import Database, transaction
from models.enums import ActionStatus, EventType, RemediationStep
from models.event import Event
from models.remediation import Remediation
from models.services.planner import set_traffic
from models.services.remediations import automation
from models.settings import Settings
from playbooks.service import Playbooks
from tests.api.test_checks import SHIPPED, measurement
from tests.fakes import RecordingLauncher
from tests.remediation.loop_kit import FRESHNESS, action, attempts, auto, fail, finish, remediator

Step = RemediationStep


async def timeline(client: AsyncClient, incident_id: int | None) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = (
        await client.get(f"/api/incidents/{incident_id}/timeline")
    ).json()["entries"]
    return entries


async def incident(client: AsyncClient, incident_id: int | None) -> dict[str, Any]:
    body: dict[str, Any] = (await client.get(f"/api/incidents/{incident_id}")).json()
    return body


async def test_a_fix_that_works_is_executed_verified_and_resolves_the_incident(
    client: AsyncClient, app: FastAPI, db: Database, settings: Settings, launcher: RecordingLauncher
) -> None:
    spec = auto()
    loop, verifier = remediator(db, settings, app.state.playbooks, spec)
    broken = await fail(db, settings, spec)

    started = await loop.tick()
    assert [s.incident_id for s in started] == [broken.incident_id]
    (attempt,) = await attempts(db, broken.incident_id)
    assert (attempt.step, attempt.attempt, attempt.trigger_run_id) == (Step.EXECUTING, 1, broken.id)
    dry_run = await action(db, attempt.dry_run_action_id)
    assert (dry_run.dry_run, dry_run.status) == (True, ActionStatus.DRY_RUN_SUCCESS)
    executed = await action(db, attempt.action_id)
    assert executed.requested_by == f"automation:{spec.id}"
    assert executed.params["models"] == ["inbox_emails"]
    assert executed.idempotency_key == f"remediation-{attempt.id}"
    assert [launch.deployment for launch in launcher.launches] == ["rerun_dbt/rerun_dbt"]
    assert {f"remediation:{attempt.id}", f"incident:{broken.incident_id}"} <= set(
        launcher.launches[0].tags
    )

    await loop.tick()  # the run has not ended: nothing moves
    assert (await attempts(db, broken.incident_id))[0].step == Step.EXECUTING
    await finish(db, attempt.action_id, ActionStatus.SUCCESS)
    await loop.tick()  # success: the check runs again
    assert len(verifier.started) == 1
    await loop.tick()  # ... and passes

    (attempt,) = await attempts(db, broken.incident_id)
    assert attempt.step == Step.VERIFIED
    assert attempt.verify_flow_run_id == verifier.started[0]
    assert attempt.verify_check_run_id is not None
    assert attempt.finished_at is not None
    assert (await incident(client, broken.incident_id))["status"] == "resolved"
    entries = await timeline(client, broken.incident_id)
    verbs = [e["verb"] for e in entries if e["actor"] == f"automation:{spec.id}"]
    assert verbs == [
        "remediation_planned", "dry_run", "remediation_dry_run", "execute",
        "remediation_executing", "remediation_verifying", "mitigate", "resolve",
        "remediation_verified",
    ]  # fmt: skip
    resolved = next(e for e in entries if e["verb"] == "resolve")
    assert f"action {attempt.action_id} fixed it" in resolved["notes"]
    assert f"check run {attempt.verify_check_run_id}" in resolved["notes"]

    await loop.tick()  # resolved: nothing more to do
    assert len(await attempts(db, broken.incident_id)) == 1


async def test_a_fix_that_does_not_help_stops_after_max_attempts_and_escalates(
    client: AsyncClient, app: FastAPI, db: Database, settings: Settings, launcher: RecordingLauncher
) -> None:
    spec = auto(max_attempts=2)
    loop, verifier = remediator(db, settings, app.state.playbooks, spec)
    verifier.value = 900  # the action succeeds; the data stays stale
    broken = await fail(db, settings, spec)

    for _ in range(2):
        await loop.tick()  # plan and execute
        current = (await attempts(db, broken.incident_id))[-1]
        await finish(db, current.action_id, ActionStatus.SUCCESS)
        await loop.tick()  # verify
        await loop.tick()  # judge

    first, second = await attempts(db, broken.incident_id)
    assert (first.step, first.gave_up) == (Step.INEFFECTIVE, False)
    assert second.trigger_run_id == first.verify_check_run_id  # its failing re-run called it
    assert (second.step, second.gave_up, second.attempt) == (Step.INEFFECTIVE, True, 2)
    assert "not rolled back" not in (second.outcome or "")  # rerun_dbt: none was asked for
    assert len(launcher.launches) == 2

    body = await incident(client, broken.incident_id)
    assert body["status"] == "open"
    entries = await timeline(client, broken.incident_id)
    gave_up = [e for e in entries if e["verb"] == "remediation_failed"]
    assert len(gave_up) == 1
    assert "gave up after 2 attempt(s)" in gave_up[0]["notes"]
    async with transaction(db.reader) as session:
        events = list(
            await session.scalars(select(Event).where(Event.incident_id == broken.incident_id))
        )
    failed = [e for e in events if e.type == EventType.REMEDIATION_FAILED]
    assert len(failed) == 1
    assert failed[0].payload["remediation_id"] == second.id
    assert failed[0].payload["attempts"] == 2
    changes = [e.payload.get("change") for e in events if e.type == EventType.INCIDENT_UPDATED]
    assert "remediation_failed" in changes

    # never a loop: the check keeps failing, automation keeps off until a person acts
    while_held = await fail(db, settings, spec)
    await loop.tick()
    assert len(await attempts(db, broken.incident_id)) == 2
    acknowledged = await client.post(f"/api/incidents/{broken.incident_id}/acknowledge", json={})
    assert acknowledged.status_code == 200, acknowledged.text
    await loop.tick()  # a person has it: a new round, from the violation found while held
    _, held, third = await attempts(db, broken.incident_id)
    assert (third.attempt, third.trigger_run_id, third.step) == (1, while_held.id, Step.EXECUTING)
    assert held.released_at is not None
    assert held.released_by == acknowledged.json()["acknowledged_by"]


async def test_a_failed_action_gives_up_at_once(
    client: AsyncClient, app: FastAPI, db: Database, settings: Settings, launcher: RecordingLauncher
) -> None:
    spec = auto(max_attempts=3)
    loop, verifier = remediator(db, settings, app.state.playbooks, spec)
    broken = await fail(db, settings, spec)
    await loop.tick()
    (attempt,) = await attempts(db, broken.incident_id)
    await finish(db, attempt.action_id, ActionStatus.CRASHED)
    await loop.tick()

    (attempt,) = await attempts(db, broken.incident_id)
    assert (attempt.step, attempt.gave_up) == (Step.FAILED, True)
    assert attempt.outcome == f"action {attempt.action_id} ended crashed"
    assert verifier.started == []
    await fail(db, settings, spec)
    await loop.tick()
    assert len(await attempts(db, broken.incident_id)) == 1


async def test_a_plan_that_needs_approval_waits_for_a_person(
    client: AsyncClient, app: FastAPI, db: Database, settings: Settings, launcher: RecordingLauncher
) -> None:
    spec = auto(params={"full_refresh": True})  # a full refresh needs approval
    loop, _ = remediator(db, settings, app.state.playbooks, spec)
    broken = await fail(db, settings, spec)
    await loop.tick()
    await loop.tick()

    (attempt,) = await attempts(db, broken.incident_id)
    assert attempt.step == Step.AWAITING_APPROVAL
    assert launcher.launches == []  # automation never bypasses an approval
    approvals = f"/api/playbooks/incidents/{broken.incident_id}/actions/approvals"
    (request,) = (await client.get(approvals)).json()["approvals"]
    assert request["id"] == attempt.approval_id
    assert request["requested_by"] == f"automation:{spec.id}"
    notes = [e["notes"] or "" for e in await timeline(client, broken.incident_id)]
    assert any(f"approval request {attempt.approval_id} waits" in n for n in notes)

    approved = await client.post(f"{approvals}/{attempt.approval_id}/approve", json={})
    assert approved.status_code == 200, approved.text
    await loop.tick()
    (attempt,) = await attempts(db, broken.incident_id)
    assert attempt.step == Step.EXECUTING
    assert attempt.action_id == approved.json()["action"]["id"]
    assert len(launcher.launches) == 1


async def test_a_rejected_approval_gives_up(
    client: AsyncClient, app: FastAPI, db: Database, settings: Settings, launcher: RecordingLauncher
) -> None:
    spec = auto(params={"full_refresh": True})
    loop, _ = remediator(db, settings, app.state.playbooks, spec)
    broken = await fail(db, settings, spec)
    await loop.tick()
    (attempt,) = await attempts(db, broken.incident_id)
    approvals = f"/api/playbooks/incidents/{broken.incident_id}/actions/approvals"
    rejected = await client.post(f"{approvals}/{attempt.approval_id}/reject", json={})
    assert rejected.status_code == 200, rejected.text
    await loop.tick()
    (attempt,) = await attempts(db, broken.incident_id)
    assert (attempt.step, attempt.gave_up) == (Step.FAILED, True)
    assert "was rejected" in (attempt.outcome or "")
    assert launcher.launches == []


async def pause(db: Database, paused: bool) -> None:
    async with transaction(db.writer) as session:
        state = await automation(session, lock=True)
        state.paused, state.changed_by, state.changed_at = paused, "tests", utcnow()


async def test_paused_nothing_new_starts_and_resumed_it_goes_on(
    client: AsyncClient, app: FastAPI, db: Database, settings: Settings, launcher: RecordingLauncher
) -> None:
    spec = auto()
    loop, _ = remediator(db, settings, app.state.playbooks, spec)
    try:
        await pause(db, True)
        broken = await fail(db, settings, spec)
        await loop.tick()
        assert await attempts(db, broken.incident_id) == []

        await pause(db, False)
        await loop.tick()
        (attempt,) = await attempts(db, broken.incident_id)
        assert attempt.step == Step.EXECUTING

        await pause(db, True)  # in flight: it finishes
        await finish(db, attempt.action_id, ActionStatus.SUCCESS)
        await loop.tick()
        await loop.tick()
        (attempt,) = await attempts(db, broken.incident_id)
        assert attempt.step == Step.VERIFIED
    finally:
        await pause(db, False)


async def test_the_hourly_budgets_hold_back_what_is_over(
    client: AsyncClient, app: FastAPI, db: Database, settings: Settings, launcher: RecordingLauncher
) -> None:
    tight = settings.model_copy(update={"remediation_action_budgets": {"rerun_dbt": 1}})
    playbooks = Playbooks(db, tight, launcher)
    first = auto()
    other = auto(FRESHNESS.model_copy(update={"id": "freshness_copy"}))
    loop, _ = remediator(db, tight, playbooks, first, other)
    one = await fail(db, settings, first)
    two = await fail(db, settings, other)
    await loop.tick()
    await loop.tick()

    (ran,) = await attempts(db, one.incident_id)
    (held,) = await attempts(db, two.incident_id)
    assert ran.step == Step.EXECUTING
    assert (held.step, held.outcome) == (
        Step.PLANNED,
        "waiting: rerun_dbt's hourly budget is spent",
    )
    assert len(launcher.launches) == 1
    waits = [
        e for e in await timeline(client, two.incident_id) if e["verb"] == "remediation_waiting"
    ]
    assert len(waits) == 1  # said once, not on every pass

    everything = settings.model_copy(update={"remediation_budget_per_hour": 1})
    loop, _ = remediator(db, everything, Playbooks(db, everything, launcher), first, other)
    await loop.tick()
    (held,) = await attempts(db, two.incident_id)
    assert held.outcome == "waiting: the hourly budget of automatic executions is spent"


async def test_twenty_concurrent_openers_start_exactly_one_remediation(
    client: AsyncClient, app: FastAPI, db: Database, settings: Settings, launcher: RecordingLauncher
) -> None:
    spec = auto()
    broken = await fail(db, settings, spec)
    loops = [
        remediator(db, settings, app.state.playbooks, spec, owner=f"p{i}")[0] for i in range(20)
    ]
    started = await asyncio.gather(*(loop.start_due() for loop in loops))
    assert sum(len(s) for s in started) == 1
    async with transaction(db.reader) as session:
        count = await session.scalar(
            select(func.count())
            .select_from(Remediation)
            .where(Remediation.incident_id == broken.incident_id)
        )
    assert count == 1
    await asyncio.gather(*(loop.tick() for loop in loops))  # and one executes it, once
    assert len(launcher.launches) == 1
    (attempt,) = await attempts(db, broken.incident_id)
    assert attempt.step == Step.EXECUTING


async def test_an_incident_resolved_by_a_person_meanwhile_cancels_a_planned_attempt(
    client: AsyncClient, app: FastAPI, db: Database, settings: Settings, launcher: RecordingLauncher
) -> None:
    spec = auto()
    loop, _ = remediator(db, settings, app.state.playbooks, spec)
    broken = await fail(db, settings, spec)
    (started,) = await loop.start_due()  # planned, not moved yet
    resolved = await client.post(f"/api/incidents/{broken.incident_id}/resolve", json={})
    assert resolved.status_code == 200, resolved.text
    await loop.tick()

    (attempt,) = await attempts(db, broken.incident_id)
    assert attempt.id == started.remediation_id
    assert (attempt.step, attempt.gave_up) == (Step.CANCELLED, False)
    assert launcher.launches == []


async def test_an_ineffective_fix_is_rolled_back_through_an_approval_when_undoing_needs_one(
    client: AsyncClient, app: FastAPI, db: Database, settings: Settings, launcher: RecordingLauncher
) -> None:
    canary = SHIPPED["planner_canary"]  # fails above its threshold, the canary's version named
    spec = auto(
        canary,
        action="adjust_canary_split",
        params={"target_percent": 0},
        max_attempts=1,
        rollback_on_failed_verification=True,
    )
    loop, verifier = remediator(db, settings, app.state.playbooks, spec)
    async with transaction(db.writer) as session:
        await set_traffic(session, traffic={"v1.2.2": 80, "v1.2.3": 20}, change="test",
                          actor="test", at=utcnow(), stable_version="v1.2.2")  # fmt: skip
    context = {"version": "v1.2.3", "stable": "v1.2.2"}
    broken = (
        await record_many(
            [(spec, replace(measurement(spec, value=7), context=context))], db, settings
        )
    )[0]
    verifier.value, verifier.context = 7, context  # less traffic does not fix the canary

    await loop.tick()
    (attempt,) = await attempts(db, broken.incident_id)
    assert attempt.step == Step.EXECUTING  # lowering a canary's share needs no approval
    executed = await action(db, attempt.action_id)
    assert executed.params == {"version": "v1.2.3", "target_percent": 0, "gradual": False}
    async with transaction(db.writer) as session:  # what the flow captured and changed
        row = await session.get(Action, attempt.action_id)
        assert row is not None
        row.prior_state = {"traffic": {"v1.2.2": 80, "v1.2.3": 20}, "stable_version": "v1.2.2"}
        await set_traffic(session, traffic={"v1.2.2": 100}, change="test", actor="test",
                          at=utcnow(), stable_version="v1.2.2")  # fmt: skip
    await finish(db, attempt.action_id, ActionStatus.SUCCESS)
    await loop.tick()
    await loop.tick()

    (attempt,) = await attempts(db, broken.incident_id)
    assert (attempt.step, attempt.gave_up) == (Step.INEFFECTIVE, True)
    assert attempt.rollback_action_id is None
    approvals = f"/api/playbooks/incidents/{broken.incident_id}/actions/approvals"
    (request,) = (await client.get(approvals)).json()["approvals"]
    assert request["rollback_of"] == attempt.action_id  # restoring 20% raises the canary
    assert request["requested_by"] == f"automation:{spec.id}"
    assert f"approval request {request['id']} waits" in (attempt.outcome or "")
    entries = await timeline(client, broken.incident_id)
    (undo,) = [e for e in entries if e["verb"] == "remediation_rollback_not_done"]
    assert f"approval request {request['id']}" in undo["notes"]
    assert len(launcher.launches) == 1  # nothing rolled back behind an approver's back


async def test_the_per_incident_limit_holds_for_automation_too(
    client: AsyncClient, app: FastAPI, db: Database, settings: Settings, launcher: RecordingLauncher
) -> None:
    one = settings.model_copy(update={"action_executions_per_hour": 1})
    loop, _ = remediator(db, one, Playbooks(db, one, launcher), auto())
    broken = await fail(db, settings, auto())
    by_hand = await client.post(
        f"/api/playbooks/incidents/{broken.incident_id}/actions/execute",
        json={"action_type": "rerun_dbt", "params": {"models": ["inbox_emails"]}},
    )
    assert by_hand.status_code == 200, by_hand.text
    await loop.tick()

    (attempt,) = await attempts(db, broken.incident_id)
    assert (attempt.step, attempt.gave_up) == (Step.FAILED, True)
    assert (attempt.outcome or "").startswith("execute was refused:")
    assert len(launcher.launches) == 1  # the person's


async def test_a_verification_prefect_cannot_start_now_is_tried_again(
    client: AsyncClient, app: FastAPI, db: Database, settings: Settings, launcher: RecordingLauncher
) -> None:
    spec = auto()
    loop, verifier = remediator(db, settings, app.state.playbooks, spec)
    verifier.out_of_reach = 2
    broken = await fail(db, settings, spec)
    await loop.tick()
    (attempt,) = await attempts(db, broken.incident_id)
    await finish(db, attempt.action_id, ActionStatus.SUCCESS)
    for _ in range(2):
        await loop.tick()  # Prefect out of reach: the attempt waits, executed
        assert (await attempts(db, broken.incident_id))[0].step == Step.EXECUTING
    await loop.tick()
    await loop.tick()
    (attempt,) = await attempts(db, broken.incident_id)
    assert attempt.step == Step.VERIFIED
