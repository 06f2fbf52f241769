"""Real uvicorn processes for the streaming tests (the ASGI transport does not stream)."""

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from deployments.stack import free_port, start, stop, wait_healthy
from tests.auth import bearer, issue_at
from tests.databases import drop_database, new_database

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

    def launch(database_url: str, **settings: str) -> LiveServer:
        port = free_port()
        env = os.environ | LIVE_SETTINGS | settings | {"INTERVENE_DATABASE_URL": database_url}
        command = [
            sys.executable, "-m", "uvicorn", "api.main:create_app", "--factory",
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
        ]  # fmt: skip
        process = start(command, env, Path(logs) / f"uvicorn-{port}.log")
        servers.append(server := LiveServer(f"http://127.0.0.1:{port}", database_url, process, ""))
        wait_healthy(f"{server.url}/api/health", process, seconds=60)  # migrated by now
        with ThreadPoolExecutor(1) as pool:  # async tests call this with their loop running
            server.token = pool.submit(asyncio.run, issue_at(database_url)).result()
        return server

    yield launch
    stop([s.process for s in servers])


@pytest.fixture(scope="module")
def live(sse_database: str, start_server: Callable[..., LiveServer]) -> LiveServer:
    return start_server(sse_database)
