"""The dbt project and the warehouse it builds: settings to dbt arguments, and the manifest.

The API resolves model selections from `manifest.json` (no dbt import, no subprocess); only the
worker imports dbt, and only inside a flow run.
"""

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from integrations.lineage import Lineage
from models.errors import ParamsError
from models.settings import Settings


class ManifestMissing(RuntimeError):
    """The dbt project has not been parsed yet (`intervene warehouse prepare` does it)."""


def dbt_environment(warehouse_url: str) -> dict[str, str]:
    """The INTERVENE_DBT_* variables `warehouse/profiles.yml` reads, from the warehouse URL."""
    url = make_url(warehouse_url.replace("duckdb:///", "duckdb+file:///", 1))
    if url.get_backend_name().startswith("duckdb"):
        return {"INTERVENE_DBT_TARGET": "duckdb", "INTERVENE_DBT_DUCKDB_PATH": url.database or ""}
    return {
        "INTERVENE_DBT_TARGET": "postgres",
        "INTERVENE_DBT_PG_HOST": url.host or "127.0.0.1",
        "INTERVENE_DBT_PG_PORT": str(url.port or 5432),
        "INTERVENE_DBT_PG_USER": url.username or os.environ.get("USER", "postgres"),
        "INTERVENE_DBT_PG_PASSWORD": url.password or "",
        "INTERVENE_DBT_PG_DBNAME": url.database or "postgres",
        "INTERVENE_DBT_PG_SCHEMA": str(url.query.get("schema", "intervene")),
    }


@dataclass(frozen=True)
class DbtProject:
    project_dir: Path
    target_dir: Path
    warehouse_url: str

    @classmethod
    def from_settings(cls, settings: Settings) -> "DbtProject":
        return cls(
            project_dir=settings.dbt_project_dir.resolve(),
            target_dir=settings.dbt_target_dir.resolve(),
            warehouse_url=settings.warehouse_url,
        )

    @property
    def manifest_path(self) -> Path:
        return self.target_dir / "manifest.json"

    def common_args(self) -> list[str]:
        return [
            "--project-dir",
            str(self.project_dir),
            "--profiles-dir",
            str(self.project_dir),
            "--target-path",
            str(self.target_dir),
            "--log-path",
            str(self.target_dir.parent / "logs"),
        ]

    def manifest(self) -> "Manifest":
        return load_manifest(self.manifest_path)


@dataclass(frozen=True)
class Manifest:
    """The models of a dbt project and what each depends on."""

    parents: dict[str, tuple[str, ...]]  # model name -> model names it selects from
    materialized: dict[str, str]
    lineage: Lineage = field(default_factory=Lineage)  # every node, by unique id (tests too)

    @property
    def models(self) -> list[str]:
        return sorted(self.parents)

    def select(self, names: list[str], *, upstream: bool) -> list[str]:
        """The models a run selects, in build order; unknown names are a ParamsError."""
        unknown = [name for name in names if name not in self.parents]
        if unknown:
            raise ParamsError(
                "params.models",
                f"Unknown dbt model(s): {', '.join(unknown)}. Known: {', '.join(self.models)}",
            )
        chosen: set[str] = set()
        stack = list(names)
        while stack:
            name = stack.pop()
            if name in chosen:
                continue
            chosen.add(name)
            if upstream:
                stack.extend(self.parents[name])
        return [name for name in self._build_order() if name in chosen]

    def _build_order(self) -> list[str]:
        order: list[str] = []
        seen: set[str] = set()

        def visit(name: str) -> None:
            if name in seen:
                return
            seen.add(name)
            for parent in self.parents[name]:
                visit(parent)
            order.append(name)

        for name in self.models:
            visit(name)
        return order


def load_manifest(path: Path) -> Manifest:
    """The manifest at `path`, read once per version of the file (its mtime)."""
    try:
        stat = path.stat()
    except FileNotFoundError as exc:
        raise ManifestMissing(
            f"dbt manifest not found at {path}: run `intervene warehouse prepare`"
        ) from exc
    return _load_manifest(str(path), stat.st_mtime_ns)


@lru_cache(maxsize=4)
def _load_manifest(path: str, _mtime_ns: int) -> Manifest:
    with open(path, encoding="utf-8") as handle:
        raw: dict[str, Any] = json.load(handle)
    nodes = {
        node_id: node
        for node_id, node in raw.get("nodes", {}).items()
        if node.get("resource_type") == "model"
    }
    names = {node_id: node["name"] for node_id, node in nodes.items()}
    return Manifest(
        parents={
            node["name"]: tuple(
                names[parent] for parent in node["depends_on"]["nodes"] if parent in names
            )
            for node in nodes.values()
        },
        materialized={node["name"]: node["config"]["materialized"] for node in nodes.values()},
        lineage=Lineage.from_manifest(raw),
    )


class WarehouseBusy(RuntimeError):
    """The warehouse stayed locked by another process for longer than we wait: transient."""


DUCKDB_LOCKED = "Could not set lock on file"  # DuckDB's words when another process holds it
# how long a reader or dbt waits for its turn: a check reads for a second or two, a sweep for
# a few, a dbt run for as long as its models take
TURN_WAIT_SECONDS = 120.0
OFFLINE_COMMANDS = frozenset({"parse", "ls"})  # dbt commands that never open the warehouse


@contextmanager
def warehouse_lock(warehouse_url: str, *, wait: float) -> Iterator[None]:
    """Take turns on a DuckDB warehouse file. DuckDB admits one process at a time once one of
    them writes, and fails the other at once ("Could not set lock on file"): checks (in the
    worker, the API's Run now, a sweep) and dbt runs queue here instead, on an OS file lock
    beside the warehouse that the kernel releases when its holder dies. PostgreSQL needs none.
    """
    path = warehouse_path(warehouse_url)
    if path is None:
        yield
        return
    from filelock import FileLock, Timeout

    lock = FileLock(f"{path}.intervene-lock", timeout=wait)
    try:
        lock.acquire()
    except Timeout as exc:
        raise WarehouseBusy(f"the warehouse {path} stayed busy for {wait:.0f} s") from exc
    try:
        yield
    finally:
        lock.release()


def invoke_dbt(project: DbtProject, *args: str, wait: float = TURN_WAIT_SECONDS) -> Any:
    """Run one dbt command in this process (imports dbt: worker and CLI only, never the API),
    holding the warehouse's lock (warehouse_lock) for as long as it runs, unless the command
    never opens the warehouse (`parse`, `ls`: a worker starting beside a long run need not wait).

    dbt-duckdb keeps its DuckDB connection open for the life of the process; closing it when
    the command ends frees the warehouse for its other readers and writers at once.
    """
    from dbt.cli.main import dbtRunner

    os.environ.update(dbt_environment(project.warehouse_url))
    offline = bool(args) and args[0] in OFFLINE_COMMANDS
    with nullcontext() if offline else warehouse_lock(project.warehouse_url, wait=wait):
        try:
            return dbtRunner().invoke([*args, *project.common_args()])
        finally:
            _release_duckdb()
            _close_dbt_logs()


def _close_dbt_logs() -> None:
    """dbt leaves its log file open until the next invocation replaces its loggers."""
    from dbt_common.events.event_manager_client import cleanup_event_logger, get_event_manager

    for logger in getattr(get_event_manager(), "loggers", []):
        python_logger = getattr(logger, "_python_logger", None)
        for handler in list(getattr(python_logger, "handlers", [])):
            handler.close()
            python_logger.removeHandler(handler)  # type: ignore[union-attr]
    cleanup_event_logger()


def _release_duckdb() -> None:
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # dbt-duckdb not installed: nothing to release
        return
    environment = DuckDBConnectionManager._ENV
    DuckDBConnectionManager.close_all_connections()  # type: ignore[no-untyped-call]
    if environment is not None:
        environment.close()


def warehouse_path(warehouse_url: str) -> Path | None:
    """The DuckDB file of a duckdb:/// URL; None for PostgreSQL."""
    if warehouse_url.startswith("duckdb:///"):
        return Path(warehouse_url.removeprefix("duckdb:///"))
    return None


@contextmanager
def open_warehouse(
    warehouse_url: str, *, read_only: bool, wait: float = TURN_WAIT_SECONDS
) -> Iterator[Any]:
    """A DB-API connection to the warehouse (DuckDB file, or PostgreSQL with its schema first
    on the search path). DuckDB admits one writing process at a time, and dbt is one: this
    takes its turn on the warehouse's lock (warehouse_lock), and if a process that does not
    take turns (someone's own dbt) holds the file, waits for it too, up to `wait` seconds."""
    path = warehouse_path(warehouse_url)
    if path is None:
        import psycopg  # here: every flow imports this module, few need PostgreSQL

        env = dbt_environment(warehouse_url)
        conninfo = make_url(warehouse_url).set(drivername="postgresql", query={})
        connection = psycopg.connect(
            conninfo.render_as_string(hide_password=False),
            autocommit=True,
            options=f"-c search_path={env['INTERVENE_DBT_PG_SCHEMA']},public",
            # never prepare: a PREPARE that a failed query aborts in a pipeline (a sweep) stays
            # "prepared" for psycopg, and every later use of that SQL would fail; the checks'
            # queries are measured a few times an hour, not worth a plan cache anyway
            prepare_threshold=None,
        )
        try:
            yield connection
        finally:
            connection.close()
        return
    import duckdb

    deadline = time.monotonic() + wait
    with warehouse_lock(warehouse_url, wait=wait):
        while True:
            try:
                duck = duckdb.connect(str(path), read_only=read_only)
                break
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        try:
            yield duck
        finally:
            duck.close()
