"""GET /api/sse/events over a real uvicorn: order, payloads, resume, fan-out, slow clients."""

import asyncio
import itertools
import json
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import insert

from models.base import utcnow
from models.db import connect, transaction
from models.enums import ActionStatus
from models.event import Event, EventRetention
from models.services.actions import NewAction, advance_action, record_action
from tests.api.conftest import LiveServer
from tests.factories import incident_body
from tests.sse_client import open_stream

ROOT = Path(__file__).resolve().parents[2]


async def post(server: LiveServer, path: str, body: dict[str, Any] | None = None) -> Any:
    async with httpx.AsyncClient(base_url=server.url, timeout=30, headers=server.auth) as http:
        response = await http.post(path, json=body or {})
    assert response.status_code < 300, response.text
    return response.json()


async def new_incident(server: LiveServer, **overrides: Any) -> dict[str, Any]:
    result: dict[str, Any] = await post(server, "/api/incidents", incident_body(**overrides))
    return result


async def test_connected_comes_first_with_retry_and_proxy_headers(live: LiveServer) -> None:
    async with open_stream(live) as stream:
        first = await stream.next()
        headers = stream.response.headers

    assert first.event == "connected"
    assert set(first.data) == {"subscriber_id", "timestamp"}
    assert first.data["timestamp"].endswith("Z")
    assert first.retry == 3000
    assert first.id is None
    assert headers["content-type"].startswith("text/event-stream")
    assert headers["cache-control"] == "no-cache"
    assert headers["x-accel-buffering"] == "no"


async def test_events_written_while_no_one_listens_are_not_replayed(live: LiveServer) -> None:
    """With no client the reader reads nothing (not even the newest id): a client that connects
    later starts from the newest event, and gets what comes after it connected, nothing
    before."""
    while (await health(live))["sse"]["subscribers"]:  # the streams of earlier tests close
        await asyncio.sleep(0.05)
    before = (await health(live))["sse"]["position"]
    unheard = await new_incident(live)
    assert (await health(live))["sse"]["position"] == before  # nothing was read for no one
    async with open_stream(live) as stream:
        await stream.next()  # connected
        heard = await new_incident(live)
        [message] = await stream.take(1)

    assert heard["id"] != unheard["id"]
    assert (message.event, message.data["id"]) == ("incident_created", heard["id"])


async def test_a_full_lifecycle_streams_in_commit_order(live: LiveServer) -> None:
    async with open_stream(live) as stream:
        await stream.next()  # connected
        incident = await new_incident(live, severity="sev1")
        base = f"/api/incidents/{incident['id']}"
        await post(live, f"{base}/acknowledge", {"acknowledged_by": "engineer@example.com"})
        for verb in ("mitigate", "resolve", "close"):
            await post(live, f"{base}/{verb}")
        messages = await stream.take(5)

    assert [m.event for m in messages] == ["incident_created"] + ["incident_updated"] * 4
    assert [m.data.get("change") for m in messages[1:]] == [
        "acknowledged", "mitigated", "resolved", "closed",
    ]  # fmt: skip
    ids = [m.id for m in messages]
    assert ids == sorted(ids)
    assert len(set(ids)) == 5
    created = messages[0].data
    assert {k: created[k] for k in ("id", "kind", "severity", "status", "summary")} == {
        "id": incident["id"], "kind": "invariant", "severity": "sev1", "status": "open",
        "summary": incident["summary"],
    }  # fmt: skip
    assert created["created_at"] == incident["created_at"]
    assert messages[1].data["acknowledged_by"] == "engineer@example.com"
    assert messages[1].data["status"] == "acknowledged"
    assert messages[4].data["status"] == "closed"


async def test_events_written_by_another_process_arrive(live: LiveServer) -> None:
    incident = await new_incident(live)
    database = connect(live.database_url)  # this test process plays the worker
    try:
        path = f"/api/sse/events?incident_id={incident['id']}&types=action_executed"
        async with open_stream(live, path) as s:
            await s.next()
            started = time.monotonic()
            async with transaction(database.writer) as session:
                action = await record_action(
                    session,
                    new=NewAction(
                        incident_id=incident["id"], action_type="rerun_dbt", params={},
                        dry_run=False, requested_by="test", message="m", details={}, changes=[],
                        estimated_duration=1, estimated_cost=0.0, requires_approval=False,
                    ),
                    status=ActionStatus.PENDING,
                    at=utcnow(),
                )  # fmt: skip
            for status in (ActionStatus.RUNNING, ActionStatus.SUCCESS):
                async with transaction(database.writer) as session:
                    await advance_action(session, action_id=action.id, status=status, at=utcnow())
            messages = await s.take(2)
            elapsed = time.monotonic() - started
    finally:
        await database.dispose()

    assert [(m.event, m.data["status"]) for m in messages] == [
        ("action_executed", "running"),
        ("action_executed", "success"),
    ]
    assert messages[0].data["action_id"] == action.id
    assert messages[0].data["incident_id"] == incident["id"]
    assert messages[0].data["action_type"] == "rerun_dbt"
    assert elapsed < 5


@pytest.mark.parametrize("via", ["header", "query"])
async def test_resume_replays_exactly_the_missed_events(live: LiveServer, via: str) -> None:
    incident = await new_incident(live)
    path = f"/api/sse/events?incident_id={incident['id']}&types=incident_updated"
    base = f"/api/incidents/{incident['id']}"
    async with open_stream(live, path) as stream:
        await stream.next()
        await post(live, f"{base}/assign", {"assigned_to": "a@x.io"})
        seen = await stream.next()
    missed = []
    for who in ("b@x.io", "c@x.io", "d@x.io"):
        missed.append(await post(live, f"{base}/assign", {"assigned_to": who}))

    headers = {"Last-Event-ID": str(seen.id)} if via == "header" else None
    resume = path if via == "header" else f"{path}&last_event_id={seen.id}"
    async with open_stream(live, resume, headers=headers) as stream:
        assert (await stream.next()).event == "connected"
        replayed = await stream.take(3)
        await post(live, f"{base}/assign", {"assigned_to": "e@x.io"})
        live_one = await stream.next()

    assert [m.data["assigned_to"] for m in replayed] == ["b@x.io", "c@x.io", "d@x.io"]
    ids = [m.id for m in replayed] + [live_one.id]
    assert ids == sorted(set(ids))
    assert replayed[0].id is not None
    assert seen.id is not None
    assert replayed[0].id > seen.id
    assert live_one.data["assigned_to"] == "e@x.io"


async def test_type_filter(live: LiveServer) -> None:
    async with open_stream(live, "/api/sse/events?types=incident_created") as stream:
        await stream.next()
        incident = await new_incident(live)
        await post(live, f"/api/incidents/{incident['id']}/resolve")
        other = await new_incident(live)
        messages = await stream.take(2)

    assert [(m.event, m.data["id"]) for m in messages] == [
        ("incident_created", incident["id"]),
        ("incident_created", other["id"]),
    ]


async def test_bad_stream_parameters_are_errors_in_the_envelope(live: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live.url, headers=live.auth) as http:
        unknown = await http.get("/api/sse/events?types=incident_created,gossip")
        bad_id = await http.get("/api/sse/events", headers={"Last-Event-ID": "yesterday"})

    assert unknown.status_code == 400
    assert unknown.json()["error"]["details"]["unknown"] == ["gossip"]
    assert bad_id.status_code == 422
    assert bad_id.json()["error"]["code"] == "validation_error"


async def test_a_position_older_than_retention_gets_a_reset_first(live: LiveServer) -> None:
    incident = await new_incident(live)
    database = connect(live.database_url)
    try:
        async with transaction(database.writer) as session:
            retention = await session.get(EventRetention, 1)
            if retention is None:
                session.add(EventRetention(id=1, pruned_through=1, pruned_at=utcnow()))
            else:
                retention.pruned_through = max(retention.pruned_through, 1)
    finally:
        await database.dispose()
    path = f"/api/sse/events?incident_id={incident['id']}"

    async with open_stream(live, path, headers={"Last-Event-ID": "0"}) as stream:
        await stream.next()
        reset = await stream.next()
        replayed = await stream.next()

    assert reset.event == "reset"
    assert reset.data["reason"] == "pruned"
    assert replayed.event == "incident_created"
    assert replayed.data["id"] == incident["id"]


async def test_heartbeats_arrive_on_time(live: LiveServer) -> None:
    async with open_stream(live) as stream:
        await stream.next()
        arrivals = []
        for _ in range(3):
            message = await stream.next(timeout=5, skip_heartbeats=False)
            assert message.event == "heartbeat"
            assert message.data["timestamp"].endswith("Z")
            arrivals.append(time.monotonic())

    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert all(0.5 < gap < 2.0 for gap in gaps), gaps  # INTERVENE_SSE_HEARTBEAT_SECONDS=1


async def health(server: LiveServer) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.url, headers=server.auth) as http:
        result: dict[str, Any] = (await http.get("/api/health")).json()
    return result


async def test_a_client_that_never_reads_does_not_delay_a_fast_one(live: LiveServer) -> None:
    host, port = live.url.removeprefix("http://").split(":")
    stuck = socket.socket()
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: tiny window
    stuck.connect((host, int(port)))
    stuck.sendall(f"GET /api/sse/events HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    incident = await new_incident(live)
    count, blob = 3000, "x" * 2000  # ~6 MB: far more than the socket buffers hold
    database = connect(live.database_url)  # written by "another process", in one transaction
    try:
        async with open_stream(live, f"/api/sse/events?incident_id={incident['id']}"
                               "&types=incident_updated") as fast:  # fmt: skip
            await fast.next()
            started = time.monotonic()
            async with transaction(database.writer) as session:
                await session.execute(
                    insert(Event),
                    [{"type": "incident_updated", "incident_id": incident["id"],
                      "payload": {"id": incident["id"], "n": n, "blob": blob}}
                     for n in range(count)],
                )  # fmt: skip
            received = [m.data["n"] for m in await fast.take(count, timeout=20)]
            elapsed = time.monotonic() - started
            assert received == list(range(count))
            assert elapsed < 20
            deadline = time.monotonic() + 15
            while (await health(live))["sse"]["subscribers"] > 1:  # the stuck one is dropped
                assert time.monotonic() < deadline, "the stuck client was never dropped"
                await asyncio.sleep(0.2)
    finally:
        stuck.close()
        await database.dispose()


async def test_disconnected_clients_are_cleaned_up(live: LiveServer) -> None:
    before = (await health(live))["sse"]["subscribers"]
    async with open_stream(live) as stream:
        await stream.next()
        assert (await health(live))["sse"]["subscribers"] == before + 1
    deadline = time.monotonic() + 10
    while (await health(live))["sse"]["subscribers"] != before:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)


@pytest.mark.postgresql
async def test_two_api_processes_each_deliver_every_event(
    live: LiveServer, start_server: Callable[..., LiveServer], backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("several API processes share a PostgreSQL database")
    second = start_server(live.database_url)
    async with open_stream(live) as one, open_stream(second) as two:
        await one.next()
        await two.next()
        written = [await new_incident(live), await new_incident(second)]
        got_one = await one.take(2)
        got_two = await two.take(2)

    expected = [i["id"] for i in written]
    assert [m.data["id"] for m in got_one] == expected
    assert [m.data["id"] for m in got_two] == expected
    assert [m.id for m in got_one] == [m.id for m in got_two]


async def test_the_browser_eventsource_client_works(live: LiveServer) -> None:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("Node.js and npm are needed to run the EventSource client")
    js = ROOT / "tests" / "js"
    if not (js / "node_modules" / "eventsource").exists():
        subprocess.run([npm, "install", "--no-audit", "--no-fund", "--silent"], cwd=js,
                       check=True, capture_output=True, timeout=300)  # fmt: skip
    client = await asyncio.create_subprocess_exec(
        node, str(js / "contract_example.mjs"), f"{live.url}/api", live.token,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert client.stdout is not None
    ready = json.loads(await asyncio.wait_for(client.stdout.readline(), 15))
    incident = await new_incident(live)
    await post(live, f"/api/incidents/{incident['id']}/acknowledge", {"acknowledged_by": "js@x"})
    lines = [json.loads(await asyncio.wait_for(client.stdout.readline(), 15)) for _ in range(2)]
    client.kill()
    await client.wait()

    assert ready["event"] == "connected"
    assert "subscriber_id" in ready["data"]
    assert [(line["event"], line["data"]["id"]) for line in lines] == [
        ("incident_created", incident["id"]),
        ("incident_updated", incident["id"]),
    ]
    assert lines[1]["data"]["acknowledged_by"] == "js@x"
