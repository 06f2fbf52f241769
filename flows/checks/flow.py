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
from prefect.client.schemas.objects import FlowRun, State
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
from models.check_run import CheckRun
from models.db import Database, connect, transaction
from models.enums import RunTrigger
from models.services.checks import run_of_flow_run
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
    database = connect(settings.database_url, pool_size=1, max_overflow=1)
    try:
        recorded = await recorded_run(database, flow_run)
        if recorded is not None:
            # a Retry of this flow run (the Prefect UI offers one on Failed): it was measured
            # and counted once; it ends as it did, never measured again, never made green
            run_logger().info(
                "check %s: this flow run recorded run %s already", check_id, recorded.id
            )
            return final_state(spec, recorded, settings.public_url)
        late = (
            await skip_reason(flow_run, spec.every)
            if flow_run is not None and trigger is RunTrigger.SCHEDULE
            else None
        )
        if late is not None:
            run_logger().info("check %s: %s", check_id, late)
            return Completed(name=SKIPPED_AS_LATE, message=late)
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


async def recorded_run(database: Database, flow_run: FlowRun | None) -> CheckRun | None:
    if flow_run is None:
        return None
    async with transaction(database.reader) as session:
        return await run_of_flow_run(session, str(flow_run.id))


async def skip_reason(flow_run: FlowRun, every: float) -> str | None:
    try:
        async with get_client() as client:
            return await late_reason(client, flow_run, every)
    except Exception as exc:  # better a run too many than a schedule that skips them all
        run_logger().warning("could not tell whether %s is late: %s", flow_run.name, exc)
        return None


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
