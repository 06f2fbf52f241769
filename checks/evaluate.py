"""Measuring a check: run its query on the warehouse, read `value` and the context columns.

A batch on PostgreSQL goes through psycopg's pipeline mode: every query is sent before any
result is read, so the warehouse works through them back to back instead of waiting a round
trip (and the client's Python) between each. A failing query aborts the rest of its pipeline;
those are sent again in a new one, so one bad check never costs the others their result.
"""

import math
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from checks.config import CheckSpec
from integrations.warehouse import open_warehouse
from models.services.checks import Measurement


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def measure(spec: CheckSpec, warehouse_url: str) -> Measurement:
    """Never raises for the check's own failures: a query error is a Measurement with `error`."""
    return measure_many([spec], warehouse_url)[0]


def measure_many(specs: list[CheckSpec], warehouse_url: str) -> list[Measurement]:
    """Measure several checks through one warehouse connection (a sweep)."""
    started_at = datetime.now(UTC)
    clock = time.perf_counter()
    try:
        with open_warehouse(warehouse_url, read_only=True) as conn:
            return measure_batch(conn, specs)
    except Exception as exc:  # no connection at all: every check reports it
        error = describe(exc)
        return [unmeasured(spec, error, started_at, clock) for spec in specs]


def unmeasured(
    spec: CheckSpec, error: str, started_at: datetime | None = None, clock: float | None = None
) -> Measurement:
    """A check that could not even be run (no warehouse connection)."""
    spent = (time.perf_counter() - clock) * 1000 if clock is not None else 0.0
    return Measurement(
        check_id=spec.id,
        started_at=started_at or datetime.now(UTC),
        threshold=spec.threshold,
        duration_ms=spent,
        error=error,
    )


def describe(exc: Exception) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"


def measure_batch(conn: Any, specs: list[CheckSpec]) -> list[Measurement]:
    """Measure checks through one open warehouse connection, in order."""
    psycopg = sys.modules.get("psycopg")  # imported by open_warehouse for PostgreSQL only
    if psycopg is None or not isinstance(conn, psycopg.Connection):
        return [measure_on(conn, spec) for spec in specs]
    measured: list[Measurement] = []
    while len(measured) < len(specs):
        measured += _pipelined(conn, specs[len(measured) :])
    return measured


def _pipelined(conn: Any, specs: list[CheckSpec]) -> list[Measurement]:
    """Measure `specs` in one pipeline, up to and including the first that fails (the rest
    were aborted by the server: the caller sends them again). A run's duration is its share
    of the pipeline's time: pipelined queries have no time of their own."""
    import psycopg

    started_at, clock = datetime.now(UTC), time.perf_counter()
    cursors, failure = [], None
    try:
        with conn.pipeline():
            for spec in specs:
                cursor = conn.cursor()
                cursor.execute(spec.query)
                cursors.append(cursor)
    except psycopg.Error as exc:  # a query failed: the server aborted the ones after it
        if conn.closed:  # not a query's failure: the connection is gone
            raise
        failure = exc
    share = (time.perf_counter() - clock) * 1000 / max(len(cursors), 1)
    measured = []
    for spec, cursor in zip(specs, cursors, strict=False):
        if cursor.pgresult is None:  # the first without a result is the one that failed
            error = describe(failure or ValueError("the query returned no result"))
            measured.append(
                Measurement(
                    check_id=spec.id,
                    started_at=started_at,
                    threshold=spec.threshold,
                    duration_ms=share,
                    error=error,
                )
            )
            return measured
        measured.append(_read(spec, cursor, started_at, share))
    if failure is not None and len(measured) < len(specs):  # failed while sending
        spec = specs[len(measured)]
        measured.append(
            Measurement(
                check_id=spec.id,
                started_at=started_at,
                threshold=spec.threshold,
                duration_ms=share,
                error=describe(failure),
            )
        )
    return measured


def measure_on(conn: Any, spec: CheckSpec) -> Measurement:
    started_at = datetime.now(UTC)
    clock = time.perf_counter()
    try:
        cursor = conn.cursor()
        cursor.execute(spec.query)
    except Exception as exc:  # bad SQL: this check's error, not the sweep's
        return Measurement(
            check_id=spec.id,
            started_at=started_at,
            threshold=spec.threshold,
            duration_ms=(time.perf_counter() - clock) * 1000,
            error=describe(exc),
        )
    return _read(spec, cursor, started_at, (time.perf_counter() - clock) * 1000)


def _read(spec: CheckSpec, cursor: Any, started_at: datetime, duration_ms: float) -> Measurement:
    """The measurement from a cursor holding the check's result."""
    try:
        columns = [d[0] for d in cursor.description or []]
        row = cursor.fetchone()
        if row is None:
            raise ValueError("the query returned no row")
        record = dict(zip(columns, row, strict=True))
        raw = record.pop("value") if "value" in record else row[0]
        if raw is None:
            raise ValueError("the query returned no value (NULL)")
        value = float(raw)
        if math.isnan(value):
            raise ValueError("the query returned NaN")
    except Exception as exc:  # an empty or unreadable result: this check's error
        return Measurement(
            check_id=spec.id,
            started_at=started_at,
            threshold=spec.threshold,
            duration_ms=duration_ms,
            error=describe(exc),
        )
    return Measurement(
        check_id=spec.id,
        started_at=started_at,
        threshold=spec.threshold,
        duration_ms=duration_ms,
        value=value,
        passed=spec.passes(value),
        context={k: _plain(v) for k, v in record.items()},
    )
