"""Fixtures of the flow tests: the API on the real stack (tests/stack.py) in this process, with
the real PrefectLauncher; dbt warehouses; a fake Elasticsearch."""

from collections.abc import AsyncIterator, Iterator

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from prefect.settings import PREFECT_API_URL, temporary_settings
from pytest_httpserver import HTTPServer

from api.launcher import PrefectLauncher
from api.main import create_app
from models.settings import Settings, get_settings
from tests.auth import bearer, issue
from tests.fakes import RecordingLauncher
from tests.stack import Stack


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
    """What a flow run reads from its environment: the test's database, warehouse and cluster,
    and planner steps with no pause between them."""
    monkeypatch.setenv("INTERVENE_DATABASE_URL", es_settings.database_url)
    monkeypatch.setenv("INTERVENE_WAREHOUSE_URL", es_settings.warehouse_url)
    monkeypatch.setenv("INTERVENE_ELASTICSEARCH_URL", str(es_settings.elasticsearch_url))
    monkeypatch.setenv("INTERVENE_PLANNER_STEP_SECONDS", "0")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
