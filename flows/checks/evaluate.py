"""Measuring a check: run its query on the warehouse, read `value` and the context columns."""

import math
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from flows.checks.config import CheckSpec
from flows.warehouse import open_warehouse
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
            return [measure_on(conn, spec) for spec in specs]
    except Exception as exc:  # no connection at all: every check reports it
        error = describe(exc)
        return [unmeasured(spec, error, started_at, clock) for spec in specs]


def unmeasured(
    spec: CheckSpec, error: str, started_at: datetime | None = None, clock: float | None = None
) -> Measurement:
    """A check that could not even be run (no warehouse connection)."""
    spent = (time.perf_counter() - clock) * 1000 if clock is not None else 0.0
    return Measurement(
        check_id=spec.id, started_at=started_at or datetime.now(UTC), threshold=spec.threshold,
        duration_ms=spent, error=error,
    )  # fmt: skip


def describe(exc: Exception) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"


def measure_on(conn: Any, spec: CheckSpec) -> Measurement:
    started_at = datetime.now(UTC)
    clock = time.perf_counter()
    try:
        cursor = conn.cursor()
        cursor.execute(spec.query)
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
    except Exception as exc:  # bad SQL, an empty result: this check's error, not the sweep's
        return Measurement(
            check_id=spec.id, started_at=started_at, threshold=spec.threshold,
            duration_ms=(time.perf_counter() - clock) * 1000, error=describe(exc),
        )  # fmt: skip
    return Measurement(
        check_id=spec.id, started_at=started_at, threshold=spec.threshold,
        duration_ms=(time.perf_counter() - clock) * 1000, value=value,
        passed=spec.passes(value), context={k: _plain(v) for k, v in record.items()},
    )  # fmt: skip
