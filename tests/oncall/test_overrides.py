"""Overrides through the API: someone covers a schedule for a while; GET /api/oncall shows them;
cancelling gives the rotation back; every mistake is a clear refusal; each change is audited."""

from datetime import timedelta
from typing import Any

from httpx import AsyncClient
from sqlalchemy import select

from models.access import AuditEntry
from models.base import utcnow
from models.db import Database, transaction
from tests.auth import TESTER

OVERRIDES = "/api/oncall/overrides"


async def cover(client: AsyncClient, **body: Any) -> dict[str, Any]:
    answer = await client.post(
        OVERRIDES, json={"schedule": "data-platform", "person": "edsger"} | body
    )
    assert answer.status_code == 201, answer.text
    made: dict[str, Any] = answer.json()
    return made


async def data_platform(client: AsyncClient, at: str | None = None) -> dict[str, Any]:
    params = {"at": at} if at else {}
    body = (await client.get("/api/oncall", params=params)).json()
    schedule: dict[str, Any] = body["schedules"][0]
    assert schedule["name"] == "data-platform"
    return schedule


async def test_an_override_puts_its_person_on_call_for_its_window(client: AsyncClient) -> None:
    rotation = (await data_platform(client))["now"]["person"]["id"]
    made = await cover(client, duration_seconds=3600, reason="Ada is on a plane")

    assert made["person"]["id"] == "edsger"
    assert made["covers"]["id"] == rotation
    assert (made["state"], made["reason"], made["created_by"]) == (
        "active",
        "Ada is on a plane",
        TESTER,
    )
    schedule = await data_platform(client)
    assert (schedule["now"]["person"]["id"], schedule["now"]["override_id"]) == (
        "edsger",
        made["id"],
    )
    assert schedule["now"]["ends_at"] == made["ends_at"]
    assert schedule["next"]["person"]["id"] == rotation
    assert schedule["next"]["starts_at"] == made["ends_at"]
    listed = (await client.get(OVERRIDES)).json()
    assert [o["id"] for o in listed["overrides"]] == [made["id"]]


async def test_a_cancelled_override_gives_the_rotation_back_once(client: AsyncClient) -> None:
    made = await cover(client, duration_seconds=3600)
    first = await client.delete(f"{OVERRIDES}/{made['id']}")
    again = await client.delete(f"{OVERRIDES}/{made['id']}")

    assert first.status_code == again.status_code == 200
    assert first.json()["state"] == "cancelled"
    assert again.json()["cancelled_at"] == first.json()["cancelled_at"]
    assert first.json()["cancelled_by"] == TESTER
    assert (await data_platform(client))["now"]["override_id"] is None
    assert (await client.get(OVERRIDES)).json()["overrides"] == []
    cancelled = (await client.get(OVERRIDES, params={"state": "cancelled"})).json()
    assert [o["id"] for o in cancelled["overrides"]] == [made["id"]]


async def test_an_override_ahead_is_upcoming_and_shown_only_inside_its_window(
    client: AsyncClient,
) -> None:
    starts = utcnow() + timedelta(days=2)
    made = await cover(
        client,
        starts_at=starts.isoformat(),
        ends_at=(starts + timedelta(hours=8)).isoformat(),
    )
    assert made["state"] == "upcoming"
    assert (await data_platform(client))["now"]["override_id"] is None
    inside = (starts + timedelta(hours=1)).isoformat()
    assert (await data_platform(client, inside))["now"]["override_id"] == made["id"]
    upcoming = (await client.get(OVERRIDES, params={"state": "upcoming"})).json()
    assert upcoming["total"] == 1


async def test_unknown_schedule_and_person_are_422_naming_each(client: AsyncClient) -> None:
    answer = await client.post(
        OVERRIDES, json={"schedule": "nope", "person": "nobody", "duration_seconds": 600}
    )
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["code"] == "validation_error"
    said = str(error["details"])
    assert "unknown schedule 'nope'" in said
    assert "unknown person 'nobody'" in said


async def test_windows_that_cannot_be_are_refused_and_nothing_is_stored(
    client: AsyncClient, db: Database
) -> None:
    now = utcnow()
    cases = [
        ({"ends_at": (now - timedelta(hours=1)).isoformat()}, 400),
        ({"ends_at": (now + timedelta(days=91)).isoformat()}, 400),
        ({"duration_seconds": 600, "ends_at": (now + timedelta(hours=1)).isoformat()}, 422),
        ({}, 422),
        ({"duration_seconds": 10}, 422),
        ({"duration_seconds": 600, "starts_at": "2026-12-07T09:00:00"}, 422),  # no offset
    ]
    for body, status in cases:
        answer = await client.post(
            OVERRIDES, json={"schedule": "data-platform", "person": "ada"} | body
        )
        assert answer.status_code == status, (body, answer.text)
        assert answer.json()["error"]["code"] in ("bad_request", "validation_error")
    assert (await client.get(OVERRIDES, params={"state": "cancelled"})).json()["total"] == 0
    assert (await client.get(OVERRIDES)).json()["total"] == 0
    missing = await client.delete(f"{OVERRIDES}/999999")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")


async def test_making_and_cancelling_are_in_the_audit_log(
    client: AsyncClient, db: Database
) -> None:
    made = await cover(client, duration_seconds=600)
    await client.delete(f"{OVERRIDES}/{made['id']}")
    async with transaction(db.reader) as session:
        rows = await session.scalars(
            select(AuditEntry).where(AuditEntry.path.like("/api/oncall/overrides%"))
        )
        said = [(r.principal, r.method, r.path, r.status) for r in rows]
    assert said == [
        (TESTER, "POST", OVERRIDES, 201),
        (TESTER, "DELETE", f"{OVERRIDES}/{made['id']}", 200),
    ]
