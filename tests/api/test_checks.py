"""The Checks API on the demo warehouse, and what check runs do to incidents."""

from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy.engine import make_url

from checks.config import CheckSpec
from checks.runner import incident_for, record
from checks.service import Checks
from models.db import Database
from models.services.checks import Measurement
from models.settings import Settings
from playbooks.catalog import load_checks

SHIPPED = load_checks(Settings().checks_file)


def at(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


def measurement(spec: CheckSpec, *, value: float | None, error: str | None = None,
                offset: float = 0) -> Measurement:  # fmt: skip
    return Measurement(
        check_id=spec.id, started_at=at(offset), duration_ms=1.5, threshold=spec.threshold,
        value=value, passed=None if error else spec.passes(value or 0), error=error,
    )  # fmt: skip


async def incidents(client: AsyncClient, **params: Any) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = (await client.get("/api/incidents", params=params)).json()[
        "incidents"
    ]
    return result


async def test_checks_list_every_declared_check(client: AsyncClient) -> None:
    response = await client.get("/api/checks")

    assert response.status_code == 200
    checks = {c["id"]: c for c in response.json()["checks"]}
    assert set(checks) == set(SHIPPED)
    fresh = checks["data_freshness_inbox"]
    assert fresh["threshold"] == 300
    assert fresh["severity"] == "sev1"
    assert fresh["every"] == 60
    assert fresh["last_run"] is None
    assert fresh["next_run_at"] is None


async def test_a_failing_run_opens_an_incident_and_a_repeat_counts(client: AsyncClient) -> None:
    first = await client.post("/api/checks/triage_latency/run")
    second = await client.post("/api/checks/triage_latency/run")

    run = first.json()
    assert first.status_code == 200
    assert run["passed"] is False
    assert run["value"] > 1000
    assert run["incident_id"] is not None
    assert second.json()["incident_id"] == run["incident_id"]
    incident = (await client.get(f"/api/incidents/{run['incident_id']}")).json()
    assert incident["kind"] == "budget"
    assert incident["key"] == "BUDGET_inbox.triage_latency_p95_ms"
    assert incident["severity"] == "sev2"
    assert incident["occurrence_count"] == 2
    assert incident["playbooks"] == ["clear_cache", "rerun_eval"]
    assert incident["details"]["budget"]["threshold"] == 1000
    assert incident["details"]["budget"]["actual"] == run["value"]
    assert incident["metadata"] == {
        "agent": "inbox.triage", "auto_created": True, "check_id": "triage_latency",
        "check_run_id": run["id"],
    }  # fmt: skip
    runs = (await client.get("/api/checks/triage_latency/runs")).json()["runs"]
    assert [r["id"] for r in runs] == [second.json()["id"], run["id"]]
    listed = {c["id"]: c for c in (await client.get("/api/checks")).json()["checks"]}
    assert listed["triage_latency"]["last_run"]["id"] == second.json()["id"]
    assert listed["triage_latency"]["last_run"]["trigger"] == "manual"
    assert listed["triage_latency"]["next_run_at"] is None  # only the schedule's runs say


async def test_a_check_incident_keeps_its_title_and_each_occurrence_says_its_value(
    client: AsyncClient, db: Database, settings: Settings
) -> None:
    spec = SHIPPED["data_freshness_inbox"]
    first = await record(spec, measurement(spec, value=322.4225118160248), db, settings)
    second = await record(spec, measurement(spec, value=1800, offset=1), db, settings)

    assert second.incident_id == first.incident_id
    incident = (await client.get(f"/api/incidents/{first.incident_id}")).json()
    assert incident["summary"] == (
        "inbox.triage: Seconds since the newest email in inbox_emails (dbt keeps it fresh)"
    )
    assert incident["details"]["invariant"] == {
        "id": "data_freshness_inbox", "threshold": 300, "actual": 322.4225118160248,
        "comparison": "<=", "unit": "seconds",
    }  # fmt: skip
    entries = (await client.get(f"/api/incidents/{first.incident_id}/timeline")).json()["entries"]
    assert [(e["verb"], e["notes"]) for e in entries] == [
        ("create", "value 322.423 seconds (must be <= 300 seconds)"),
        ("recur", "occurrence 2: value 1800 seconds (must be <= 300 seconds)"),
    ]


async def test_planner_incidents_are_keyed_by_the_canary_version(client: AsyncClient) -> None:
    run = (await client.post("/api/checks/planner_canary/run")).json()

    incident = (await client.get(f"/api/incidents/{run['incident_id']}")).json()
    assert incident["key"] == "PLANNER_v1.2.3"
    assert incident["details"]["planner"]["version"] == "v1.2.3"
    assert incident["details"]["planner"]["stable"] == "v1.2.2"


def test_a_planner_querys_columns_never_replace_the_contract_fields() -> None:
    spec = SHIPPED["planner_canary"]
    measured = Measurement(
        check_id=spec.id, started_at=at(0), duration_ms=1.0, threshold=spec.threshold,
        value=7.0, passed=False, context={"version": "v9", "id": "x", "threshold": 1, "actual": 2},
    )  # fmt: skip

    details = incident_for(spec, measured).details["planner"]

    assert details == {"id": "planner_canary", "threshold": 5, "actual": 7.0, "comparison": "<=",
                       "unit": "points", "version": "v9"}  # fmt: skip


def receive_an_email_now(settings: Settings) -> None:
    """What the demo's feed and a dbt run do: the session's warehouse was built when the run
    began, so after five minutes its newest email is too old for the freshness check."""
    path = make_url(settings.warehouse_url).database
    with duckdb.connect(path) as conn:
        conn.execute(
            "update inbox_emails set received_at = current_timestamp where email_id ="
            " (select email_id from inbox_emails order by received_at desc limit 1)"
        )


async def test_a_passing_run_opens_nothing(client: AsyncClient, settings: Settings) -> None:
    receive_an_email_now(settings)
    run = (await client.post("/api/checks/data_freshness_inbox/run")).json()

    assert run["passed"] is True
    assert run["incident_id"] is None
    assert await incidents(client) == []


async def test_unknown_check_is_404(client: AsyncClient) -> None:
    for response in (
        await client.post("/api/checks/nope/run"),
        await client.get("/api/checks/nope/runs"),
    ):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


async def test_passing_again_is_noted_on_the_incident(
    client: AsyncClient, db: Database, settings: Settings
) -> None:
    spec = SHIPPED["data_freshness_inbox"]
    failed = await record(spec, measurement(spec, value=1800), db, settings)
    await client.post(f"/api/incidents/{failed.incident_id}/acknowledge",
                      json={"acknowledged_by": "oncall@example.com"})  # fmt: skip

    passed = await record(spec, measurement(spec, value=12, offset=1), db, settings)
    again = await record(spec, measurement(spec, value=10, offset=2), db, settings)

    assert passed.incident_id == failed.incident_id
    assert again.incident_id is None  # noted once, on the change from failing to passing
    incident = (await client.get(f"/api/incidents/{failed.incident_id}")).json()
    assert incident["status"] == "acknowledged"
    timeline = (await client.get(f"/api/incidents/{failed.incident_id}/timeline")).json()
    notes = [e for e in timeline["entries"] if e["verb"] == "check_passing"]
    assert len(notes) == 1
    assert notes[0]["actor"] == "check:data_freshness_inbox"
    assert "passes again" in notes[0]["notes"]


async def test_auto_resolve(client: AsyncClient, db: Database, settings: Settings) -> None:
    spec = SHIPPED["data_freshness_inbox"].model_copy(update={"auto_resolve": True})
    failed = await record(spec, measurement(spec, value=1800), db, settings)

    await record(spec, measurement(spec, value=5, offset=1), db, settings)

    incident = (await client.get(f"/api/incidents/{failed.incident_id}")).json()
    assert incident["status"] == "resolved"
    timeline = (await client.get(f"/api/incidents/{failed.incident_id}/timeline")).json()
    assert timeline["entries"][-1]["actor"] == "check:data_freshness_inbox"
    assert "resolved automatically" in timeline["entries"][-1]["notes"]


async def test_a_check_that_keeps_erroring_gets_its_own_incident(
    client: AsyncClient, db: Database, settings: Settings
) -> None:
    spec = SHIPPED["triage_cost"]
    runs = [
        await record(
            spec,
            measurement(spec, value=None, error="OperationalError: down", offset=n),
            db,
            settings,
        )
        for n in range(settings.check_error_threshold)
    ]

    assert [r.incident_id is None for r in runs] == [True, True, False]
    assert all(r.passed is None and r.error for r in runs)
    incident = (await client.get(f"/api/incidents/{runs[-1].incident_id}")).json()
    assert incident["key"] == "INV_check_triage_cost_failing"
    assert incident["kind"] == "invariant"
    assert "OperationalError: down" in incident["summary"]


async def test_the_per_key_cap_keeps_the_run_but_not_the_incident(
    client: AsyncClient, db: Database, settings: Settings
) -> None:
    spec = SHIPPED["triage_cost"]
    for n in range(settings.incident_cap_per_key):
        run = await record(spec, measurement(spec, value=99, offset=n), db, settings)
        await client.post(f"/api/incidents/{run.incident_id}/resolve")

    refused = await record(spec, measurement(spec, value=99, offset=10), db, settings)

    assert refused.incident_id is None
    assert "Too many incidents" in refused.context["incident_refused"]
    assert len(await incidents(client)) == settings.incident_cap_per_key


@pytest.fixture
def checks_an_hour_old(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> Checks:
    """The app's checks as if the API had started an hour ago: every one not run is stale."""
    checks: Checks = app.state.checks
    monkeypatch.setattr(checks, "started_at", at(-3600))
    return checks


async def test_the_watchdog_opens_incidents_for_stale_checks(
    checks_an_hour_old: Checks, client: AsyncClient, db: Database, settings: Settings
) -> None:
    checks = checks_an_hour_old
    spec = SHIPPED["data_freshness_inbox"]
    await record(spec, measurement(spec, value=5), db, settings)  # its schedule ran: not stale

    stale = await checks.watch()

    assert "data_freshness_inbox" not in stale
    assert set(stale) == set(SHIPPED) - {"data_freshness_inbox"}
    keys = {i["key"] for i in await incidents(client)}
    assert {f"INV_check_{cid}_stale" for cid in stale} <= keys
    listed = {c["id"]: c["stale"] for c in (await client.get("/api/checks")).json()["checks"]}
    assert listed == {cid: cid in stale for cid in SHIPPED}


async def test_a_manual_run_neither_hides_a_dead_schedule_nor_settles_its_stale_incident(
    checks_an_hour_old: Checks, client: AsyncClient, db: Database, settings: Settings
) -> None:
    checks = checks_an_hour_old
    spec = SHIPPED["data_freshness_inbox"]
    assert "data_freshness_inbox" in (await checks.watch() or [])

    manual = (await client.post("/api/checks/data_freshness_inbox/run")).json()

    assert manual["trigger"] == "manual"
    listed = {c["id"]: c for c in (await client.get("/api/checks")).json()["checks"]}
    assert listed["data_freshness_inbox"]["stale"] is True  # the schedule is still dead
    assert listed["data_freshness_inbox"]["last_run"]["id"] == manual["id"]
    stale = [i for i in await incidents(client)
             if i["key"] == "INV_check_data_freshness_inbox_stale"]  # fmt: skip
    assert [i["status"] for i in stale] == ["open"]

    scheduled = await record(spec, measurement(spec, value=5), db, settings)

    assert scheduled.trigger == "schedule"
    listed = {c["id"]: c for c in (await client.get("/api/checks")).json()["checks"]}
    assert listed["data_freshness_inbox"]["stale"] is False
    assert listed["data_freshness_inbox"]["next_run_at"] == (
        scheduled.started_at + timedelta(seconds=spec.every)
    ).isoformat().replace("+00:00", "Z")
    resolved = (await client.get(f"/api/incidents/{stale[0]['id']}")).json()
    assert resolved["status"] == "resolved"


async def test_recovery_is_noted_even_after_an_error_run(
    client: AsyncClient, db: Database, settings: Settings
) -> None:
    spec = SHIPPED["data_freshness_inbox"].model_copy(update={"auto_resolve": True})
    failed = await record(spec, measurement(spec, value=1800), db, settings)
    await record(spec, measurement(spec, value=None, error="OperationalError: blip", offset=1),
                 db, settings)  # fmt: skip

    await record(spec, measurement(spec, value=5, offset=2), db, settings)

    incident = (await client.get(f"/api/incidents/{failed.incident_id}")).json()
    assert incident["status"] == "resolved"
