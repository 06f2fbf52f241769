"""The incident report, Markdown and JSON, through the app on both databases: every section,
times that match the incident, the check's measurements, the actions, and the humans'
sections saved as versions."""

from datetime import datetime, timedelta
from typing import Any

import pytest
from httpx import AsyncClient

from models.check_run import CheckRun
from models.db import Database, transaction
from models.enums import Role
from tests.factories import create_incident, create_incident_in
from tests.fakes import RecordingLauncher

SECTIONS = ["## Summary", "## Impact window", "## Measurements", "## Actions", "## Who did what",
            "## Root cause", "## Follow-ups"]  # fmt: skip
RUN = {"task_id": "task-1", "models": ["inbox_emails"], "full_refresh": False}


async def report(client: AsyncClient, incident_id: int) -> dict[str, Any]:
    answer = await client.get(f"/api/incidents/{incident_id}/report", params={"format": "json"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    return dict(answer.json())


async def test_the_report_has_every_section_and_the_incident_s_own_times(
    client: AsyncClient, launcher: RecordingLauncher
) -> None:
    incident = await create_incident(client, severity="sev1", playbooks=["rerun_dbt"],
                                     details={"actual": 322.4, "threshold": 300})  # fmt: skip
    base = f"/api/playbooks/incidents/{incident['id']}/actions"
    assert (
        await client.post(f"{base}/dry-run", json={"action_type": "rerun_dbt", "params": RUN})
    ).status_code == 200
    executed = await client.post(
        f"{base}/execute", json={"action_type": "rerun_dbt", "params": RUN}
    )
    assert executed.status_code == 200, executed.text
    for verb in ("acknowledge", "mitigate", "resolve"):
        assert (
            await client.post(f"/api/incidents/{incident['id']}/{verb}", json={})
        ).status_code == 200
    stored = (await client.get(f"/api/incidents/{incident['id']}")).json()

    answer = await client.get(f"/api/incidents/{incident['id']}/report")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/markdown; charset=utf-8"
    text = answer.text
    assert text.startswith(f"# Incident #{incident['id']}: ")
    positions = [text.index(section) for section in SECTIONS]
    assert positions == sorted(positions)
    assert "| actual | 322.4 |" in text
    assert "_No check measured this incident._" in text
    assert "(dry-run): dry_run_success" in text
    assert f"### #{executed.json()['action_id']} rerun_dbt (run): scheduled" in text
    assert "_To be written._" in text

    data = await report(client, incident["id"])
    stages = {s["stage"]: s for s in data["stages"]}
    for stage in ("acknowledged", "mitigated", "resolved"):
        at = stages[stage]["at"]
        assert at == stored[f"{stage}_at"]
        taken = datetime.fromisoformat(at) - datetime.fromisoformat(stored["created_at"])
        assert stages[stage]["after_seconds"] == pytest.approx(taken.total_seconds())
        assert stages[stage]["state"] == "met"  # a sev1 has targets for all three
        assert stages[stage]["target_seconds"] > 0
    assert stages["closed"]["at"] is None
    assert stages["opened"]["at"] == stored["created_at"]
    [dry, run] = data["actions"]
    assert (dry["dry_run"], dry["status"], run["dry_run"]) == (True, "dry_run_success", False)
    assert dry["plan"]  # what the dry-run planned
    assert [s["verb"] for s in data["timeline"]] == [
        "create", "dry_run", "execute", "acknowledge", "mitigate", "resolve"
    ]  # fmt: skip
    planned = data["timeline"][1]["notes"]
    assert planned.startswith(f"action #{dry['id']} rerun_dbt (dry_run_success): Command: dbt run")
    assert data["writing"] == {"root_cause": "", "follow_ups": "", "version": 0,
                               "updated_by": None, "updated_at": None}  # fmt: skip


async def test_the_check_s_measurements_around_the_incident_are_in_it(
    client: AsyncClient, db: Database
) -> None:
    incident = await create_incident(client, key="data_freshness_inbox")
    opened = datetime.fromisoformat(incident["created_at"])
    runs = [(-90, 100.0, None), (-5, 250.0, None), (0, 322.4, incident["id"]), (5, 120.0, None)]
    async with transaction(db.writer) as session:
        for minutes, value, incident_id in runs:
            at = opened + timedelta(minutes=minutes)
            session.add(
                CheckRun(
                    check_id="data_freshness_inbox",
                    value=value,
                    threshold=300,
                    passed=value <= 300,
                    duration_ms=3.0,
                    incident_id=incident_id,
                    started_at=at,
                )
            )
        session.add(
            CheckRun(
                check_id="other_check",
                value=1.0,
                threshold=0,
                passed=False,
                duration_ms=1.0,
                started_at=opened,
            )
        )
    data = await report(client, incident["id"])
    assert [(m["value"], m["passed"]) for m in data["measurements"]] == [
        (250.0, True),
        (322.4, False),
        (120.0, True),
    ]  # an hour around it, this check only; fmt: skip
    text = (await client.get(f"/api/incidents/{incident['id']}/report")).text
    assert "| data_freshness_inbox | 322.4 | 300 | FAIL | schedule |" in text


async def test_the_humans_sections_are_saved_as_versions_without_losing_an_edit(
    client: AsyncClient,
) -> None:
    incident = await create_incident_in(client, "resolved")
    url = f"/api/incidents/{incident['id']}/report"
    written = {"root_cause": "A stale upstream export.", "follow_ups": "- alert on the export"}
    first = await client.put(url, json=written | {"actor": "ada"})
    assert first.status_code == 200, first.text
    assert (first.json()["version"], first.json()["updated_by"]) == (1, "ada")
    second = await client.put(url, json={"root_cause": "The export job's cron was disabled.",
                                         "base_version": 1})  # fmt: skip
    assert second.status_code == 200
    assert second.json()["version"] == 2
    stale = await client.put(url, json={"root_cause": "overwrites?", "base_version": 1})
    assert stale.status_code == 409
    assert stale.json()["error"]["details"] == {"version": 2, "base_version": 1}

    text = (await client.get(url)).text
    assert "## Root cause\n\nThe export job's cron was disabled.\n" in text
    assert "## Follow-ups\n\n_To be written._" in text  # the second save wrote it empty
    assert "_Version 2, last edited by " in text
    timeline = (await client.get(f"/api/incidents/{incident['id']}/timeline")).json()["entries"]
    assert [e["notes"] for e in timeline if e["verb"] == "report_edited"] == [
        "version 1", "version 2"
    ]  # fmt: skip
    assert (await client.get(f"/api/incidents/{incident['id']}")).json()["status"] == "resolved"


async def test_bad_input_and_unknown_incidents_are_refused(
    client: AsyncClient, as_role: Any
) -> None:
    incident = await create_incident(client)
    url = f"/api/incidents/{incident['id']}/report"
    refused = [{"root_cause": "x" * 50_001}, {"surprise": 1}, {"root_cause": 3},
               {"base_version": -1}, {"base_version": False}, {"base_version": "1"}]  # fmt: skip
    for body in refused:
        answer = await client.put(url, json=body)
        assert answer.status_code == 422, body
        assert answer.json()["error"]["code"] == "validation_error"
    bad_format = await client.get(url, params={"format": "pdf"})
    assert bad_format.status_code == 422
    for answer in (await client.get("/api/incidents/999999999/report"),
                   await client.put("/api/incidents/999999999/report", json={})):  # fmt: skip
        assert answer.status_code == 404
        assert answer.json()["error"]["code"] == "not_found"
    viewer = await as_role("vera@x.io", Role.VIEWER)
    assert (await viewer.get(url)).status_code == 200
    assert (await viewer.put(url, json={"root_cause": "no"})).status_code == 403
    assert (await report(client, incident["id"]))["writing"]["version"] == 0


async def test_text_from_the_incident_cannot_break_the_markdown(client: AsyncClient) -> None:
    incident = await create_incident(
        client, summary="<script>alert(1)</script> | pipe\nnew line", details={"a|b": "<b>x</b>"}
    )
    text = (await client.get(f"/api/incidents/{incident['id']}/report")).text
    assert "<script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; | pipe new line" in text
    assert "| a\\|b | &lt;b&gt;x&lt;/b&gt; |" in text
