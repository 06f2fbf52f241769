"""Notes on an incident's timeline and search across key, summary and details, through the app
on both databases."""

from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import select

from models.base import utcnow
from models.db import Database, transaction
from models.enums import ActionStatus, Role
from models.event import Event
from models.services.actions import advance_action
from tests.factories import create_incident, create_incident_in
from tests.fakes import RecordingLauncher


async def timeline(client: AsyncClient, incident_id: int) -> list[dict[str, Any]]:
    answer = await client.get(f"/api/incidents/{incident_id}/timeline")
    assert answer.status_code == 200, answer.text
    entries: list[dict[str, Any]] = answer.json()["entries"]
    return entries


@pytest.mark.parametrize("status", ["open", "acknowledged", "resolved", "closed"])
async def test_a_note_lands_on_the_timeline_in_any_status_and_changes_nothing_else(
    client: AsyncClient, status: str
) -> None:
    incident = await create_incident_in(client, status)
    answer = await client.post(
        f"/api/incidents/{incident['id']}/notes",
        json={"notes": "  The upstream export is late again  ", "actor": "ada"},
    )
    assert answer.status_code == 201, answer.text
    entry = answer.json()
    assert (entry["verb"], entry["actor"], entry["notes"]) == (
        "note", "ada", "The upstream export is late again"
    )  # fmt: skip
    assert entry["from_status"] == entry["to_status"] == status
    assert (await timeline(client, incident["id"]))[-1] == entry
    after = (await client.get(f"/api/incidents/{incident['id']}")).json()
    assert after["status"] == status


async def test_a_note_is_announced_on_the_event_stream(client: AsyncClient, db: Database) -> None:
    incident = await create_incident(client)
    answer = await client.post(f"/api/incidents/{incident['id']}/notes", json={"notes": "seen"})
    assert answer.status_code == 201
    async with transaction(db.reader) as session:
        events = list(
            await session.scalars(
                select(Event).where(Event.incident_id == incident["id"]).order_by(Event.id)
            )
        )
    last = events[-1]
    assert last.type == "incident_updated"
    assert (last.payload["change"], last.payload["notes"]) == ("note", "seen")


async def test_bad_notes_are_refused_in_the_envelope(client: AsyncClient) -> None:
    incident = await create_incident(client)
    url = f"/api/incidents/{incident['id']}/notes"
    for body in ({}, {"notes": ""}, {"notes": "   "}, {"notes": "x" * 10_001}, {"notes": 3}):
        answer = await client.post(url, json=body)
        assert answer.status_code == 422, body
        assert answer.json()["error"]["code"] == "validation_error"
    missing = await client.post("/api/incidents/999999999/notes", json={"notes": "hello"})
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert [e["verb"] for e in await timeline(client, incident["id"])] == ["create"]


async def test_a_viewer_may_not_write_notes(as_role: Any, client: AsyncClient) -> None:
    incident = await create_incident(client)
    viewer = await as_role("val@x.io", Role.VIEWER)
    answer = await viewer.post(f"/api/incidents/{incident['id']}/notes", json={"notes": "hi"})
    assert answer.status_code == 403
    responder = await as_role("rob@x.io", Role.RESPONDER)
    answer = await responder.post(f"/api/incidents/{incident['id']}/notes", json={"notes": "on it"})
    assert answer.status_code == 201
    assert answer.json()["actor"] == "rob@x.io"  # by default, the token's name


async def listed(client: AsyncClient, **query: Any) -> list[str]:
    answer = await client.get("/api/incidents", params=query)
    assert answer.status_code == 200, answer.text
    return sorted(i["key"] for i in answer.json()["incidents"])


async def test_search_finds_text_in_the_key_summary_or_details_whatever_the_case(
    client: AsyncClient,
) -> None:
    await create_incident(client, key="inbox.triage", summary="Inbox is stale", details={})
    await create_incident(client, key="search.latency", summary="p99 over budget",
                          details={"cluster": "ES-Prod-EU", "index": "products"})  # fmt: skip
    await create_incident(client, key="planner_v2", summary="Canary 100%_regressed", details={})

    assert await listed(client, q="INBOX") == ["inbox.triage"]
    assert await listed(client, q="budget") == ["search.latency"]
    assert await listed(client, q="prod-eu") == ["search.latency"]  # a label's value
    assert await listed(client, q="100%_") == ["planner_v2"]  # % and _ are themselves
    assert await listed(client, q="%") == ["planner_v2"]
    assert await listed(client, q="_") == ["planner_v2"]
    assert await listed(client, q="nothing like it") == []
    assert await listed(client, q="a", severity="sev1") == await listed(
        client, severity="sev1", q="a"
    )
    counts = (await client.get("/api/incidents/counts", params={"q": "inbox"})).json()
    assert counts["total"] == 1


async def test_a_search_out_of_bounds_is_a_422(client: AsyncClient) -> None:
    for q in ("", "x" * 201):
        answer = await client.get("/api/incidents", params={"q": q})
        assert answer.status_code == 422
        assert answer.json()["error"]["code"] == "validation_error"


async def test_the_timeline_says_to_whom_an_incident_was_assigned(client: AsyncClient) -> None:
    incident = await create_incident(client)
    url = f"/api/incidents/{incident['id']}/assign"
    assigned = await client.post(url, json={"assigned_to": "ada@x.io", "notes": "owns the DAG"})
    assert assigned.status_code == 200, assigned.text
    assert (await client.post(url, json={"assigned_to": None})).status_code == 200
    entries = [e for e in await timeline(client, incident["id"]) if e["verb"] == "assign"]
    assert [e["notes"] for e in entries] == ["to ada@x.io\nowns the DAG", "unassigned"]


async def test_playbook_steps_are_on_the_timeline(
    client: AsyncClient, db: Database, launcher: RecordingLauncher
) -> None:
    incident = await create_incident(client, playbooks=["rerun_dbt"])
    base = f"/api/playbooks/incidents/{incident['id']}/actions"
    params = {"task_id": "t-1", "models": ["inbox_emails"], "full_refresh": False}
    run = {"action_type": "rerun_dbt", "params": params}
    assert (await client.post(f"{base}/dry-run", json=run)).status_code == 200
    action_id = (await client.post(f"{base}/execute", json=run)).json()["action_id"]
    async with transaction(db.writer) as session:  # what the flow's state hooks report
        await advance_action(session, action_id=action_id, status=ActionStatus.RUNNING, at=utcnow())
        for _ in range(2):  # a duplicate report is not a second entry
            await advance_action(
                session,
                action_id=action_id,
                status=ActionStatus.SUCCESS,
                at=utcnow(),
                message="2 models built",
            )
    ask = {"action_type": "rerun_dbt", "reason": "stale",
           "params": params | {"full_refresh": True}}  # fmt: skip
    asked = await client.post(f"{base}/approvals", json=ask)
    assert asked.status_code == 201, asked.text
    decide = f"{base}/approvals/{asked.json()['id']}/reject"
    assert (await client.post(decide, json={"notes": "not in the freeze"})).status_code == 200

    entries = await timeline(client, incident["id"])
    assert [e["verb"] for e in entries] == [
        "create", "dry_run", "execute", "action_success", "approval_requested",
        "approval_rejected",
    ]  # fmt: skip
    done = entries[3]
    assert (done["actor"], done["from_status"], done["to_status"]) == (
        f"action:{action_id}", None, None
    )  # fmt: skip
    assert done["notes"].startswith(f"action #{action_id} rerun_dbt after ")
    assert ": 2 models built\nhttp://prefect.test/runs/flow-run/" in done["notes"]
    assert entries[4]["notes"] == f"approval #{asked.json()['id']}: rerun_dbt\nstale"
    assert entries[5]["notes"] == f"approval #{asked.json()['id']}: rerun_dbt\nnot in the freeze"
