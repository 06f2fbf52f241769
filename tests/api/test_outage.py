"""Losing the database is 503 `unavailable` with Retry-After, in the envelope, for every request
(it was a 500 `internal_error` while /api/health said 503), and the API answers again once the
database is back."""

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import text
from sqlalchemy.engine import make_url

from api.main import create_app
from deployments.stack import free_port
from models.db import transaction
from models.settings import Settings
from tests.auth import bearer, issue
from tests.databases import (
    ADMIN_URL,
    create_postgres_database,
    drop_postgres_database,
    require_postgres,
)
from tests.factories import incident_body
from tests.fakes import RecordingLauncher
from tests.relay import Relay

SECRET = "hunter2"  # the unreachable database's password: never in an answer


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, (response.request.url, response.text)
    error = response.json()["error"]
    assert error["code"] == "unavailable"
    assert error["message"]
    assert int(response.headers["retry-after"]) >= 1
    assert SECRET not in response.text
    assert "Traceback" not in response.text
    if response.request.url.path != "/api/health":  # the Gate's headers, as on every answer
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-ratelimit-limit"]


async def requests_of_every_kind(http: AsyncClient, incident_id: int) -> list[httpx.Response]:
    return [
        await http.get("/api/incidents"),
        await http.get(f"/api/incidents/{incident_id}"),
        await http.post("/api/incidents", json=incident_body()),
        await http.post(f"/api/incidents/{incident_id}/acknowledge"),
        # a resumed stream reads its position before its 200 (it was a 200 cut short)
        await http.get("/api/sse/events", params={"last_event_id": 5}),
        await http.get("/api/health"),
    ]


@pytest.fixture
def unreachable_url(backend: str, tmp_path: Path) -> str:
    """PostgreSQL on a port nothing listens on; a SQLite "file" that is a directory."""
    if backend == "postgresql":
        return f"postgresql+psycopg://nobody:{SECRET}@127.0.0.1:{free_port()}/nowhere"
    directory = tmp_path / f"{SECRET}.db"
    directory.mkdir()
    return f"sqlite:///{directory}"


@pytest.mark.parametrize("auth", ["enabled", "disabled"])  # fails signing in, or in the route
async def test_a_database_that_cannot_be_reached_is_503_with_retry_after(
    settings: Settings, recording_launcher: RecordingLauncher, unreachable_url: str, auth: str
) -> None:
    unreachable = settings.model_copy(
        update={"database_url": unreachable_url, "auto_migrate": False, "auth": auth}
    )
    app = create_app(unreachable, launcher=recording_launcher)
    async with app.router.lifespan_context(app):
        transport = ASGITransport(app=app)
        async with AsyncClient(transport=transport, base_url="http://t",
                               headers=bearer("ivt_" + "x" * 43)) as http:  # fmt: skip
            answers = await requests_of_every_kind(http, 1)

    for response in answers:
        assert_unavailable(response)


@pytest.fixture
async def relayed_app(
    settings: Settings, recording_launcher: RecordingLauncher
) -> AsyncIterator[tuple[FastAPI, Relay]]:
    """The app on a PostgreSQL database of its own, reached through a relay the test can stop."""
    require_postgres()
    url = create_postgres_database()
    admin = make_url(ADMIN_URL)
    relay = Relay(admin.host or "127.0.0.1", admin.port or 5432)
    await relay.start()
    relayed = make_url(url).set(host="127.0.0.1", port=relay.port)
    app = create_app(
        settings.model_copy(update={"database_url": relayed.render_as_string(hide_password=False)}),
        launcher=recording_launcher,
    )
    try:
        async with app.router.lifespan_context(app):
            yield app, relay
    finally:
        await relay.stop()
        drop_postgres_database(url)


@pytest.mark.postgresql
async def test_postgresql_going_away_mid_traffic_is_503_until_it_is_back(
    relayed_app: tuple[FastAPI, Relay],
) -> None:
    app, relay = relayed_app
    headers = bearer(await issue(app.state.db))
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t",
                           headers=headers) as http:  # fmt: skip
        created = await http.post("/api/incidents", json=incident_body())
        assert created.status_code == 201
        incident_id = created.json()["id"]
        assert (await http.get("/api/incidents")).status_code == 200

        await relay.stop()  # the server is gone, its connections with it
        during = await requests_of_every_kind(http, incident_id)
        await relay.start()
        after = await http.get(f"/api/incidents/{incident_id}")
        acknowledged = await http.post(f"/api/incidents/{incident_id}/acknowledge")

    for response in during:
        assert_unavailable(response)
    assert after.status_code == 200
    assert after.json()["status"] == "open"  # the acknowledge answered 503 did nothing
    assert acknowledged.status_code == 200


async def test_a_database_error_that_is_no_outage_stays_a_500(
    settings: Settings,
    recording_launcher: RecordingLauncher,
    fresh_database_url: Callable[[], str],
    backend: str,
) -> None:
    """A missing table (SQLite says so with an OperationalError too) is a fault, not an outage:
    the logged 500, never a 503 that tells clients to try again."""
    app = create_app(
        settings.model_copy(update={"database_url": fresh_database_url()}),
        launcher=recording_launcher,
    )
    async with app.router.lifespan_context(app):
        headers = bearer(await issue(app.state.db))
        async with transaction(app.state.db.writer) as session:
            cascade = " CASCADE" if backend == "postgresql" else ""
            await session.execute(text(f"DROP TABLE incident_timeline{cascade}"))
        transport = ASGITransport(app=app, raise_app_exceptions=False)
        async with AsyncClient(transport=transport, base_url="http://t", headers=headers) as http:
            response = await http.post("/api/incidents", json=incident_body())

    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert "retry-after" not in response.headers
