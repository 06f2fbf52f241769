"""Racing requests on one incident or one key: the database decides, exactly one wins."""

import asyncio
import itertools
from collections import Counter

import pytest
from httpx import AsyncClient
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from models.db import Database, transaction
from models.incident import Incident
from tests.factories import apply_verb, create_incident, incident_body

RACERS = 12


async def test_of_racing_acknowledges_exactly_one_wins(client: AsyncClient) -> None:
    incident = await create_incident(client)

    responses = await asyncio.gather(
        *(
            client.post(
                f"/api/incidents/{incident['id']}/acknowledge",
                json={"acknowledged_by": f"engineer{n}@example.com"},
            )
            for n in range(RACERS)
        )
    )

    codes = Counter(r.status_code for r in responses)
    assert codes == {200: 1, 400: RACERS - 1}
    winner = next(r.json() for r in responses if r.status_code == 200)
    stored = (await client.get(f"/api/incidents/{incident['id']}")).json()
    assert stored["acknowledged_by"] == winner["acknowledged_by"]
    timeline = (await client.get(f"/api/incidents/{incident['id']}/timeline")).json()["entries"]
    assert [e["verb"] for e in timeline] == ["create", "acknowledge"]


async def test_racing_creates_of_one_key_open_one_incident(
    client: AsyncClient, db: Database
) -> None:
    body = incident_body(key="INV_race")

    responses = await asyncio.gather(
        *(client.post("/api/incidents", json=body) for _ in range(RACERS))
    )

    codes = Counter(r.status_code for r in responses)
    assert codes == {201: 1, 200: RACERS - 1}
    assert len({r.json()["id"] for r in responses}) == 1
    async with db.reader() as session:
        rows = list(await session.scalars(select(Incident).where(Incident.key == "INV_race")))
    assert len(rows) == 1
    assert rows[0].occurrence_count == RACERS


async def test_racing_mixed_verbs_leave_a_consistent_history(client: AsyncClient) -> None:
    incident = await create_incident(client)
    verbs = ["acknowledge", "mitigate", "resolve", "close", "reopen", "assign"] * 3

    responses = await asyncio.gather(*(apply_verb(client, incident["id"], v) for v in verbs))

    assert all(r.status_code in (200, 400) for r in responses), [r.text for r in responses]
    timeline = (await client.get(f"/api/incidents/{incident['id']}/timeline")).json()["entries"]
    accepted = sum(r.status_code == 200 for r in responses)
    assert len(timeline) == 1 + accepted
    for before, after in itertools.pairwise(timeline):
        assert after["from_status"] == before["to_status"]
    stored = (await client.get(f"/api/incidents/{incident['id']}")).json()
    assert stored["status"] == timeline[-1]["to_status"]


async def test_the_database_itself_refuses_two_active_incidents_per_key(
    client: AsyncClient, db: Database
) -> None:
    incident = await create_incident(client, key="INV_constraint")
    copy = text(
        "INSERT INTO incidents (kind, key, severity, status, summary, details, playbooks,"
        " metadata, occurrence_count, reopen_count, last_seen_at, created_at, updated_at)"
        " SELECT kind, key, severity, 'acknowledged', summary, details, playbooks, metadata,"
        " 1, 0, last_seen_at, created_at, updated_at FROM incidents WHERE id = :id"
    )

    with pytest.raises(IntegrityError):
        async with transaction(db.writer) as session:
            await session.execute(copy, {"id": incident["id"]})

    async with db.reader() as session:
        count = await session.scalar(select(func.count()).select_from(Incident))
    assert count == 1
