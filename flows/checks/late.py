"""Late scheduled runs after an outage: one occurrence per interval, not a burst.

When a worker comes back, Prefect hands it every scheduled run it missed at once. A scheduled
run is skipped when the scheduled run before it (by expected start; the start-up kick counts)
started less than half an interval before this one, or is about to start with it (still
Scheduled, Pending or Running): of a burst only the oldest runs, and the check counts at most
one occurrence per interval. Asking Prefect, not Intervene's table, keeps it right when the
burst's runs start together in separate processes.
"""

from datetime import UTC, datetime, timedelta

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterDeploymentId,
    FlowRunFilterExpectedStartTime,
    FlowRunFilterId,
)
from prefect.client.schemas.objects import FlowRun
from prefect.client.schemas.sorting import FlowRunSort

from flows.checks.trigger import is_scheduled

LOOK_BACK = 20  # earlier runs read; manual runs among them are passed over


async def previous_scheduled(client: PrefectClient, flow_run: FlowRun) -> FlowRun | None:
    """The newest scheduled run of the same deployment expected before this one that started
    or may still start (a run cancelled before it started does not count)."""
    if flow_run.deployment_id is None or flow_run.expected_start_time is None:
        return None
    earlier = await client.read_flow_runs(
        flow_run_filter=FlowRunFilter(
            deployment_id=FlowRunFilterDeploymentId(any_=[flow_run.deployment_id]),
            expected_start_time=FlowRunFilterExpectedStartTime(
                before_=flow_run.expected_start_time
            ),
            id=FlowRunFilterId(not_any_=[flow_run.id]),
        ),
        sort=FlowRunSort.EXPECTED_START_TIME_DESC,
        limit=LOOK_BACK,
    )
    for run in earlier:
        if not is_scheduled(run):
            continue
        if run.start_time is not None or (run.state is not None and not run.state.is_final()):
            return run
    return None


async def late_reason(client: PrefectClient, flow_run: FlowRun, every: float) -> str | None:
    """Why this scheduled run is skipped, or None when it runs."""
    previous = await previous_scheduled(client, flow_run)
    if previous is None:
        return None
    now = datetime.now(UTC)
    started = flow_run.start_time or now
    if previous.start_time is None:
        return (
            f"the scheduled run before it ({previous.name}, {previous.id}) is about to run: "
            "skipped as late"
        )
    since = started - previous.start_time
    if since < timedelta(seconds=every / 2):
        return (
            f"the scheduled run before it ({previous.name}, {previous.id}) started "
            f"{since.total_seconds():.1f} s earlier, less than half the check's {every:g} s "
            "interval: skipped as late"
        )
    return None
