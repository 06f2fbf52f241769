"""SLA timers on incidents: the `sla` field, and breaches announced once by the sweep.

The sweep's clock is a parameter: incidents are created now and swept as of a later time, so
the app's own background sweep (real time) never reaches them during a test.
"""

import asyncio
from datetime import datetime, timedelta
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select

from api.sla import SlaSweep
from models.base import utcnow
from models.db import Database, transaction
from models.enums import SlaTimer
from models.event import Event
from models.incident import Incident, TimelineEntry
from models.services.sla import Breach, record_sla_breaches
from models.settings import Settings
from tests.factories import apply_verb, create_incident, create_incident_at


async def sweep(db: Database, settings: Settings, now: datetime) -> list[Breach]:
    async with transaction(db.writer) as session:
        return await record_sla_breaches(session, now=now, targets=settings.sla_targets)


async def announced(db: Database, incident_id: int) -> tuple[list[TimelineEntry], list[Event]]:
    """The incident's `sla_breached` timeline rows and events."""
    async with db.reader() as session:
        entries = await session.scalars(
            select(TimelineEntry).where(
                TimelineEntry.incident_id == incident_id, TimelineEntry.verb == "sla_breached"
            )
        )
        events = await session.scalars(
            select(Event).where(Event.incident_id == incident_id).order_by(Event.id)
        )
        return list(entries), [e for e in events if e.payload.get("change") == "sla_breached"]


def created(incident: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(incident["created_at"])


async def test_a_new_incident_shows_its_timers(client: AsyncClient) -> None:
    incident = await create_incident(client, severity="sev1")

    sla = incident["sla"]
    assert list(sla) == ["acknowledge", "mitigate", "resolve"]
    assert sla["acknowledge"] == {
        "target_seconds": 300,
        "due_at": sla["acknowledge"]["due_at"],
        "state": "pending",
        "done_at": None,
        "breached_at": None,
    }
    assert datetime.fromisoformat(sla["acknowledge"]["due_at"]) == created(incident) + timedelta(
        minutes=5
    )
    assert [sla[t]["target_seconds"] for t in sla] == [300, 1800, 14400]


async def test_every_incident_response_carries_sla(client: AsyncClient) -> None:
    incident = await create_incident(client, severity="sev2")
    path = f"/api/incidents/{incident['id']}"

    listed = (await client.get("/api/incidents")).json()["incidents"][0]
    read = (await client.get(path)).json()
    acked = await apply_verb(client, incident["id"], "acknowledge")
    mitigated = (await apply_verb(client, incident["id"], "mitigate")).json()

    assert listed["sla"] == read["sla"] == incident["sla"]
    assert acked.status_code == 200
    assert mitigated["sla"]["acknowledge"]["state"] == "met"
    assert mitigated["sla"]["mitigate"]["state"] == "met"
    assert mitigated["sla"]["mitigate"]["done_at"] == mitigated["mitigated_at"]
    assert mitigated["sla"]["resolve"]["state"] == "pending"


async def test_sev4_has_no_timers(client: AsyncClient) -> None:
    incident = await create_incident(client, severity="sev4")

    assert incident["sla"] == {"acknowledge": None, "mitigate": None, "resolve": None}


async def test_an_old_open_incident_reads_as_breached(client: AsyncClient, db: Database) -> None:
    started = utcnow() - timedelta(hours=1)
    incident_id = await create_incident_at(db, created_at=started, severity="sev1")

    sla = (await client.get(f"/api/incidents/{incident_id}")).json()["sla"]

    assert sla["acknowledge"]["state"] == "breached"
    assert sla["acknowledge"]["done_at"] is None
    assert datetime.fromisoformat(sla["acknowledge"]["breached_at"]) == started + timedelta(
        minutes=5
    )
    assert sla["resolve"]["state"] == "pending"


async def test_a_breach_is_announced_once_however_often_the_sweep_runs(
    client: AsyncClient, db: Database, settings: Settings
) -> None:
    incident = await create_incident(client, severity="sev1")
    due = created(incident) + timedelta(minutes=5)
    later = due + timedelta(minutes=1)

    first = await sweep(db, settings, later)
    second = await sweep(db, settings, later + timedelta(minutes=1))

    assert first == [Breach(incident["id"], SlaTimer.ACKNOWLEDGE, due)]
    assert second == []
    entries, events = await announced(db, incident["id"])
    assert [(e.actor, e.from_status, e.to_status) for e in entries] == [("sla", "open", "open")]
    assert "acknowledge within 5 min (sev1)" in (entries[0].notes or "")
    assert [e.type for e in events] == ["incident_updated"]
    payload = events[0].payload
    assert payload == {
        "id": incident["id"],
        "status": "open",
        "change": "sla_breached",
        "sla": "acknowledge",
        "due_at": payload["due_at"],
        "breached_at": payload["due_at"],
        "updated_at": payload["updated_at"],
    }
    assert datetime.fromisoformat(payload["due_at"]) == due
    assert datetime.fromisoformat(payload["updated_at"]) == later
    async with db.reader() as session:
        stored = await session.get_one(Incident, incident["id"])
    assert stored.status.value == "open"  # a breach changes no status
    assert stored.sla_acknowledge_breached_at == due
    assert stored.sla_mitigate_breached_at is None


async def test_concurrent_sweeps_announce_a_breach_once(
    client: AsyncClient, db: Database, settings: Settings
) -> None:
    incidents = [await create_incident(client, severity="sev1") for _ in range(3)]
    later = created(incidents[-1]) + timedelta(minutes=6)

    results = await asyncio.gather(*(sweep(db, settings, later) for _ in range(4)))

    found = sorted(b.incident_id for result in results for b in result)
    assert found == sorted(i["id"] for i in incidents)
    for incident in incidents:
        entries, events = await announced(db, incident["id"])
        assert (len(entries), len(events)) == (1, 1)


async def test_each_timer_is_announced_once_as_it_runs_out(
    client: AsyncClient, db: Database, settings: Settings
) -> None:
    incident = await create_incident(client, severity="sev1")
    start = created(incident)

    at_6_min = await sweep(db, settings, start + timedelta(minutes=6))
    at_31_min = await sweep(db, settings, start + timedelta(minutes=31))
    at_5_h = await sweep(db, settings, start + timedelta(hours=5))

    assert [[b.timer.value for b in sweep] for sweep in (at_6_min, at_31_min, at_5_h)] == [
        ["acknowledge"],
        ["mitigate"],
        ["resolve"],
    ]
    entries, events = await announced(db, incident["id"])
    assert len(entries) == 3
    assert [e.payload["sla"] for e in events] == ["acknowledge", "mitigate", "resolve"]


async def test_an_incident_acknowledged_in_time_gets_no_acknowledge_breach(
    client: AsyncClient, db: Database, settings: Settings
) -> None:
    incident = await create_incident(client, severity="sev1")
    assert (await apply_verb(client, incident["id"], "acknowledge")).status_code == 200
    start = created(incident)

    assert await sweep(db, settings, start + timedelta(minutes=6)) == []
    later = await sweep(db, settings, start + timedelta(hours=5))

    assert {b.timer.value for b in later} == {"mitigate", "resolve"}
    _, events = await announced(db, incident["id"])
    assert [e.payload["sla"] for e in events] == ["mitigate", "resolve"]


async def test_sev4_and_inactive_incidents_are_never_announced(
    client: AsyncClient, db: Database, settings: Settings
) -> None:
    quiet = await create_incident(client, severity="sev4")
    resolved = await create_incident(client, severity="sev1")
    assert (await apply_verb(client, resolved["id"], "resolve")).status_code == 200

    assert await sweep(db, settings, created(resolved) + timedelta(days=365)) == []
    for incident in (quiet, resolved):
        entries, events = await announced(db, incident["id"])
        assert (entries, events) == ([], [])


async def test_a_late_acknowledge_is_still_announced(
    client: AsyncClient, db: Database, settings: Settings
) -> None:
    """The sweep may not have run between the due time and a late acknowledge."""
    started = utcnow() - timedelta(minutes=20)
    incident_id = await create_incident_at(
        db, created_at=started, severity="sev1", after={"acknowledge": timedelta(minutes=10)}
    )

    breaches = await sweep(db, settings, utcnow())

    mine = [b.timer.value for b in breaches if b.incident_id == incident_id]
    assert mine in (["acknowledge"], [])  # [] when the app's own sweep got there first
    entries, events = await announced(db, incident_id)
    assert len(entries) == 1
    assert "done late" in (entries[0].notes or "")
    assert [e.payload["sla"] for e in events] == ["acknowledge"]
    assert events[0].payload["status"] == "acknowledged"


async def test_the_app_sweeps_with_its_settings(
    client: AsyncClient, app: FastAPI, db: Database
) -> None:
    incident = await create_incident(client, severity="sev2")
    sla_sweep: SlaSweep = app.state.sla

    breaches = await sla_sweep.sweep(created(incident) + timedelta(minutes=16))

    assert [(b.incident_id, b.timer.value) for b in breaches] == [(incident["id"], "acknowledge")]
    entries, events = await announced(db, incident["id"])
    assert (len(entries), len(events)) == (1, 1)
