"""The audit log beyond the answered request: what the Gate refuses is recorded too, and an
entry that cannot be written leaves the answer alone but is logged and counted."""

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import select, text
from starlette.types import Message, Receive, Scope, Send

from api.main import create_app
from models.access import AuditEntry
from models.db import Database, connect, transaction
from models.enums import Role
from models.settings import Settings
from tests.api.test_observability import scrape, value
from tests.auth import TESTER, bearer, issue
from tests.factories import incident_body
from tests.fakes import RecordingLauncher


async def entries(database: Database) -> list[AuditEntry]:
    async with transaction(database.reader) as session:
        return list(await session.scalars(select(AuditEntry).order_by(AuditEntry.id)))


@pytest.fixture
async def limited_app(
    limited_to: Callable[[str], AbstractAsyncContextManager[FastAPI]],
) -> AsyncIterator[FastAPI]:
    """4 requests a minute per address."""
    async with limited_to("4/minute") as app:
        yield app


async def test_requests_the_gate_refuses_are_audited_naming_who_if_known_429s_only_counted(
    limited_app: FastAPI, settings: Settings
) -> None:
    database: Database = limited_app.state.db
    known = bearer(await issue(database))
    never_used = bearer(await issue(database, "stranger@x.io", Role.RESPONDER))
    transport = ASGITransport(app=limited_app)
    oversized = b"x" * (settings.max_body_bytes + 1)
    json_type = {"Content-Type": "application/json"}
    async with AsyncClient(transport=transport, base_url="http://t", headers=known) as http:
        created = await http.post("/api/incidents", json=incident_body())
        too_large = await http.post("/api/incidents", content=oversized, headers=json_type)
        nul = await http.post("/api/incidents/1%00/resolve")
        stranger = await http.post("/api/incidents", content=oversized,
                                   headers=json_type | never_used)  # fmt: skip
        limited = await http.post("/api/incidents", json=incident_body())  # the 5th
        read = await http.get("/api/incidents")

    statuses = [r.status_code for r in (created, too_large, nul, stranger, limited, read)]
    assert statuses == [201, 413, 400, 413, 429, 429]
    recorded = [(e.principal, e.role, e.client, e.method, e.path, e.status)
                for e in await entries(database)]  # fmt: skip
    assert recorded == [
        (TESTER, "admin", "127.0.0.1", "POST", "/api/incidents", 201),
        (TESTER, "admin", "127.0.0.1", "POST", "/api/incidents", 413),
        (TESTER, "admin", "127.0.0.1", "POST", "/api/incidents/1\\0/resolve", 400),
        (None, None, "127.0.0.1", "POST", "/api/incidents", 413),  # never authenticated here
    ]  # the 429s: counted, not written (a flood held off must not become database writes)
    refusals = limited_app.state.metrics.registry.get_sample_value(
        "intervene_rate_limit_refusals_total", {"limit": "client_address"}
    )
    assert refusals == 2


@pytest.fixture
async def no_audit_table(
    settings: Settings,
    recording_launcher: RecordingLauncher,
    fresh_database_url: Callable[[], str],
) -> AsyncIterator[AsyncClient]:
    """The app on a database of its own whose audit_log table is gone: every write fails."""
    app = create_app(
        settings.model_copy(update={"database_url": fresh_database_url()}),
        launcher=recording_launcher,
    )
    async with app.router.lifespan_context(app):
        headers = bearer(await issue(app.state.db))
        async with transaction(app.state.db.writer) as session:
            await session.execute(text("DROP TABLE audit_log"))
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t",
                               headers=headers) as http:  # fmt: skip
            yield http


async def test_a_lost_audit_entry_keeps_the_answer_and_is_logged_and_counted(
    no_audit_table: AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    before = await scrape(no_audit_table)

    created = await no_audit_table.post("/api/incidents", json=incident_body())
    after = await scrape(no_audit_table)

    assert created.status_code == 201
    assert (await no_audit_table.get(f"/api/incidents/{created.json()['id']}")).status_code == 200
    assert value(before, "intervene_audit_write_failures_total") == 0
    assert value(after, "intervene_audit_write_failures_total") == 1
    (lost,) = [r for r in caplog.records if "AUDIT ENTRY LOST" in r.getMessage()]
    assert lost.levelname == "ERROR"
    assert "POST /api/incidents answered 201" in lost.getMessage()


async def test_a_new_tokens_answer_is_never_stored(client: AsyncClient) -> None:
    created = await client.post("/api/tokens", json={"name": "ci-bot", "role": "viewer"})

    assert created.status_code == 201
    assert created.json()["token"].startswith("ivt_")
    assert created.headers["cache-control"] == "no-store"


async def test_an_answered_change_is_in_the_audit_log_before_its_first_byte(
    app: FastAPI, client: AsyncClient, settings: Settings
) -> None:
    """A process killed right after answering must not lose the entry: at the moment each
    answer starts, its entry is read from another connection (another engine)."""
    elsewhere = connect(settings.database_url, pool_size=1, max_overflow=0)
    seen: dict[str, tuple[int, list[tuple[str, str, int]]]] = {}

    async def watched(scope: Scope, receive: Receive, send: Send) -> None:
        async def send_watched(message: Message) -> None:
            if message["type"] == "http.response.start":
                request_id = dict(scope["headers"])[b"x-request-id"].decode()
                async with transaction(elsewhere.reader) as session:
                    rows = await session.execute(
                        select(AuditEntry.method, AuditEntry.path, AuditEntry.status)
                        .where(AuditEntry.request_id == request_id)
                    )  # fmt: skip
                    seen[request_id] = (message["status"], [tuple(row) for row in rows])
            await send(message)

        await app(scope, receive, send_watched)

    try:
        async with AsyncClient(transport=ASGITransport(app=watched), base_url="http://t",
                               headers=client.headers) as http:  # fmt: skip
            created = await http.post("/api/incidents", json=incident_body(),
                                      headers={"X-Request-ID": "audit-create"})  # fmt: skip
            path = f"/api/incidents/{created.json()['id']}/acknowledge"
            await http.post(path, headers={"X-Request-ID": "audit-ack"})
            await http.post(path, headers={"X-Request-ID": "audit-ack-again"})  # refused: 400
    finally:
        await elsewhere.dispose()

    assert seen == {
        "audit-create": (201, [("POST", "/api/incidents", 201)]),
        "audit-ack": (200, [("POST", path, 200)]),
        "audit-ack-again": (400, [("POST", path, 400)]),
    }
