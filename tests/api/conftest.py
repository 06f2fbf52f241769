"""Real uvicorn processes for the streaming tests (the ASGI transport does not stream) and the
fuzzer, running tests/api/live_app.py (the app with the recording launcher), and the strict app
(default approval rules) with clients signed in as someone with a role."""

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from api.main import create_app
from deployments.stack import free_port, start, stop, wait_healthy
from models.enums import Role
from models.settings import Settings
from tests.auth import bearer, issue, issue_at
from tests.databases import drop_database, new_database
from tests.fakes import RecordingLauncher

LIVE_SETTINGS = {
    "INTERVENE_SSE_HEARTBEAT_SECONDS": "1",
    "INTERVENE_SSE_QUEUE_SIZE": "50",
    "INTERVENE_SSE_SEND_TIMEOUT_SECONDS": "5",
    "INTERVENE_RATE_LIMIT": "1000000/hour",
}


@dataclass
class LiveServer:
    url: str
    database_url: str
    process: subprocess.Popen[bytes]
    token: str
    log: Path | None = None  # what the process wrote

    @property
    def auth(self) -> dict[str, str]:
        return bearer(self.token)


@pytest.fixture(scope="module")
def sse_database(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = new_database(backend, tmp_path_factory.mktemp("sse"))
    yield url
    drop_database(url)


@pytest.fixture(scope="module")
def start_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., LiveServer]]:
    servers: list[LiveServer] = []
    logs = tmp_path_factory.mktemp("live-logs")

    def launch(database_url: str, *, cli: bool = False, **settings: str) -> LiveServer:
        """uvicorn on the app; with `cli`, `intervene api` itself (uvicorn as the CLI starts
        it, JSON log lines)."""
        port = free_port()
        env = os.environ | LIVE_SETTINGS | settings | {"INTERVENE_DATABASE_URL": database_url}
        command = [
            sys.executable, "-m", "uvicorn", "tests.api.live_app:create_app", "--factory",
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
        ]  # fmt: skip
        if cli:
            env = {"INTERVENE_LOG_FORMAT": "json"} | env
            command = [sys.executable, "-m", "intervene_cli", "api", "--port", str(port)]
        log = Path(logs) / f"uvicorn-{port}.log"
        process = start(command, env, log)
        server = LiveServer(f"http://127.0.0.1:{port}", database_url, process, "", log)
        servers.append(server)
        wait_healthy(f"{server.url}/api/health", process, seconds=60)  # migrated by now
        with ThreadPoolExecutor(1) as pool:  # async tests call this with their loop running
            server.token = pool.submit(asyncio.run, issue_at(database_url)).result()
        return server

    yield launch
    stop([s.process for s in servers])


@pytest.fixture(scope="module")
def live(sse_database: str, start_server: Callable[..., LiveServer]) -> LiveServer:
    return start_server(sse_database)


@pytest.fixture
async def strict_app(
    settings: Settings, recording_launcher: RecordingLauncher
) -> AsyncIterator[FastAPI]:
    """The defaults: separation of duties for every action that needs approval."""
    strict = settings.model_copy(update={"self_approval": [], "approval_ttl_seconds": 600})
    app = create_app(strict, launcher=recording_launcher)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def as_role(
    strict_app: FastAPI, client: AsyncClient
) -> AsyncIterator[Callable[[str, Role], Awaitable[AsyncClient]]]:
    """Clients of the strict app signed in as someone with a role (`client` empties the
    tables afterwards)."""
    opened: list[AsyncClient] = []

    async def make(name: str, role: Role) -> AsyncClient:
        secret = await issue(strict_app.state.db, name, role)
        http = AsyncClient(
            transport=ASGITransport(app=strict_app), base_url="http://test", headers=bearer(secret)
        )
        opened.append(http)
        return http

    yield make
    for http in opened:
        await http.aclose()


@pytest.fixture
async def failing_client(settings: Settings) -> AsyncIterator[AsyncClient]:
    """An app with one route, /api/explode (GET or POST), that fails unexpectedly."""
    app: FastAPI = create_app(settings)

    @app.api_route("/api/explode", methods=["GET", "POST"])
    async def explode() -> None:
        raise RuntimeError("secret connection string postgres://admin:hunter2@db")

    transport = ASGITransport(app=app, raise_app_exceptions=False)
    async with AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


@pytest.fixture
def limited_to(
    settings: Settings, recording_launcher: RecordingLauncher, client: AsyncClient
) -> Callable[[str], AbstractAsyncContextManager[FastAPI]]:
    """An app of its own, started, allowing `rate_limit` requests per address (`client` empties
    the tables after)."""

    @asynccontextmanager
    async def started(rate_limit: str) -> AsyncIterator[FastAPI]:
        app = create_app(
            settings.model_copy(update={"rate_limit": rate_limit}), launcher=recording_launcher
        )
        async with app.router.lifespan_context(app):
            yield app

    return started
