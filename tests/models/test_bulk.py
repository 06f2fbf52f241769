"""insert_all: a batch of rows in one statement, back as the session's objects, in order."""

from datetime import UTC, datetime, timedelta

from httpx import AsyncClient

from models.bulk import insert_all
from models.db import Database, transaction
from models.enums import IncidentKind, IncidentStatus, Severity
from models.incident import Incident

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def row(n: int) -> dict[str, object]:
    return {
        "kind": IncidentKind.INVARIANT, "key": f"BULK_{n}", "severity": Severity.SEV3,
        "summary": f"number {n}", "details": {"n": n, "nested": [n, {"deep": None}]},
        "playbooks": ["rerun_eval", "clear_cache"][: n % 3],  # lists of 0, 1 and 2 names
        "issue_url": None if n % 2 else f"https://example.test/{n}",
        "metadata_": {"check_id": f"c{n}"}, "last_seen_at": T0 + timedelta(seconds=n),
    }  # fmt: skip


async def test_rows_come_back_in_order_with_json_lists_nulls_and_defaults(
    client: AsyncClient, db: Database
) -> None:
    rows = [row(n) for n in range(30)]
    async with transaction(db.writer) as session:
        inserted = await insert_all(session, Incident, rows)
        inserted[3].note(actor="test", verb="comment", notes="still tracked", at=T0)
        ids = [incident.id for incident in inserted]

    assert ids == sorted(ids)
    async with transaction(db.reader) as session:
        for n, incident_id in enumerate(ids):
            stored = await session.get_one(Incident, incident_id)
            assert {key: getattr(stored, key) for key in rows[n]} == rows[n]
            assert stored.status is IncidentStatus.OPEN  # the columns' defaults are filled in
            assert (stored.occurrence_count, stored.reopen_count) == (1, 0)
            assert stored.created_at.tzinfo is not None
    timeline = (await client.get(f"/api/incidents/{ids[3]}/timeline")).json()["entries"]
    assert [entry["verb"] for entry in timeline] == ["comment"]  # changes after the insert


async def test_nothing_to_insert_is_no_statement(client: AsyncClient, db: Database) -> None:
    async with transaction(db.writer) as session:
        assert await insert_all(session, Incident, []) == []
