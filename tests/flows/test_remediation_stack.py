"""Closed-loop remediation on the real stack: Prefect server, worker, dbt on DuckDB and
`intervene services` (the loop). The test breaks an invariant and runs the check once; the rest
(the incident, the dry-run, the fix, the verification run, the resolution or the give-up) is
Intervene's own doing, watched through the API."""

import asyncio
import gc
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import duckdb
import pytest
from httpx import AsyncClient
from prefect import get_client

from deployments.stack import wait_for_deployment
from tests.stack import Stack

pytestmark = [
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

T = TypeVar("T")


@pytest.fixture(autouse=True)
def _collect_prefect_sockets() -> Iterator[None]:
    yield
    gc.collect()  # Prefect's leftover sockets, while this module ignores their warnings


LOOP_SECONDS = 300  # a dbt run or two, a verification run each, on a busy 2-core machine


async def eventually(what: str, check: Callable[[], Awaitable[T | None]], seconds: float) -> T:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = await check()
        if found:
            return found
        await asyncio.sleep(1)
    raise AssertionError(f"{what}: not within {seconds:.0f} s")


def warehouse(stack: Stack, sql: str, seconds: float = 120) -> None:
    """Write to the DuckDB file, taking turns with the worker's checks and dbt (one writer)."""
    path = stack.settings.warehouse_url.removeprefix("duckdb:///")
    deadline = time.monotonic() + seconds
    while True:
        try:
            with duckdb.connect(path) as conn:
                conn.execute(sql)
            return
        except duckdb.IOException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


async def run_check(stack: Stack, client: AsyncClient, check_id: str) -> dict[str, Any]:
    await asyncio.to_thread(
        wait_for_deployment, stack.env["PREFECT_API_URL"], f"check/{check_id}", 120
    )
    response = await client.post(f"/api/checks/{check_id}/run?wait=180")
    assert response.status_code == 200, response.text
    run: dict[str, Any] = response.json()
    return run


async def timeline(client: AsyncClient, incident_id: int) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = (
        await client.get(f"/api/incidents/{incident_id}/timeline")
    ).json()["entries"]
    return entries


async def test_a_broken_invariant_is_fixed_verified_and_resolved_by_itself(
    stack: Stack, stack_client: AsyncClient
) -> None:
    warehouse(stack, "delete from triage_results")
    broken = await run_check(stack, stack_client, "e2e_triage_built")
    assert broken["passed"] is False
    incident_id = broken["incident_id"]
    assert incident_id is not None

    async def resolved() -> dict[str, Any] | None:
        body: dict[str, Any] = (await stack_client.get(f"/api/incidents/{incident_id}")).json()
        return body if body["status"] == "resolved" else None

    await eventually("the incident resolved by verification", resolved, LOOP_SECONDS)

    entries = await timeline(stack_client, incident_id)
    ours = [e for e in entries if e["actor"] == "automation:e2e_triage_built"]
    steps = [e["verb"] for e in ours if e["verb"].startswith("remediation_")]
    assert steps[0] == "remediation_planned"
    assert steps[-3:] == ["remediation_executing", "remediation_verifying", "remediation_verified"]
    resolve = next(e for e in ours if e["verb"] == "resolve")
    assert "fixed it: check run" in resolve["notes"]

    history = (
        await stack_client.get(f"/api/playbooks/incidents/{incident_id}/actions/history")
    ).json()["actions"]
    executed = [a for a in history if not a["dry_run"]]
    assert [(a["action_type"], a["status"]) for a in executed] == [("rerun_dbt", "success")]
    assert executed[0]["requested_by"] == "automation:e2e_triage_built"
    assert any(a["dry_run"] for a in history)

    runs = (await stack_client.get("/api/checks/e2e_triage_built/runs")).json()["runs"]
    verification = next(r for r in runs if r["trigger"] == "verification")
    assert verification["passed"] is True
    assert verification["value"] > 0  # dbt rebuilt the table
    async with get_client() as prefect:
        flow_run = await prefect.read_flow_run(uuid.UUID(verification["flow_run_id"]))
    assert {"verification", f"incident:{incident_id}"} <= set(flow_run.tags)
    assert any(tag.startswith("remediation:") for tag in flow_run.tags)


async def test_a_fix_that_does_not_help_stops_after_max_attempts_and_escalates(
    stack: Stack, stack_client: AsyncClient
) -> None:
    warehouse(stack, "create table if not exists e2e_unfixable_marker (x integer)")
    try:
        broken = await run_check(stack, stack_client, "e2e_unfixable")
        assert broken["passed"] is False
        incident_id = broken["incident_id"]

        async def gave_up() -> list[dict[str, Any]] | None:
            entries = await timeline(stack_client, incident_id)
            return entries if any(e["verb"] == "remediation_failed" for e in entries) else None

        entries = await eventually("the give-up", gave_up, 2 * LOOP_SECONDS)
        failed = next(e for e in entries if e["verb"] == "remediation_failed")
        assert "gave up after 2 attempt(s): ineffective" in failed["notes"]
        assert [e["verb"] for e in entries].count("remediation_ineffective") == 1
        body = (await stack_client.get(f"/api/incidents/{incident_id}")).json()
        assert body["status"] == "open"  # a person's now

        history = (
            await stack_client.get(f"/api/playbooks/incidents/{incident_id}/actions/history")
        ).json()["actions"]
        executed = [a for a in history if not a["dry_run"]]
        assert [a["status"] for a in executed] == ["success", "success"]

        # it keeps failing; nothing more runs by itself
        await run_check(stack, stack_client, "e2e_unfixable")
        again = (
            await stack_client.get(f"/api/playbooks/incidents/{incident_id}/actions/history")
        ).json()["actions"]
        assert len([a for a in again if not a["dry_run"]]) == 2
    finally:
        warehouse(stack, "drop table if exists e2e_unfixable_marker")
