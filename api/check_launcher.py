"""A check's Run now and next runs through Prefect, when a Prefect server is configured.

Run now creates a flow run of the check's deployment `check/<id>` (so it shows in the Prefect
UI, recorded `manual`), waits for it to end and hands back the check run it recorded, found by
its flow run id. Anything in the way (the server unreachable, the deployment not served, the
wait over) is Unavailable: a 503 the client may retry, never a 500. Without PREFECT_API_URL the
API runs the check in its own process (checks/service.py), as it always did.
"""

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from prefect import get_client
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import (
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterExpectedStartTime,
    FlowRunFilterState,
    FlowRunFilterStateName,
)
from prefect.client.schemas.objects import FlowRun
from prefect.client.schemas.sorting import FlowRunSort
from prefect.deployments.flow_runs import arun_deployment
from prefect.exceptions import ObjectNotFound
from prefect.settings import PREFECT_API_URL

from models.errors import Unavailable

FLOW_NAME = "check"  # flows/checks/flow.py's (api may not import flows: the layers contract)
START_TIMEOUT_SECONDS = 15
NEXT_RUNS_TIMEOUT_SECONDS = 2
NEXT_RUNS_LIMIT = 200  # Prefect's largest page; checks beyond it keep their computed time
NEXT_RUNS_QUIET_SECONDS = 30  # after Prefect failed to answer, by API URL
POLL_SECONDS = 0.5
RUN_NOW_TAGS = ["intervene", "check", "run-now"]


_quiet_until: dict[str, float] = {}


def prefect_configured() -> bool:
    return bool(PREFECT_API_URL.value())


def deployment_name(check_id: str) -> str:
    return f"{FLOW_NAME}/{check_id}"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ObjectNotFound):  # its text is "None"
        return "no such deployment (is a worker serving it, or was it deployed?)"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


async def start_check_run(
    check_id: str, tags: list[str] | None = None, client: PrefectClient | None = None
) -> UUID:
    """Create a flow run of the check's deployment (tagged `tags`, Run now's by default), with
    `client` if given (a long-lived caller keeps one: no new connection per run); its id."""
    name = deployment_name(check_id)
    try:
        run = await asyncio.wait_for(
            arun_deployment(
                name, client=client, timeout=0, tags=tags or RUN_NOW_TAGS, as_subflow=False
            ),
            START_TIMEOUT_SECONDS,
        )
    except TimeoutError as exc:
        raise Unavailable(
            f"Prefect did not confirm a run of {name} in time", details={"deployment": name}
        ) from exc
    except Exception as exc:  # unreachable server, deployment not served
        raise Unavailable(
            f"Prefect could not start {name}: {_reason(exc)}", details={"deployment": name}
        ) from exc
    return run.id


async def wait_for_end(flow_run_id: UUID, seconds: float, details: dict[str, Any]) -> FlowRun:
    """The flow run once it is in a final state; Unavailable when that takes over `seconds`."""
    deadline = time.monotonic() + seconds
    try:
        async with get_client() as client:
            while True:
                run = await asyncio.wait_for(
                    client.read_flow_run(flow_run_id), START_TIMEOUT_SECONDS
                )
                if run.state is not None and run.state.is_final():
                    return run
                if time.monotonic() >= deadline:
                    break
                await asyncio.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))
    except Exception as exc:
        raise Unavailable(
            f"Prefect stopped answering about flow run {flow_run_id}: {_reason(exc)}",
            details=details,
        ) from exc
    state = run.state.name if run.state else "unknown"
    raise Unavailable(
        f"The check's flow run is still {state} after {seconds:g} s (is a worker serving "
        f"{details.get('deployment')}?); its result will show in the check's runs",
        details=details,
    )


async def next_scheduled(check_ids: list[str], within: float) -> dict[str, datetime]:
    """Each check's next Scheduled flow run in Prefect, in one query ({} on any trouble)."""
    api_url = PREFECT_API_URL.value()
    if not api_url or not check_ids or time.monotonic() < _quiet_until.get(api_url, 0):
        return {}
    try:
        return await asyncio.wait_for(
            _next_scheduled(set(check_ids), within), NEXT_RUNS_TIMEOUT_SECONDS
        )
    except Exception:
        # the caller falls back to the computed time; a server that is down costs each list
        # of checks its client's retries (1.5 s), so it is left alone for a while
        _quiet_until[api_url] = time.monotonic() + NEXT_RUNS_QUIET_SECONDS
        return {}


async def _next_scheduled(check_ids: set[str], within: float) -> dict[str, datetime]:
    now = datetime.now(UTC)
    async with get_client() as client:
        runs = await client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[FLOW_NAME])),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(name=FlowRunFilterStateName(any_=["Scheduled"])),
                expected_start_time=FlowRunFilterExpectedStartTime(
                    before_=now + timedelta(seconds=within)
                ),
            ),
            sort=FlowRunSort.EXPECTED_START_TIME_ASC,
            limit=NEXT_RUNS_LIMIT,
        )
    found: dict[str, datetime] = {}
    for run in runs:
        check_id = run.parameters.get("check_id")
        if check_id in check_ids and check_id not in found and run.expected_start_time:
            found[check_id] = run.expected_start_time
    return found
