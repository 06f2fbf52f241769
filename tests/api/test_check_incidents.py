"""How check incidents settle: a planner check's earlier canary versions, and a check's own
failing and stale incidents (severity, triggering run, resolved when it runs again)."""

from dataclasses import replace
from typing import Any

import pytest
from httpx import AsyncClient

from checks.config import CheckSpec
from checks.runner import record, record_many
from checks.service import Checks
from models.db import Database, transaction
from models.enums import RunTrigger
from models.services.checks import Measurement, list_runs
from models.services.planner import set_traffic
from models.settings import Settings
from tests.api.test_checks import SHIPPED, at, measurement


def canary(spec: CheckSpec, *, version: str, value: float, offset: float) -> Measurement:
    return Measurement(
        check_id=spec.id, started_at=at(offset), duration_ms=1.0, threshold=spec.threshold,
        value=value, passed=spec.passes(value), context={"version": version, "stable": "v1"},
    )  # fmt: skip


async def get(client: AsyncClient, incident_id: int | None) -> dict[str, Any]:
    body: dict[str, Any] = (await client.get(f"/api/incidents/{incident_id}")).json()
    return body


async def timeline(client: AsyncClient, incident_id: int | None) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = (
        await client.get(f"/api/incidents/{incident_id}/timeline")
    ).json()["entries"]
    return entries


async def test_a_new_canary_that_passes_settles_the_incidents_of_earlier_versions(
    client: AsyncClient, db: Database, settings: Settings
) -> None:
    spec = SHIPPED["planner_canary"]
    old = await record(spec, canary(spec, version="v1.2.3", value=6.1, offset=0), db, settings)
    newer = await record(spec, canary(spec, version="v1.2.4", value=7, offset=1), db, settings)

    passed = await record(spec, canary(spec, version="v1.2.4", value=1, offset=2), db, settings)
    again = await record(spec, canary(spec, version="v1.2.5", value=1, offset=3), db, settings)

    assert old.incident_id != newer.incident_id
    assert passed.incident_id in {old.incident_id, newer.incident_id}
    assert again.incident_id is None  # noted once, on the change from failing to passing
    for run in (old, newer):
        incident = await get(client, run.incident_id)
        assert incident["status"] == "open"  # no auto_resolve
        notes = [e for e in await timeline(client, run.incident_id) if e["verb"] == "check_passing"]
        assert len(notes) == 1
        assert notes[0]["actor"] == "check:planner_canary"


async def test_a_rolled_back_canary_counts_and_opens_nothing_while_it_serves_no_traffic(
    client: AsyncClient, db: Database, settings: Settings
) -> None:
    spec = SHIPPED["planner_canary"]

    async def serve(traffic: dict[str, int]) -> None:
        async with transaction(db.writer) as session:
            await set_traffic(session, traffic=traffic, change="test", actor="test", at=at(0),
                              stable_version="v1.2.2")  # fmt: skip

    await serve({"v1.2.2": 80, "v1.2.3": 20})
    serving = await record(spec, canary(spec, version="v1.2.3", value=6, offset=0), db, settings)
    await serve({"v1.2.2": 100})  # rolled back
    idle = await record(spec, canary(spec, version="v1.2.3", value=6, offset=1), db, settings)

    incident = await get(client, serving.incident_id)
    assert incident["occurrence_count"] == 1
    assert (idle.passed, idle.incident_id) == (False, None)
    assert idle.context["not_serving"] == "v1.2.3 serves no traffic (planner state): no incident"

    await client.post(f"/api/incidents/{incident['id']}/resolve", json={"notes": "rolled back"})
    after = await record(spec, canary(spec, version="v1.2.3", value=6, offset=2), db, settings)
    assert after.incident_id is None  # no new incident for a version nobody uses
    await serve({"v1.2.2": 90, "v1.2.3": 10})  # the same version back on traffic
    back = await record(spec, canary(spec, version="v1.2.3", value=6, offset=3), db, settings)
    assert back.incident_id not in (None, incident["id"])


async def test_with_auto_resolve_every_version_is_resolved_but_not_other_planner_incidents(
    client: AsyncClient, db: Database, settings: Settings
) -> None:
    spec = SHIPPED["planner_canary"].model_copy(update={"auto_resolve": True})
    external = {"kind": "planner", "key": "PLANNER_v9", "severity": "sev2", "summary": "alert"}
    alert = await client.post("/api/incidents", json=external)
    old = await record(spec, canary(spec, version="v1.2.3", value=6.1, offset=0), db, settings)

    await record(spec, canary(spec, version="v1.2.4", value=2, offset=1), db, settings)

    assert (await get(client, old.incident_id))["status"] == "resolved"
    assert "resolved automatically" in (await timeline(client, old.incident_id))[-1]["notes"]
    assert (await get(client, alert.json()["id"]))["status"] == "open"  # not opened by the check


async def errors(spec: CheckSpec, db: Database, settings: Settings, first: float = 0) -> list[Any]:
    failed = [
        measurement(spec, value=None, error="OperationalError: down", offset=first + n)
        for n in range(settings.check_error_threshold)
    ]
    return [await record(spec, m, db, settings) for m in failed]


async def test_the_failing_incident_has_the_checks_severity_and_its_run(
    client: AsyncClient, db: Database, settings: Settings
) -> None:
    spec = SHIPPED["data_freshness_inbox"]  # priority: critical

    runs = await errors(spec, db, settings)

    incident = await get(client, runs[-1].incident_id)
    assert incident["key"] == "INV_check_data_freshness_inbox_failing"
    assert incident["severity"] == "sev1"
    assert incident["metadata"] == {
        "agent": "inbox.triage", "auto_created": True, "check_id": "data_freshness_inbox",
        "check_run_id": runs[-1].id,
    }  # fmt: skip


@pytest.mark.parametrize("trigger", list(RunTrigger))
async def test_a_run_without_error_resolves_the_checks_own_incident(
    client: AsyncClient, db: Database, settings: Settings, trigger: RunTrigger
) -> None:
    """Whatever started it (Run now, a playbook), a run shows the query works again."""
    spec = SHIPPED["triage_latency"]
    failing_id = (await errors(spec, db, settings))[-1].incident_id

    ran = measurement(spec, value=5000, offset=10)  # fails, without an error
    (run,) = await record_many([(spec, ran)], db, settings, trigger=trigger)

    incident = await get(client, failing_id)
    assert incident["status"] == "resolved"
    last = (await timeline(client, failing_id))[-1]
    assert last["actor"] == "check:triage_latency"
    assert last["to_status"] == "resolved"
    assert f"runs again without an error (run {run.id}, failed)" in last["notes"]
    assert run.incident_id != failing_id  # the run's own incident is the budget's
    assert (await get(client, run.incident_id))["key"] == "BUDGET_inbox.triage_latency_p95_ms"


async def test_an_erroring_run_leaves_the_checks_own_incident_open(
    client: AsyncClient, db: Database, settings: Settings
) -> None:
    spec = SHIPPED["triage_cost"]
    failing_id = (await errors(spec, db, settings))[-1].incident_id

    await errors(spec, db, settings, first=10)

    incident = await get(client, failing_id)
    assert incident["status"] == "open"
    assert incident["occurrence_count"] == 1 + settings.check_error_threshold


async def test_a_stale_check_that_runs_again_settles_its_stale_incident(
    client: AsyncClient, db: Database, settings: Settings
) -> None:
    spec = SHIPPED["triage_quality"]  # priority: high
    checks = Checks({spec.id: spec}, db, settings)
    checks.started_at = at(-3600)
    assert await checks.watch() == [spec.id]
    listed = (await client.get("/api/incidents", params={"kind": "invariant"})).json()
    [stale] = [i for i in listed["incidents"] if i["key"] == "INV_check_triage_quality_stale"]
    assert stale["severity"] == "sev2"

    await record(spec, measurement(spec, value=90, offset=1), db, settings)  # passes

    assert (await get(client, stale["id"]))["status"] == "resolved"
    assert await checks.watch() == []


async def test_one_sweep_opens_the_incidents_of_all_its_failing_checks(
    client: AsyncClient, db: Database, settings: Settings
) -> None:
    specs = [SHIPPED["triage_latency"], SHIPPED["data_freshness_inbox"], SHIPPED["triage_cost"]]
    values = [5000, 1800, 99]

    runs = await record_many(
        [(s, measurement(s, value=v)) for s, v in zip(specs, values, strict=True)], db, settings
    )

    opened = [await get(client, run.incident_id) for run in runs]
    assert [i["key"] for i in opened] == [
        "BUDGET_inbox.triage_latency_p95_ms", "INV_data_freshness_inbox",
        "BUDGET_inbox.triage_cost_per_day",
    ]  # fmt: skip
    assert [i["metadata"]["check_run_id"] for i in opened] == [run.id for run in runs]
    assert [i["severity"] for i in opened] == ["sev2", "sev1", "sev3"]
    for incident in opened:
        assert [e["verb"] for e in await timeline(client, incident["id"])] == ["create"]


async def test_a_batch_records_every_run_on_its_own_check_in_order(
    client: AsyncClient, db: Database, settings: Settings
) -> None:
    """A large batch (one INSERT of arrays on PostgreSQL) gives back each check its own run:
    value, outcome, error and context, in the order measured."""
    base = SHIPPED["data_freshness_inbox"]
    specs = [base.model_copy(update={"id": f"batch_order_{n}"}) for n in range(120)]
    measured = [
        replace(measurement(spec, value=n * 10.0, error="boom" if n % 7 == 0 else None),
                context={"n": n, "agent": f"a-{n}"})
        for n, spec in enumerate(specs)
    ]  # fmt: skip

    runs = await record_many(list(zip(specs, measured, strict=True)), db, settings)

    assert [(r.check_id, r.value, r.passed, r.error, r.context) for r in runs] == [
        (m.check_id, m.value, m.passed, m.error, m.context) for m in measured
    ]
    assert [r.id for r in runs] == sorted(r.id for r in runs)
    async with transaction(db.reader) as session:
        stored = await list_runs(session, "batch_order_37", limit=5)
    assert [(r.id, r.value, r.passed, r.context) for r in stored] == [
        (runs[37].id, 370.0, False, {"n": 37, "agent": "a-37"})
    ]
    failing = [r for r in runs if r.passed is False]  # above the 300 s threshold, no error
    assert len(failing) == sum(1 for n in range(31, 120) if n % 7)
    for run in failing[:3]:
        incident = await get(client, run.incident_id)
        assert incident["key"] == f"INV_{run.check_id}"
        assert incident["metadata"]["check_run_id"] == run.id


async def test_the_freshness_incident_presets_the_models_rerun_dbt_needs(
    client: AsyncClient, db: Database, settings: Settings
) -> None:
    spec = SHIPPED["data_freshness_inbox"]
    run = await record(spec, measurement(spec, value=1800), db, settings)
    incident = await get(client, run.incident_id)
    assert incident["metadata"]["playbook_params"] == {"rerun_dbt": {"models": ["inbox_emails"]}}
    url = f"/api/playbooks/incidents/{run.incident_id}/actions/dry-run"

    preset = await client.post(url, json={"action_type": "rerun_dbt", "params": {}})
    chosen = await client.post(
        url, json={"action_type": "rerun_dbt", "params": {"models": ["triage_results"]}}
    )

    assert preset.status_code == 200, preset.text
    assert preset.json()["details"]["models"] == ["inbox_emails"]
    assert preset.json()["details"]["command"] == "dbt run --select inbox_emails --threads 4"
    assert chosen.json()["details"]["models"] == ["triage_results"]  # the caller's win
