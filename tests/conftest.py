"""Fixtures: every app test runs once on SQLite and once on PostgreSQL, through the real app.

The schema is built by running the migrations. Tests commit for real (the races need it), and
each test starts from empty tables.
"""

from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import delete

from api.main import create_app
from integrations.demo_warehouse import prepare_warehouse
from integrations.warehouse import DbtProject
from models.db import Database, transaction
from models.settings import Settings
from models.tables import Base
from tests.auth import bearer, issue
from tests.databases import (
    ADMIN_URL,
    REQUIRED,
    create_postgres_database,
    drop_database,
    drop_postgres_database,
    new_database,
    require_postgres,
)
from tests.fakes import RecordingLauncher
from tests.receiver import Receiver, serve_receiver

pytest_plugins = [
    "tests.stack"
]  # the real stack (Prefect server, worker), for e2e and browser tests

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgresql),
]


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def database_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = new_database(backend, tmp_path_factory.mktemp(backend))
    yield url
    drop_database(url)


@pytest.fixture
def fresh_database_url(backend: str, tmp_path: Path) -> Iterator[Callable[[], str]]:
    """A factory of new, empty databases on the current backend (dropped after the test)."""
    made: list[str] = []

    def make() -> str:
        made.append(new_database(backend, tmp_path))
        return made[-1]

    yield make
    for url in made:
        drop_database(url)


@pytest.fixture(scope="session")
def dbt_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The shipped dbt project built once on the demo data, for plans, dry-runs and checks."""
    base = tmp_path_factory.mktemp("dbt")
    dirs = {"target": base / "target", "warehouse": base / "warehouse.duckdb"}
    project = DbtProject(
        project_dir=Settings().dbt_project_dir,
        target_dir=dirs["target"],
        warehouse_url=f"duckdb:///{dirs['warehouse']}",
    )
    prepare_warehouse(project, build=True)
    return dirs


@pytest.fixture(params=["duckdb", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DbtProject]:
    """A fresh warehouse built on the demo data, DuckDB and (when reachable) PostgreSQL."""
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


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A local HTTP server that records what webhooks deliver to it."""
    yield from serve_receiver()


@pytest.fixture(scope="session")
def settings(database_url: str, dbt_dirs: dict[str, Path]) -> Settings:
    return Settings(
        database_url=database_url,
        warehouse_url=f"duckdb:///{dbt_dirs['warehouse']}",
        dbt_target_dir=dbt_dirs["target"],
        self_approval=["*"],  # one approver acting alone; tests/api/test_auth.py checks the rest
        rate_limit="1000000/hour",  # the whole session is one client; test_rate_limits.py
        webhook_allow_private=True,  # the tests' webhook receivers listen on 127.0.0.1
        # The session's app lives for the whole run: its own watchdog would find the declared
        # checks (never run here) stale after 3 intervals and open incidents in the middle of
        # other tests, and its SLA sweep would announce breaches of their backdated incidents.
        # The tests call both with a clock of their own (tests/api/test_checks.py, test_sla.py).
        watchdog_interval_seconds=24 * 3600,
        sla_sweep_interval_seconds=24 * 3600,
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture(scope="session")
def recording_launcher() -> RecordingLauncher:
    return RecordingLauncher()


@pytest.fixture
def launcher(recording_launcher: RecordingLauncher) -> Iterator[RecordingLauncher]:
    recording_launcher.reset()
    yield recording_launcher
    recording_launcher.reset()


@pytest.fixture(scope="session")
async def app(settings: Settings, recording_launcher: RecordingLauncher) -> AsyncIterator[FastAPI]:
    application = create_app(settings, launcher=recording_launcher)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
def db(app: FastAPI) -> Database:
    database: Database = app.state.db
    return database


KEPT_TABLES = {"installation", "automation_state"}  # made by the migrations, like a real one's


@pytest.fixture
async def client(app: FastAPI, db: Database) -> AsyncIterator[AsyncClient]:
    """The app as an admin named tests.auth.TESTER; tables emptied afterwards."""
    transport = ASGITransport(app=app)
    headers = bearer(await issue(db))
    async with AsyncClient(transport=transport, base_url="http://test", headers=headers) as http:
        yield http
    async with transaction(db.writer) as session:
        for table in reversed(Base.metadata.sorted_tables):
            if table.name not in KEPT_TABLES:
                await session.execute(delete(table))


# -- Say plainly whether PostgreSQL was exercised; in CI, fail when it was not. ----------------
_postgres_outcomes: Counter[str] = Counter()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "[postgresql" not in report.nodeid:
        return
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        _postgres_outcomes[report.outcome] += 1


def pytest_terminal_summary(terminalreporter: Any) -> None:
    ran = _postgres_outcomes["passed"] + _postgres_outcomes["failed"]
    if ran:
        line = f"PostgreSQL: exercised ({ran} tests ran against {ADMIN_URL})"
    elif not _postgres_outcomes["skipped"]:
        line = "PostgreSQL: no PostgreSQL test was selected"
    else:
        line = (
            f"PostgreSQL: NOT exercised, its {_postgres_outcomes['skipped']} tests were skipped"
            f" ({ADMIN_URL} unreachable; set INTERVENE_TEST_POSTGRES_URL to point at a server)"
        )
    terminalreporter.write_sep("-", line)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if REQUIRED and not _postgres_outcomes["passed"] and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
