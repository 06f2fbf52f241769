"""Alert intake on SQLite and PostgreSQL: open, count, resolve, reopen (flap control), silence
and release, the `for`-style threshold, lineage grouping, and racing requests on one key."""

import asyncio
from dataclasses import replace
from datetime import timedelta
from typing import Any

from httpx import AsyncClient
from sqlalchemy import func, select

from alerts.intake import Intake, take
from alerts.rules import AlertRules, Defaults, Match, OpenAfter, Rule
from models.alert import Alert, Signal, Source
from models.alert_hold import AlertHold
from models.base import isoformat, utcnow
from models.db import Database, transaction
from models.enums import IncidentStatus, Severity
from models.event import Event
from models.incident import Incident
from models.services.alert_holds import release_ended
from models.services.alert_intake import Outcome
from models.services.incidents import IncidentCap
from models.services.silences import create_silence, end_silence

CAP = IncidentCap(limit=50, window=timedelta(hours=1))


def alert(key: str = "DiskFull:abc", signal: Signal = Signal.FIRING, **more: Any) -> Alert:
    return Alert(
        source=more.pop("source", Source.ALERTMANAGER),
        key=key,
        signal=signal,
        summary=more.pop("summary", f"{key} is firing"),
        at=utcnow(),
        labels=more.pop("labels", {"alertname": "DiskFull", "team": "data"}),
        **more,
    )


async def ingest(
    db: Database, *alerts: Alert, rules: AlertRules | None = None, **kw: Any
) -> Intake:
    async with transaction(db.writer) as session:
        return await take(session, list(alerts), rules=rules or AlertRules(), cap=CAP, **kw)


async def incidents(db: Database, key: str) -> list[Incident]:
    async with transaction(db.reader) as session:
        return list(
            await session.scalars(select(Incident).where(Incident.key == key).order_by(Incident.id))
        )


async def timeline(client: AsyncClient, incident_id: int) -> list[dict[str, Any]]:
    answer = await client.get(f"/api/incidents/{incident_id}/timeline")
    entries: list[dict[str, Any]] = answer.json()["entries"]
    return entries


async def test_firing_opens_then_counts(client: AsyncClient, db: Database) -> None:
    first = await ingest(db, alert(severity=Severity.SEV2))
    again = await ingest(db, alert(), alert())
    assert [t.outcome for t in first.taken] == [Outcome.OPENED]
    assert [t.outcome for t in again.taken] == [Outcome.COUNTED, Outcome.COUNTED]
    [incident] = await incidents(db, "DiskFull:abc")
    assert incident.kind.value == "alert"
    assert incident.severity is Severity.SEV2
    assert incident.occurrence_count == 3
    assert incident.metadata_["source"] == "alertmanager"
    entries = await timeline(client, incident.id)
    assert [e["verb"] for e in entries] == ["create", "recur"]
    assert entries[1]["notes"] == "occurrences 2-3"


async def test_a_group_of_a_hundred_counts_every_alert_once(
    client: AsyncClient, db: Database
) -> None:
    group = [alert(f"Storm:{n % 10}") for n in range(100)]
    taken = await ingest(db, *group)
    assert taken.outcomes() == {Outcome.OPENED: 10, Outcome.COUNTED: 90}
    taken = await ingest(db, *group)
    assert taken.outcomes() == {Outcome.COUNTED: 100}
    async with transaction(db.reader) as session:
        total = await session.scalar(select(func.sum(Incident.occurrence_count)))
        count = await session.scalar(select(func.count()).select_from(Incident))
    assert (total, count) == (200, 10)


async def test_resolved_by_its_source_and_only_by_it(client: AsyncClient, db: Database) -> None:
    opened = (await ingest(db, alert())).taken[0]
    other = await ingest(db, alert(signal=Signal.RESOLVED, source=Source.PAGERDUTY))
    assert other.taken[0].outcome is Outcome.IGNORED  # pagerduty did not open it
    resolved = await ingest(db, alert(signal=Signal.RESOLVED))
    assert resolved.taken[0].outcome is Outcome.RESOLVED
    [incident] = await incidents(db, "DiskFull:abc")
    assert incident.status is IncidentStatus.RESOLVED
    last = (await timeline(client, opened.incident_id or 0))[-1]
    assert (last["actor"], last["verb"], last["notes"]) == (
        "alertmanager",
        "resolve",
        "resolved by alertmanager",
    )
    closed = await client.post(f"/api/incidents/{incident.id}/close")
    assert closed.status_code == 200
    again = await ingest(db, alert(signal=Signal.RESOLVED))
    assert again.taken[0].outcome is Outcome.IGNORED
    [incident] = await incidents(db, "DiskFull:abc")
    assert incident.status is IncidentStatus.CLOSED


async def test_a_flap_reopens_the_same_incident(client: AsyncClient, db: Database) -> None:
    first = (await ingest(db, alert())).taken[0]
    await ingest(db, alert(signal=Signal.RESOLVED))
    again = (await ingest(db, alert())).taken[0]
    assert again.outcome is Outcome.REOPENED
    assert again.incident_id == first.incident_id
    [incident] = await incidents(db, "DiskFull:abc")
    assert (incident.status, incident.reopen_count, incident.occurrence_count) == (
        IncidentStatus.OPEN,
        1,
        2,
    )
    # resolved by a person, not by the source: a new firing opens a new incident
    await client.post(f"/api/incidents/{incident.id}/resolve")
    assert (await ingest(db, alert())).taken[0].outcome is Outcome.OPENED


async def test_no_flap_window_opens_a_new_incident(client: AsyncClient, db: Database) -> None:
    rules = AlertRules(defaults=Defaults(flap_window_seconds=0))
    await ingest(db, alert(), rules=rules)
    await ingest(db, alert(signal=Signal.RESOLVED), rules=rules)
    assert (await ingest(db, alert(), rules=rules)).taken[0].outcome is Outcome.OPENED
    assert len(await incidents(db, "DiskFull:abc")) == 2


async def silence(db: Database, **matchers: Any) -> int:
    now = utcnow()
    async with transaction(db.writer) as session:
        made = await create_silence(
            session,
            matchers=matchers,
            starts_at=now,
            ends_at=now + timedelta(hours=1),
            reason="maintenance",
            created_by="tests",
            at=now,
        )
        return made.id


async def release(db: Database) -> list[int]:
    async with transaction(db.writer) as session:
        return await release_ended(session, at=utcnow(), cap=CAP)


async def test_a_silence_holds_then_opens_once_when_it_ends(
    client: AsyncClient, db: Database
) -> None:
    silence_id = await silence(db, labels={"team": "da*"})
    taken = await ingest(db, alert(), alert())
    assert [t.outcome for t in taken.taken] == [Outcome.SILENCED, Outcome.SILENCED]
    assert taken.taken[0].silence_id == silence_id
    assert await incidents(db, "DiskFull:abc") == []
    assert await release(db) == []  # still silenced
    async with transaction(db.writer) as session:
        await end_silence(session, silence_id, by="tests", at=utcnow())
    [opened] = await release(db)
    assert await release(db) == []
    [incident] = await incidents(db, "DiskFull:abc")
    assert incident.id == opened
    assert incident.status is IncidentStatus.OPEN
    assert (await timeline(client, opened))[-1]["verb"] == "silence_ended"
    shown = (await client.get(f"/api/silences/{silence_id}")).json()
    assert (shown["state"], shown["held_alerts"], shown["suppressed"]) == ("expired", 1, 2)
    assert shown["held"][0]["opened_incident_id"] == opened


async def test_an_alert_resolved_while_silenced_opens_nothing(
    client: AsyncClient, db: Database
) -> None:
    silence_id = await silence(db, key="Disk*")
    await ingest(db, alert())
    await ingest(db, alert(signal=Signal.RESOLVED))
    async with transaction(db.writer) as session:
        await end_silence(session, silence_id, by="tests", at=utcnow())
    assert await release(db) == []
    assert await incidents(db, "DiskFull:abc") == []


async def test_a_silence_that_does_not_match_lets_it_open(
    client: AsyncClient, db: Database
) -> None:
    await silence(db, labels={"team": "search"})
    await silence(db, source="pagerduty")
    assert (await ingest(db, alert())).taken[0].outcome is Outcome.OPENED


async def test_open_after_n_occurrences(client: AsyncClient, db: Database) -> None:
    rules = AlertRules(
        rules=[
            Rule(
                name="slow",
                match=Match(key="Disk*"),
                open_after=OpenAfter(occurrences=3, within_seconds=600),
            )
        ]
    )
    outcomes = [(await ingest(db, alert(), rules=rules)).taken[0].outcome for _ in range(4)]
    assert outcomes == [Outcome.PENDING, Outcome.PENDING, Outcome.OPENED, Outcome.COUNTED]
    [incident] = await incidents(db, "DiskFull:abc")
    assert incident.occurrence_count == 4
    assert incident.metadata_["rule"] == "slow"
    async with transaction(db.reader) as session:
        held = list(await session.scalars(select(AlertHold)))
    assert [(h.reason, h.occurrences, h.opened_incident_id) for h in held] == [
        ("pending", 3, incident.id)
    ]


async def test_a_resolve_under_the_threshold_starts_over(client: AsyncClient, db: Database) -> None:
    rules = AlertRules(
        rules=[Rule(name="slow", open_after=OpenAfter(occurrences=2, within_seconds=600))]
    )
    await ingest(db, alert(), rules=rules)
    await ingest(db, alert(signal=Signal.RESOLVED), rules=rules)
    assert (await ingest(db, alert(), rules=rules)).taken[0].outcome is Outcome.PENDING


def downstream(candidate: tuple[str, ...], of: tuple[str, ...]) -> bool:
    """A toy lineage: raw -> model.a -> model.b."""
    order = ["source.raw", "model.a", "model.b"]
    return any(
        order.index(c) > order.index(o) for c in candidate for o in of if c in order and o in order
    )


async def test_a_downstream_failure_joins_the_upstream_incident(
    client: AsyncClient, db: Database
) -> None:
    upstream = alert("source.raw", source=Source.DBT, nodes=("source.raw",))
    below = alert("test.b.not_null", source=Source.DBT, nodes=("model.b",))
    first = (await ingest(db, upstream, downstream=downstream)).taken[0]
    joined = (await ingest(db, below, below, downstream=downstream)).taken
    assert [t.outcome for t in joined] == [Outcome.RELATED, Outcome.RELATED]
    assert joined[0].incident_id == first.incident_id
    assert await incidents(db, "test.b.not_null") == []
    entries = await timeline(client, first.incident_id or 0)
    assert entries[-1]["verb"] == "related"
    shown = (await client.get(f"/api/incidents/{first.incident_id}")).json()
    assert shown["related"] == [
        {
            "kind": "invariant",
            "key": "test.b.not_null",
            "source": "dbt",
            "occurrences": 2,
            "firing": True,
            "first_seen_at": shown["related"][0]["first_seen_at"],
            "last_seen_at": shown["related"][0]["last_seen_at"],
        }
    ]
    # the upstream is fixed: a downstream failure now stands on its own
    await ingest(db, replace(upstream, signal=Signal.RESOLVED))
    assert (await ingest(db, below, downstream=downstream)).taken[0].outcome is Outcome.OPENED


async def test_acknowledged_through_the_source(client: AsyncClient, db: Database) -> None:
    await ingest(db, alert(source=Source.PAGERDUTY))
    taken = await ingest(
        db, alert(signal=Signal.ACKNOWLEDGED, source=Source.PAGERDUTY, actor="pd-user")
    )
    assert taken.taken[0].outcome is Outcome.ACKNOWLEDGED
    [incident] = await incidents(db, "DiskFull:abc")
    assert (incident.status, incident.acknowledged_by) == (IncidentStatus.ACKNOWLEDGED, "pd-user")
    again = await ingest(db, alert(signal=Signal.ACKNOWLEDGED, source=Source.PAGERDUTY))
    assert again.taken[0].outcome is Outcome.IGNORED
    # a source acknowledges only what it opened
    await ingest(db, alert("Other:1"))
    other = await ingest(db, alert("Other:1", signal=Signal.ACKNOWLEDGED, source=Source.PAGERDUTY))
    assert other.taken[0].outcome is Outcome.IGNORED
    [untouched] = await incidents(db, "Other:1")
    assert untouched.status is IncidentStatus.OPEN


async def test_twenty_racing_requests_open_one_incident(client: AsyncClient, db: Database) -> None:
    results = await asyncio.gather(*(ingest(db, alert("Race:1")) for _ in range(20)))
    outcomes = [r.taken[0].outcome for r in results]
    assert outcomes.count(Outcome.OPENED) == 1
    assert outcomes.count(Outcome.COUNTED) == 19
    [incident] = await incidents(db, "Race:1")
    assert incident.occurrence_count == 20


async def test_twenty_racing_silenced_requests_hold_one_alert(
    client: AsyncClient, db: Database
) -> None:
    await silence(db, key="Race:*")
    results = await asyncio.gather(*(ingest(db, alert("Race:2")) for _ in range(20)))
    assert {r.taken[0].outcome for r in results} == {Outcome.SILENCED}
    async with transaction(db.reader) as session:
        held = list(await session.scalars(select(AlertHold)))
    assert [(h.key, h.occurrences) for h in held] == [("Race:2", 20)]


async def test_a_request_of_repeats_only_counts_each_key_once_with_its_worst_severity(
    client: AsyncClient, db: Database
) -> None:
    """On PostgreSQL one statement takes it (models/services/storm_count.py); it writes what
    the exact way writes: the count, the escalation, one timeline row and one event per key."""
    opened = await ingest(db, alert("Storm:a", severity=Severity.SEV3), alert("Storm:b"))
    ids = [t.incident_id for t in opened.taken]
    async with transaction(db.reader) as session:
        before = await session.scalar(select(func.max(Event.id))) or 0
    again = await ingest(
        db,
        alert("Storm:b"),
        alert("Storm:a", severity=Severity.SEV1),
        alert("Storm:a", severity=Severity.SEV2),
    )

    assert [(t.key, t.outcome, t.incident_id) for t in again.taken] == [
        ("Storm:b", Outcome.COUNTED, ids[1]),
        ("Storm:a", Outcome.COUNTED, ids[0]),
        ("Storm:a", Outcome.COUNTED, ids[0]),
    ]
    a, b = (await incidents(db, "Storm:a"))[0], (await incidents(db, "Storm:b"))[0]
    assert (a.occurrence_count, a.severity, b.occurrence_count) == (3, Severity.SEV1, 2)
    assert [e["notes"] for e in await timeline(client, a.id)][1:] == [
        "occurrences 2-3 (escalated to sev1)"
    ]
    assert [e["notes"] for e in await timeline(client, b.id)][1:] == ["occurrence 2"]
    async with transaction(db.reader) as session:
        events = list(await session.scalars(select(Event).where(Event.id > before)))
    assert [(e.type, e.incident_id) for e in events] == [
        ("incident_updated", ids[1]),  # in the order the keys came
        ("incident_updated", ids[0]),
    ]
    updated = isoformat(a.updated_at)
    assert events[1].payload == {
        "id": ids[0],
        "status": "open",
        "change": "recurred",
        "occurrence_count": 3,
        "severity": "sev1",
        "last_seen_at": updated,
        "updated_at": updated,
    }
    assert "severity" not in events[0].payload


async def test_a_request_of_repeats_and_one_new_key_opens_it_and_counts_the_rest(
    client: AsyncClient, db: Database
) -> None:
    await ingest(db, alert("Storm:c"))
    taken = await ingest(db, alert("Storm:c"), alert("Storm:new"), alert("Storm:c"))
    assert [t.outcome for t in taken.taken] == [Outcome.COUNTED, Outcome.OPENED, Outcome.COUNTED]
    assert [i.occurrence_count for i in await incidents(db, "Storm:c")] == [3]
    assert [i.occurrence_count for i in await incidents(db, "Storm:new")] == [1]


async def test_twenty_racing_storms_over_the_same_keys_count_every_alert_once(
    client: AsyncClient, db: Database
) -> None:
    """Each request lists the keys in another order: the rows are locked in key order, so
    none waits on another in a cycle."""
    keys = [f"Herd:{n}" for n in range(10)]
    await ingest(db, *(alert(key) for key in keys))
    requests = [keys[n % 10 :] + keys[: n % 10] for n in range(20)]
    requests = [group if n % 2 else list(reversed(group)) for n, group in enumerate(requests)]
    results = await asyncio.gather(
        *(ingest(db, *(alert(key) for key in group)) for group in requests)
    )
    assert all(r.outcomes() == {Outcome.COUNTED: 10} for r in results)
    async with transaction(db.reader) as session:
        counts = await session.scalars(
            select(Incident.occurrence_count).where(Incident.key.like("Herd:%"))
        )
        assert sorted(counts) == [21] * 10
