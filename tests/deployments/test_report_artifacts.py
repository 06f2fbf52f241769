"""Which incident reports are due on Prefect, that a publication marks them, and what the
publisher sends, on both databases through the real app; Prefect is a recording stand-in here,
or an address where nothing listens (tests/flows/test_report_artifacts.py uses the real one)."""

import asyncio
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from httpx import AsyncClient
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.actions import ArtifactCreate
from sqlalchemy import func, select

from deployments import report_artifacts
from deployments.report_artifacts import PrefectUnavailable, Publisher, report_key
from models.base import utcnow
from models.db import Database, transaction
from models.incident import TimelineEntry
from models.report import ReportArtifact
from models.services.report_artifacts import due_reports, mark_published, publication
from models.settings import Settings
from tests.factories import apply_verb, create_incident
from tests.fakes import RecordingLauncher

RUN = {"task_id": "task-1", "models": ["inbox_emails"], "full_refresh": False}


@dataclass
class Prefect:
    """Takes artifacts, or raises what it is told to, first."""

    created: list[ArtifactCreate] = field(default_factory=list)
    failures: list[Exception] = field(default_factory=list)

    async def create_artifact(self, artifact: ArtifactCreate) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.created.append(artifact)


async def action(client: AsyncClient, incident_id: int, verb: str = "execute") -> dict[str, Any]:
    base = f"/api/playbooks/incidents/{incident_id}/actions"
    answer = await client.post(f"{base}/{verb}", json={"action_type": "rerun_dbt", "params": RUN})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def incident_in(client: AsyncClient, status: str, *, executed: int = 1) -> int:
    """An incident with `executed` action runs, then moved to `status`."""
    incident = await create_incident(client, playbooks=["rerun_dbt"])
    for _ in range(executed):
        await action(client, incident["id"])
    for verb in {"open": [], "resolved": ["acknowledge", "mitigate", "resolve"],
                 "closed": ["acknowledge", "mitigate", "resolve", "close"]}[status]:  # fmt: skip
        assert (await apply_verb(client, incident["id"], verb)).status_code == 200
    return int(incident["id"])


async def save_report(client: AsyncClient, incident_id: int, root_cause: str) -> None:
    answer = await client.put(
        f"/api/incidents/{incident_id}/report",
        json={"root_cause": root_cause, "follow_ups": "- pin the schedule"},
    )
    assert answer.status_code == 200, answer.text


async def due(db: Database) -> list[int]:
    async with transaction(db.reader) as session:
        return await due_reports(session, limit=100)


async def newest_entry(db: Database, incident_id: int) -> int:
    async with transaction(db.reader) as session:
        newest = await session.scalar(
            select(func.max(TimelineEntry.id)).where(TimelineEntry.incident_id == incident_id)
        )
    assert newest is not None
    return int(newest)


async def marks(db: Database) -> dict[int, tuple[int, str]]:
    async with transaction(db.reader) as session:
        rows = await session.scalars(select(ReportArtifact))
        return {row.incident_id: (row.entry_id, row.flow_run_id) for row in rows}


@pytest.fixture
def publisher(
    db: Database, settings: Settings, client: AsyncClient, launcher: RecordingLauncher
) -> tuple[Publisher, Prefect]:
    prefect = Prefect()
    return Publisher(db, settings, prefect), prefect


async def test_due_are_settled_or_written_incidents_with_an_action_run(
    client: AsyncClient, db: Database, launcher: RecordingLauncher
) -> None:
    resolved = await incident_in(client, "resolved")
    closed = await incident_in(client, "closed")
    written = await incident_in(client, "open")
    await save_report(client, written, "A paused schedule")
    await incident_in(client, "open")  # still open, nothing written
    await incident_in(client, "resolved", executed=0)  # no action run to show it on
    dry_only = await create_incident(client, playbooks=["rerun_dbt"])
    await action(client, dry_only["id"], "dry-run")  # a dry-run has no flow run
    for verb in ("acknowledge", "mitigate", "resolve"):
        assert (await apply_verb(client, dry_only["id"], verb)).status_code == 200

    assert await due(db) == [resolved, closed, written]
    async with transaction(db.reader) as session:
        assert await due_reports(session, limit=2) == [resolved, closed]  # oldest first
        assert await due_reports(session, limit=100, skip=frozenset({closed})) == [
            resolved,
            written,
        ]


async def test_a_publication_marks_it_until_the_timeline_moves_on(
    client: AsyncClient, db: Database, launcher: RecordingLauncher
) -> None:
    incident_id = await incident_in(client, "resolved")
    async with transaction(db.reader) as session:
        found = await publication(session, incident_id, utcnow())
    assert found is not None
    assert found.entry_id == await newest_entry(db, incident_id)
    assert [found.flow_run_id] == [a.flow_run_id for a in found.facts.actions]

    async with transaction(db.writer) as session:
        await mark_published(
            session, incident_id, entry_id=found.entry_id, flow_run_id=found.flow_run_id,
            at=utcnow(),
        )  # fmt: skip
    assert await due(db) == []
    assert (await marks(db))[incident_id] == (found.entry_id, found.flow_run_id)

    assert (await apply_verb(client, incident_id, "close")).status_code == 200
    assert await due(db) == [incident_id]
    await save_report(client, incident_id, "A paused schedule")  # closed and written: once
    assert await due(db) == [incident_id]

    newest = await newest_entry(db, incident_id)
    async with transaction(db.writer) as session:
        await mark_published(
            session, incident_id, entry_id=newest, flow_run_id=found.flow_run_id, at=utcnow()
        )
    async with transaction(db.writer) as session:  # a slower process's older publication
        await mark_published(
            session, incident_id, entry_id=found.entry_id, flow_run_id="older", at=utcnow()
        )
    assert await due(db) == []
    assert (await marks(db))[incident_id] == (newest, found.flow_run_id)


async def test_the_report_goes_on_the_last_action_run(
    client: AsyncClient, db: Database, launcher: RecordingLauncher
) -> None:
    incident_id = await incident_in(client, "resolved", executed=2)
    history = await client.get(f"/api/playbooks/incidents/{incident_id}/actions/history")
    runs = [a["flow_run_id"] for a in history.json()["actions"]]
    assert len(set(runs)) == 2

    async with transaction(db.reader) as session:
        found = await publication(session, incident_id, utcnow())

    assert found is not None
    assert found.flow_run_id == runs[-1]


async def test_the_publisher_sends_the_api_s_markdown_and_each_new_version(
    client: AsyncClient, db: Database, publisher: tuple[Publisher, Prefect]
) -> None:
    publishing, prefect = publisher
    incident_id = await incident_in(client, "resolved")
    history = await client.get(f"/api/playbooks/incidents/{incident_id}/actions/history")
    run = history.json()["actions"][-1]["flow_run_id"]

    assert await publishing.pass_once() == 1
    assert await publishing.pass_once() == 0  # published: nothing due

    [first] = prefect.created
    text = str(first.data)
    assert (first.key, first.type, str(first.flow_run_id)) == (report_key(incident_id), "markdown",
                                                               run)  # fmt: skip
    api = (await client.get(f"/api/incidents/{incident_id}/report")).text
    generated = "_Generated by Intervene at"
    assert text.split(generated)[0] == api.split(generated)[0]
    assert "**Status** resolved" in text
    assert first.description == f"The report of incident {incident_id} (resolved)"
    assert await due(db) == []

    await save_report(client, incident_id, "The dbt schedule was paused")
    assert await publishing.pass_once() == 1
    second = prefect.created[-1]
    assert second.key == first.key
    assert "## Root cause\n\nThe dbt schedule was paused\n" in str(second.data)
    assert second.description == f"The report of incident {incident_id} (resolved, version 1)"


async def test_with_prefect_unreachable_the_report_stays_due_and_nothing_is_marked(
    client: AsyncClient, db: Database, settings: Settings, launcher: RecordingLauncher
) -> None:
    incident_id = await incident_in(client, "resolved")
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]  # closed again: connections are refused
    async with PrefectClient(f"http://127.0.0.1:{port}/api") as prefect:
        publishing = Publisher(db, settings, prefect)
        with pytest.raises(PrefectUnavailable, match=f"incident {incident_id} was not published"):
            await publishing.pass_once()

    assert await due(db) == [incident_id]
    assert await marks(db) == {}


async def test_a_prefect_that_does_not_answer_holds_a_pass_no_longer_than_its_limit(
    client: AsyncClient,
    db: Database,
    settings: Settings,
    launcher: RecordingLauncher,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    incident_id = await incident_in(client, "resolved")
    monkeypatch.setattr(report_artifacts, "PUBLISH_SECONDS", 0.5)
    with socket.socket() as silent:  # accepts connections and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        async with PrefectClient(f"http://127.0.0.1:{silent.getsockname()[1]}/api") as prefect:
            publishing = Publisher(db, settings, prefect)
            with pytest.raises(PrefectUnavailable, match=r"did not answer within 0\.5 s"):
                await publishing.pass_once()

    assert await due(db) == [incident_id]
    assert await marks(db) == {}


async def test_the_loop_outlives_an_outage_and_publishes_once_prefect_is_back(
    client: AsyncClient, db: Database, publisher: tuple[Publisher, Prefect]
) -> None:
    publishing, prefect = publisher
    incident_id = await incident_in(client, "resolved")
    refused = httpx.ConnectError("All connection attempts failed")
    prefect.failures = [refused, refused, httpx.ReadTimeout("no answer")]

    loop = asyncio.create_task(report_artifacts.run(publishing, poll=0.01))
    try:
        deadline = time.monotonic() + 30
        while incident_id not in await marks(db):
            assert not loop.done(), loop
            assert time.monotonic() < deadline, "never published"
            await asyncio.sleep(0.05)
    finally:
        loop.cancel()
        with pytest.raises(asyncio.CancelledError):
            await loop

    assert prefect.failures == []
    assert [artifact.key for artifact in prefect.created] == [report_key(incident_id)]


async def test_a_report_prefect_refuses_waits_and_holds_up_no_other(
    client: AsyncClient, db: Database, publisher: tuple[Publisher, Prefect]
) -> None:
    publishing, prefect = publisher
    refused_id = await incident_in(client, "resolved")
    other_id = await incident_in(client, "resolved")
    request = httpx.Request("POST", "http://prefect.test/api/artifacts/")
    answer = httpx.Response(422, text="invalid", request=request)
    prefect.failures = [httpx.HTTPStatusError("422", request=request, response=answer)]

    assert await publishing.pass_once() == 1
    assert await publishing.pass_once() == 0  # not tried again at once

    assert [artifact.key for artifact in prefect.created] == [report_key(other_id)]
    assert await due(db) == [refused_id]  # still due: after REFUSED_RETRY, or a restart
    assert list(await marks(db)) == [other_id]
