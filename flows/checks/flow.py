"""The check flow: one Prefect flow, one deployment per declared check, on its schedule.

`intervene worker` serves `check/<check id>` for every check in INTERVENE_CHECKS_FILE with an
interval schedule of the check's `every`; prefect.yaml declares the same for work pools. Each
run measures the check on the warehouse and records the outcome (see runner.py).
"""

from typing import Any

from prefect import flow
from prefect.types.entrypoint import EntrypointType

from checks.config import CheckSpec
from checks.runner import run_check
from flows.logs import run_logger
from models.db import connect
from models.settings import get_settings
from playbooks.catalog import load_checks

FLOW_NAME = "check"


@flow(name=FLOW_NAME, flow_run_name="check {check_id}")
async def check(check_id: str) -> dict[str, Any]:
    """Evaluate one declared check and record it (incidents follow from the result)."""
    settings = get_settings()
    spec = load_checks(settings.checks_file)[check_id]
    database = connect(settings.database_url, pool_size=1, max_overflow=1)
    try:
        run = await run_check(spec, database, settings)
    finally:
        await database.dispose()
    outcome = "error" if run.error else ("passed" if run.passed else "failed")
    run_logger().info(
        "check %s %s: value %s, threshold %s%s",
        check_id,
        outcome,
        run.value,
        run.threshold,
        f", incident {run.incident_id}" if run.incident_id else "",
    )
    return {
        "run_id": run.id,
        "passed": run.passed,
        "value": run.value,
        "error": run.error,
        "incident_id": run.incident_id,
    }


def check_deployments(checks: dict[str, CheckSpec]) -> list[Any]:
    return [
        check.to_deployment(
            name=spec.id,
            interval=spec.every,
            parameters={"check_id": spec.id},
            description=spec.description or None,
            entrypoint_type=EntrypointType.MODULE_PATH,
            tags=["intervene", "check", spec.kind.value],
        )
        for spec in checks.values()
    ]
