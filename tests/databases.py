"""Throwaway databases for the tests: a SQLite file, or a fresh PostgreSQL database.

PostgreSQL is reached at INTERVENE_TEST_POSTGRES_URL (default: the local server, database
`test`). When it cannot be reached its tests are skipped with a clear reason, unless
INTERVENE_TEST_POSTGRES=required (as in CI), where that is an error.
"""

import os
import uuid
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

ADMIN_URL = os.environ.get("INTERVENE_TEST_POSTGRES_URL", "postgresql://127.0.0.1:5432/test")
REQUIRED = os.environ.get("INTERVENE_TEST_POSTGRES", "").lower() == "required"


def _admin_dsn() -> str:
    return make_url(ADMIN_URL).set(drivername="postgresql").render_as_string(hide_password=False)


def postgres_unavailable() -> str | None:
    """Why PostgreSQL cannot be used, or None when it can."""
    try:
        with psycopg.connect(_admin_dsn(), connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return f"PostgreSQL at {ADMIN_URL} unreachable ({exc.__class__.__name__}: {exc})".strip()


def require_postgres() -> None:
    reason = postgres_unavailable()
    if reason is None:
        return
    if REQUIRED:
        pytest.fail(f"INTERVENE_TEST_POSTGRES=required but {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL tests skipped: {reason}")


def create_postgres_database() -> str:
    name = f"intervene_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_admin_dsn(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(ADMIN_URL).set(drivername="postgresql+psycopg", database=name)
    return url.render_as_string(hide_password=False)


def drop_postgres_database(url: str) -> None:
    name = make_url(url).database
    with psycopg.connect(_admin_dsn(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def create_sqlite_database(directory: Path) -> str:
    return f"sqlite:///{directory / f'intervene-{uuid.uuid4().hex[:8]}.db'}"


def new_database(backend: str, directory: Path) -> str:
    if backend == "postgresql":
        require_postgres()
        return create_postgres_database()
    return create_sqlite_database(directory)


def drop_database(url: str) -> None:
    if url.startswith("postgresql"):
        drop_postgres_database(url)
