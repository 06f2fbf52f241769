"""A real stack for end-to-end tests: a Prefect server, the demo warehouse, an Intervene worker.

Started once per session (about 20 s): `prefect server start` on a free port with its own
PREFECT_HOME, `intervene warehouse prepare` on a DuckDB file, and `intervene worker`.
The API runs in the test process with the real PrefectLauncher.
"""

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from prefect.settings import PREFECT_API_URL, temporary_settings
from pytest_httpserver import HTTPServer

from api.launcher import PrefectLauncher
from api.main import create_app
from deployments.stack import (
    free_port,
    isolated_environment,
    start,
    start_prefect_server,
    stop,
    wait_for_deployment,
    wait_healthy,
)
from flows.warehouse import DbtProject, prepare_warehouse
from models.settings import Settings, get_settings
from tests.auth import bearer, issue
from tests.databases import create_postgres_database, drop_postgres_database, require_postgres
from tests.fakes import RecordingLauncher

CLI = [sys.executable, "-m", "intervene_cli"]


@dataclass
class Stack:
    env: dict[str, str]
    settings: Settings
    logs: Path
    worker: subprocess.Popen[bytes]

    def start_worker(self) -> None:
        self.worker = start([*CLI, "worker"], self.env, self.logs / "worker.log")

    def kill_worker(self) -> None:
        os.killpg(self.worker.pid, 9)
        self.worker.wait()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    base = tmp_path_factory.mktemp("stack")
    port = free_port()
    env = isolated_environment(base, port) | {
        "INTERVENE_CHECKS_FILE": str(Path(__file__).with_name("e2e_checks.yml")),
        "INTERVENE_HEARTBEAT_SECONDS": "1",
        "INTERVENE_STALE_HEARTBEAT_SECONDS": "4",
        "INTERVENE_RECONCILE_INTERVAL_SECONDS": "1",
    }
    logs = base / "logs"
    logs.mkdir()
    server = start_prefect_server(env, port, logs / "prefect-server.log")
    api_url = env["PREFECT_API_URL"]
    the_stack: Stack | None = None
    try:
        subprocess.run([*CLI, "db", "upgrade"], env=env, check=True, capture_output=True)
        subprocess.run([*CLI, "warehouse", "prepare"], env=env, check=True, capture_output=True)
        wait_healthy(f"{api_url}/health", server, seconds=120)
        settings = Settings(
            database_url=env["INTERVENE_DATABASE_URL"],
            warehouse_url=env["INTERVENE_WAREHOUSE_URL"],
            dbt_target_dir=Path(env["INTERVENE_DBT_TARGET_DIR"]),
            checks_file=Path(env["INTERVENE_CHECKS_FILE"]),
            _env_file=None,  # type: ignore[call-arg]
        )
        the_stack = Stack(env=env, settings=settings, logs=logs, worker=server)
        the_stack.start_worker()
        wait_for_deployment(api_url, "rerun_dbt/intervene")
        yield the_stack
    finally:
        stop([server] + ([the_stack.worker] if the_stack else []))


@pytest.fixture(scope="session")
async def stack_app(stack: Stack) -> AsyncIterator[FastAPI]:
    with temporary_settings({PREFECT_API_URL: stack.env["PREFECT_API_URL"]}):
        app = create_app(stack.settings, launcher=PrefectLauncher())
        async with app.router.lifespan_context(app):
            yield app


@pytest.fixture
async def stack_client(stack_app: FastAPI) -> AsyncIterator[AsyncClient]:
    transport = ASGITransport(app=stack_app)
    headers = bearer(await issue(stack_app.state.db))
    async with AsyncClient(
        transport=transport, base_url="http://test", timeout=180, headers=headers
    ) as http:
        yield http


@pytest.fixture(params=["duckdb", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DbtProject]:
    if request.param == "duckdb":
        url = f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    else:
        require_postgres()
        url = create_postgres_database().replace("postgresql+psycopg", "postgresql") + "?schema=wh"
    project = DbtProject(Settings().dbt_project_dir, tmp_path / "target", url)
    prepare_warehouse(project, build=True)
    yield project
    if request.param == "postgresql":
        drop_postgres_database(url.split("?")[0])


# -- A local server that answers as Elasticsearch does (pytest-httpserver) ---------------------


@pytest.fixture
def es_settings(settings: Settings, httpserver: HTTPServer) -> Settings:
    return settings.model_copy(update={"elasticsearch_url": httpserver.url_for("/").rstrip("/")})


@pytest.fixture
async def es_client(
    es_settings: Settings, client: AsyncClient, recording_launcher: RecordingLauncher
) -> AsyncIterator[AsyncClient]:
    recording_launcher.reset()
    app: FastAPI = create_app(es_settings, launcher=recording_launcher)
    async with (
        app.router.lifespan_context(app),
        AsyncClient(
            transport=ASGITransport(app=app),
            base_url="http://test",
            headers={"Authorization": client.headers["Authorization"]},
        ) as http,
    ):
        yield http


@pytest.fixture
def flow_env(es_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("INTERVENE_DATABASE_URL", es_settings.database_url)
    monkeypatch.setenv("INTERVENE_ELASTICSEARCH_URL", str(es_settings.elasticsearch_url))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
