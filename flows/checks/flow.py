"""The check flow: one Prefect flow, one deployment per declared check, on its schedule.

`intervene worker` serves `check/<check id>` for every check in INTERVENE_CHECKS_FILE with an
interval schedule of the check's `every`, anchored at ANCHOR so that a restart or a redeploy
keeps the same grid of run times; prefect.yaml declares the same for work pools. Each run
measures the check on the warehouse and records the outcome (see checks/runner.py); a run that
finds a violation or cannot measure ends Failed (outcome.py). A scheduled run that comes late,
right after the one before it, is skipped (late.py); one started by hand records `manual`
(trigger.py).
"""

from datetime import UTC, datetime
from typing import Any

from prefect import flow, get_client
from prefect.client.schemas.objects import State
from prefect.context import FlowRunContext
from prefect.schedules import Interval
from prefect.states import Completed
from prefect.types.entrypoint import EntrypointType

from checks.config import CheckSpec
from checks.runner import run_check
from flows.checks.late import late_reason
from flows.checks.outcome import SKIPPED_AS_LATE, final_state, publish
from flows.checks.trigger import trigger_of
from flows.logs import run_logger
from models.db import connect
from models.enums import RunTrigger
from models.settings import get_settings
from playbooks.catalog import load_checks

FLOW_NAME = "check"
# Every check's interval schedule counts from here (prefect.yaml says the same): without an
# anchor, Prefect anchors at the moment the deployment is (re)registered.
ANCHOR = datetime(2026, 1, 1, tzinfo=UTC)


@flow(name=FLOW_NAME, flow_run_name="check {check_id}")
async def check(check_id: str) -> State[Any]:
    """Evaluate one declared check and record it (incidents follow from the result)."""
    settings = get_settings()
    spec = load_checks(settings.checks_file)[check_id]
    context = FlowRunContext.get()
    flow_run = context.flow_run if context else None
    trigger = trigger_of(flow_run)
    if flow_run is not None and trigger is RunTrigger.SCHEDULE:
        try:
            async with get_client() as client:
                reason = await late_reason(client, flow_run, spec.every)
        except Exception as exc:  # better a run too many than a schedule that skips them all
            run_logger().warning("check %s: could not tell whether it is late: %s", check_id, exc)
            reason = None
        if reason is not None:
            run_logger().info("check %s: %s", check_id, reason)
            return Completed(name=SKIPPED_AS_LATE, message=reason)
    database = connect(settings.database_url, pool_size=1, max_overflow=1)
    try:
        run = await run_check(
            spec,
            database,
            settings,
            trigger=trigger,
            flow_run_id=str(flow_run.id) if flow_run is not None else None,
        )
    finally:
        await database.dispose()
    state = final_state(spec, run, settings.public_url)
    run_logger().info("%s (%s run %s)", state.message, trigger.value, run.id)
    try:
        await publish(spec, run, settings.public_url)
    except Exception as exc:  # the run is recorded: a missing artifact must not change its end
        run_logger().warning("check %s: no artifact: %s", check_id, exc)
    return state


def check_deployments(checks: dict[str, CheckSpec]) -> list[Any]:
    return [
        check.to_deployment(
            name=spec.id,
            schedules=[Interval(spec.every, anchor_date=ANCHOR)],
            parameters={"check_id": spec.id},
            description=spec.description or None,
            entrypoint_type=EntrypointType.MODULE_PATH,
            tags=["intervene", "check", spec.kind.value],
        )
        for spec in checks.values()
    ]
