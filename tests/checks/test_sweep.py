"""A sweep end to end: many checks measured on a real warehouse, in chunks, while the earlier
chunks are recorded; each check gets its own run, in order, and its incident."""

import pytest
from httpx import AsyncClient

from checks import runner
from integrations.warehouse import DbtProject
from models.db import Database
from models.settings import Settings
from playbooks.catalog import load_checks

BASE = load_checks(Settings().checks_file)["data_freshness_inbox"]  # an invariant, "<="


async def test_a_sweep_across_chunks_records_every_check_in_order(
    warehouse: DbtProject, client: AsyncClient, db: Database, settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setattr(runner, "SWEEP_CHUNK", 7)  # 30 checks: five chunks, the last short
    queries = [f"select {n} as value" for n in range(30)]
    queries[12] = "select nope from nowhere"  # a failure inside a pipeline, mid-chunk
    specs = [
        BASE.model_copy(update={"id": f"sweep_{n}", "query": q, "threshold": 20})
        for n, q in enumerate(queries)
    ]
    on_warehouse = settings.model_copy(update={"warehouse_url": warehouse.warehouse_url})

    runs = await runner.sweep(specs, db, on_warehouse)

    assert [r.check_id for r in runs] == [s.id for s in specs]
    assert [r.value for r in runs] == [None if n == 12 else n for n in range(30)]
    assert [n for n, r in enumerate(runs) if r.error] == [12]
    failing = [r for r in runs if r.passed is False]  # above the threshold of 20
    assert [r.check_id for r in failing] == [f"sweep_{n}" for n in range(21, 30)]
    listed = (await client.get("/api/incidents", params={"kind": "invariant"})).json()
    assert sorted(i["key"] for i in listed["incidents"]) == sorted(
        f"INV_{r.check_id}" for r in failing
    )


async def test_a_sweep_without_a_warehouse_records_the_error_for_every_check(
    client: AsyncClient, db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "SWEEP_CHUNK", 4)  # more chunks than connections
    specs = [BASE.model_copy(update={"id": f"down_{n}"}) for n in range(10)]
    unreachable = settings.model_copy(
        update={"warehouse_url": "postgresql://nobody@127.0.0.1:1/nowhere"}
    )

    runs = await runner.sweep(specs, db, unreachable)

    assert [r.check_id for r in runs] == [s.id for s in specs]
    assert all(r.passed is None and "OperationalError" in (r.error or "") for r in runs)
