"""Engines and sessions for the app database (SQLite file or PostgreSQL through psycopg 3).

Writers serialize per incident: PostgreSQL through `SELECT ... FOR UPDATE`, SQLite (which
ignores row locks) by starting write transactions with `BEGIN IMMEDIATE`, so a second writer
waits for the first instead of failing half-way. Reads use deferred transactions on SQLite and
autocommit on PostgreSQL.
"""

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from models import json_columns

POSTGRES_CONNECT_TIMEOUT_SECONDS = 5
SQLITE_BUSY_TIMEOUT_SECONDS = 30
_WRITE_OPTION = "intervene_write"


def async_url(url: str) -> URL:
    """The URL with the async driver of its dialect (aiosqlite, psycopg)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite")
    return parsed.set(drivername="postgresql+psycopg")


def sync_url(url: str) -> URL:
    """The URL with the sync driver of its dialect (pysqlite, psycopg); used by Alembic."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return parsed.set(drivername="sqlite+pysqlite")
    return parsed.set(drivername="postgresql+psycopg")


def ensure_sqlite_directory(url: URL) -> None:
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)


def configure_sqlite(engine: Any, *, foreign_keys: bool = True) -> None:
    """WAL, foreign keys, a busy timeout, and transactions that SQLAlchemy begins itself.

    pysqlite's own transaction handling defers BEGIN and breaks SAVEPOINT; the documented
    recipe turns it off and emits BEGIN (IMMEDIATE for writers) from the `begin` event.
    `engine` is a sync Engine (for an AsyncEngine pass `.sync_engine`). Migrations turn
    `foreign_keys` off: batch mode recreates tables, and a DROP with foreign keys on would
    cascade into the rows that reference them.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_SECONDS * 1000}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@dataclass(frozen=True)
class Database:
    engine: AsyncEngine
    reader: async_sessionmaker[AsyncSession]
    writer: async_sessionmaker[AsyncSession]

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def dispose(self) -> None:
        await self.engine.dispose()


def connect(url: str, *, pool_size: int = 10, max_overflow: int = 20) -> Database:
    """Create the engine and the two session factories (reads, writes) for `url`."""
    target = async_url(url)
    ensure_sqlite_directory(target)
    options: dict[str, Any] = {"pool_pre_ping": True, "json_deserializer": json_columns.loads}
    if target.get_backend_name() == "sqlite":
        options["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_SECONDS}
    else:  # sessions in UTC: timestamps come back as UTC already (models.base.UTCDateTime)
        options.update(pool_size=pool_size, max_overflow=max_overflow)
        # a server that drops packets must not hold a request until the OS gives up: fail
        # (and answer 503) after this long
        options["connect_args"] = {
            "options": "-c TimeZone=UTC",
            "connect_timeout": POSTGRES_CONNECT_TIMEOUT_SECONDS,
        }
    engine = create_async_engine(target, **options)
    if target.get_backend_name() == "sqlite":
        configure_sqlite(engine.sync_engine)
    write_engine = engine.execution_options(**{_WRITE_OPTION: True})
    # PostgreSQL reads run in autocommit: READ COMMITTED takes a snapshot per statement anyway,
    # and this saves the BEGIN and COMMIT round trips of every GET.
    read_engine = (
        engine
        if target.get_backend_name() == "sqlite"
        else engine.execution_options(isolation_level="AUTOCOMMIT")
    )
    return Database(
        engine=engine,
        reader=async_sessionmaker(read_engine, expire_on_commit=False),
        writer=async_sessionmaker(write_engine, expire_on_commit=False),
    )


@asynccontextmanager
async def transaction(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session whose work commits on success and rolls back on any error."""
    async with factory() as session, session.begin():
        yield session


# What says the database cannot be used now, rather than that a statement is wrong. SQLite's
# OperationalError also covers "no such table" and syntax errors (SQLITE_ERROR): those are not.
_SQLITE_UNAVAILABLE = frozenset(
    {
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_PERM,
        sqlite3.SQLITE_PROTOCOL,
        sqlite3.SQLITE_NOTADB,
    }
)
# SQLSTATE classes: connection exception, insufficient resources, operator intervention (a
# shutdown, a terminated backend), system error
_POSTGRES_UNAVAILABLE = frozenset({"08", "53", "57", "58"})


def unreachable(error: BaseException) -> bool:
    """Whether `error` says the database is gone or cannot serve now (refused or lost
    connection, a file that cannot be opened, locked past the busy timeout, no pooled connection
    in time), as opposed to a fault in what was asked of it."""
    if isinstance(error, sa_exc.TimeoutError):  # the pool had no connection to give in time
        return True
    if not isinstance(error, sa_exc.DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    cause = error.orig
    if isinstance(cause, sqlite3.Error):
        return getattr(cause, "sqlite_errorcode", 0) & 0xFF in _SQLITE_UNAVAILABLE
    if isinstance(cause, psycopg.InterfaceError):  # the connection is closed or lost
        return True
    if isinstance(cause, psycopg.OperationalError):
        return cause.sqlstate is None or cause.sqlstate[:2] in _POSTGRES_UNAVAILABLE
    return False
