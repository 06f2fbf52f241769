"""A routed alert remediated like a check, on SQLite and PostgreSQL: its routing rule's policy
runs the fix, and the alert's source resolving it in time is the verification; an alert that
keeps firing is ineffective, and the loop gives up and escalates after max_attempts."""

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select, update

from alerts.rules import AlertRules, Match, Rule
from checks.remediation import RemediationPolicy
from models.db import Database, transaction
from models.enums import ActionStatus, EventType, RemediationStep
from models.event import Event
from models.remediation import Remediation
from models.settings import Settings
from remediation.loop import Remediator
from tests.api.test_integrations import am_alert, outcome
from tests.fakes import RecordingLauncher
from tests.remediation.loop_kit import ScriptedVerifier, action, attempts, finish
from tests.remediation.test_loop import incident, timeline

Step = RemediationStep
RULE = "stale-tables"
ACTOR = f"automation:rule:{RULE}"


def rules(**policy: Any) -> AlertRules:
    fields: dict[str, Any] = {
        "action": "rerun_dbt",
        "mode": "auto",
        "max_attempts": 2,
        "verify_within_seconds": 60,
    }
    return AlertRules(
        rules=[
            Rule(
                name=RULE,
                match=Match(labels={"alertname": "WarehouseStale"}),
                params={"rerun_dbt": {"models": ["inbox_emails"]}},
                remediation=RemediationPolicy(**(fields | policy)),
            )
        ]
    )


@pytest.fixture
def routed(app: FastAPI) -> Iterator[AlertRules]:
    """The app routes alerts with `rules()` for the test."""
    kept = app.state.alert_rules
    app.state.alert_rules = rules()
    yield app.state.alert_rules
    app.state.alert_rules = kept


def loop(app: FastAPI, db: Database, settings: Settings, routing: AlertRules) -> Remediator:
    verifier = ScriptedVerifier(db, settings, {})  # a check's verifier: never called for alerts
    return Remediator(db, settings, app.state.playbooks, {}, verifier, owner="t", rules=routing)


@pytest.fixture
def remediator(
    app: FastAPI, db: Database, settings: Settings, routed: AlertRules, launcher: RecordingLauncher
) -> Remediator:
    """The loop with the test's rules; Prefect is the recording launcher."""
    return loop(app, db, settings, routed)


STALE = am_alert("WarehouseStale", table="inbox_emails")


async def fire(client: AsyncClient, status: str = "firing") -> dict[str, Any]:
    return await outcome(client, am_alert("WarehouseStale", status=status, table="inbox_emails"))


async def as_if_waited(db: Database, remediation_id: int, seconds: float) -> None:
    """Move the attempt's step start back: `seconds` have passed for the verification window."""
    async with transaction(db.writer) as session:
        row = await session.get(Remediation, remediation_id)
        assert row is not None
        await session.execute(
            update(Remediation)
            .where(Remediation.id == remediation_id)
            .values(step_started_at=row.step_started_at - timedelta(seconds=seconds))
        )


async def test_an_alert_fixed_and_resolved_by_its_source_is_verified(
    client: AsyncClient, db: Database, launcher: RecordingLauncher, remediator: Remediator
) -> None:
    opened = await fire(client)
    assert opened["outcome"] == "opened"
    incident_id = opened["incident_id"]
    shown = await incident(client, incident_id)
    assert shown["kind"] == "alert"
    assert "rerun_dbt" in shown["playbooks"]  # the rule's remediation is suggested too
    assert shown["remediation"]["mode"] == "auto"

    started = await remediator.tick()
    assert [s.incident_id for s in started] == [incident_id]
    (attempt,) = await attempts(db, incident_id)
    assert (attempt.step, attempt.rule, attempt.check_id) == (Step.EXECUTING, RULE, None)
    assert attempt.trigger_run_id is None
    executed = await action(db, attempt.action_id)
    assert executed.requested_by == ACTOR
    assert executed.params["models"] == ["inbox_emails"]
    assert [launch.deployment for launch in launcher.launches] == ["rerun_dbt/rerun_dbt"]

    await finish(db, attempt.action_id, ActionStatus.SUCCESS)
    await remediator.tick()  # success: now the source has to resolve it
    (attempt,) = await attempts(db, incident_id)
    assert attempt.step == Step.VERIFYING
    await remediator.tick()  # the alert still fires, within its window: nothing moves
    assert (await attempts(db, incident_id))[0].step == Step.VERIFYING

    assert (await fire(client, "resolved"))["outcome"] == "resolved"
    await remediator.tick()

    (attempt,) = await attempts(db, incident_id)
    assert attempt.step == Step.VERIFIED
    assert attempt.verified_at is not None
    body = await incident(client, incident_id)
    assert body["status"] == "resolved"
    assert body["remediation"]["verification"] == {"check_run_id": None, "passed": True}
    entries = await timeline(client, incident_id)
    verbs = [e["verb"] for e in entries if e["actor"] == ACTOR]
    assert verbs == [
        "remediation_planned", "dry_run", "remediation_dry_run", "execute",
        "remediation_executing", "remediation_verifying", "remediation_verified",
    ]  # fmt: skip
    verified = next(e for e in entries if e["verb"] == "remediation_verified")
    assert "alertmanager resolved the alert" in verified["notes"]
    resolved = next(e for e in entries if e["verb"] == "resolve")
    assert resolved["actor"] == "alertmanager"

    automation = (await client.get("/api/automation")).json()
    assert "rerun_dbt" in automation["budgets"]["actions"]  # the rule's auto policy names it


async def test_an_alert_that_keeps_firing_gives_up_after_max_attempts_and_escalates(
    client: AsyncClient, db: Database, launcher: RecordingLauncher, remediator: Remediator
) -> None:
    incident_id = (await fire(client))["incident_id"]

    for _ in range(2):
        await remediator.tick()  # plan and execute
        current = (await attempts(db, incident_id))[-1]
        await finish(db, current.action_id, ActionStatus.SUCCESS)
        await remediator.tick()  # verifying: the source has 60 s
        await as_if_waited(db, current.id, 61)
        await remediator.tick()  # not resolved in time
        assert (await fire(client))["outcome"] == "counted"  # Alertmanager repeats it

    first, second = await attempts(db, incident_id)
    assert (first.step, first.gave_up) == (Step.INEFFECTIVE, False)
    assert "did not resolve the alert within 60 s" in (first.outcome or "")
    assert (second.step, second.gave_up, second.attempt) == (Step.INEFFECTIVE, True, 2)
    assert len(launcher.launches) == 2
    body = await incident(client, incident_id)
    assert body["status"] == "open"
    assert body["remediation"]["held"] is True
    assert body["remediation"]["verification"] == {"check_run_id": None, "passed": False}
    async with transaction(db.reader) as session:
        events = list(await session.scalars(select(Event).where(Event.incident_id == incident_id)))
    [failed] = [e for e in events if e.type == EventType.REMEDIATION_FAILED]
    assert (failed.payload["rule"], failed.payload["check_id"]) == (RULE, None)

    # never a loop: it keeps firing, automation keeps off until a person acts
    await fire(client)
    await remediator.tick()
    assert len(await attempts(db, incident_id)) == 2


async def test_a_person_resolving_it_meanwhile_is_not_a_verified_fix(
    client: AsyncClient, db: Database, launcher: RecordingLauncher, remediator: Remediator
) -> None:
    incident_id = (await fire(client))["incident_id"]
    await remediator.tick()
    (attempt,) = await attempts(db, incident_id)
    await finish(db, attempt.action_id, ActionStatus.SUCCESS)
    await remediator.tick()

    answer = await client.post(f"/api/incidents/{incident_id}/resolve", json={"notes": "by hand"})
    assert answer.status_code == 200, answer.text
    await remediator.tick()

    (attempt,) = await attempts(db, incident_id)
    assert attempt.step == Step.CANCELLED
    assert "resolved the incident meanwhile" in (attempt.outcome or "")


async def test_an_alert_no_auto_rule_routes_gets_no_attempt(
    client: AsyncClient,
    app: FastAPI,
    db: Database,
    settings: Settings,
    launcher: RecordingLauncher,
    routed: AlertRules,
) -> None:
    other = await outcome(client, am_alert("DiskFull", instance="db-1"))
    assert await loop(app, db, settings, routed).tick() == []  # no rule routed it
    proposing = rules(mode="propose")
    app.state.alert_rules = proposing
    proposed = await fire(client)

    assert await loop(app, db, settings, proposing).tick() == []
    assert await attempts(db, other["incident_id"]) == []
    assert await attempts(db, proposed["incident_id"]) == []
    assert launcher.launches == []
    shown = await incident(client, proposed["incident_id"])
    assert shown["remediation"]["mode"] == "propose"
