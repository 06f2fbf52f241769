"""A Prefect outage in the middle of a run, on the real stack: what the run did to the warehouse
is what the action's history says, whatever Prefect reports once it is back."""

import asyncio
import gc
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from filelock import FileLock
from httpx import AsyncClient
from prefect import get_client
from prefect.settings import PREFECT_API_URL, temporary_settings

from deployments.stack import wait_for_deployment
from integrations.warehouse import warehouse_path
from tests.flows.test_end_to_end import BODY, open_incident
from tests.stack import Stack

pytestmark = [
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


@pytest.fixture(autouse=True)
def collected() -> Iterator[None]:
    """The test's Prefect client leaves a connection it made as the server came back to the
    garbage collector: collected here, under this module's warning filters, not in a later
    test under stricter ones."""
    yield
    gc.collect()


async def wait_for(what: str, probe: Callable[[], Awaitable[Any]], seconds: float) -> Any:
    deadline = time.monotonic() + seconds
    while not (found := await probe()):
        assert time.monotonic() < deadline, f"{what}: not within {seconds:.0f} s"
        await asyncio.sleep(0.5)
    return found


@pytest.mark.timeout(600)  # the waits below add up to more than the suite's 300 s
async def test_a_prefect_outage_as_the_run_ends_leaves_its_recorded_result_standing(
    stack: Stack, stack_client: AsyncClient
) -> None:
    """Before: the flow stored `success: true`, could not tell Prefect it had completed, and
    the action ended `crashed` ("Execution was cancelled by the runtime environment")."""
    incident_id = await open_incident(stack_client, "INV_e2e_prefect_outage")
    history_url = f"/api/playbooks/incidents/{incident_id}/actions/history"
    warehouse = warehouse_path(stack.settings.warehouse_url)
    assert warehouse is not None
    turn = FileLock(f"{warehouse}.intervene-lock")  # dbt waits for it, as for a check's read

    async def action() -> dict[str, Any]:
        return dict((await stack_client.get(history_url)).json()["actions"][-1])

    with turn:
        started = await stack_client.post(
            f"/api/playbooks/incidents/{incident_id}/actions/execute", json=BODY
        )
        assert started.status_code == 200, started.text
        run_id = started.json()["flow_run_id"]

        async def running() -> bool:
            return (await action())["status"] == "running"

        await wait_for("the action starts running", running, 90)
        stack.stop_prefect()
    try:  # dbt runs now, and the run ends while Prefect is down

        async def finished() -> dict[str, Any] | None:
            current = await action()
            return current if current["status"] not in ("scheduled", "running") else None

        # before flows/turns.py, Prefect cancelled the run here when it could not renew its
        # deployment concurrency lease, and the action stayed `running` till Prefect was back
        during = await wait_for("the action ends", finished, 180)
    finally:
        stack.start_prefect()
        if stack.worker.poll() is not None:  # the stack goes on serving the tests after this one
            stack.start_worker()

    assert during["status"] == "success", during
    assert during["result"]["success"] is True
    assert during["message"] == "Successfully ran 2 model(s)"

    with temporary_settings({PREFECT_API_URL: stack.env["PREFECT_API_URL"]}):
        async with get_client() as prefect:

            async def run_over() -> bool:
                run = await prefect.read_flow_run(run_id)
                return run.state is not None and run.state.is_final()

            await wait_for("Prefect settles the run", run_over, 180)
            settled = await prefect.read_flow_run(run_id)
    after = await action()
    assert (after["status"], after["message"]) == ("success", "Successfully ran 2 model(s)"), (
        after,
        settled.state,
    )
    await asyncio.to_thread(
        wait_for_deployment, stack.env["PREFECT_API_URL"], "rerun_dbt/rerun_dbt"
    )
