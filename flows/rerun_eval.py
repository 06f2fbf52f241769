"""The Prefect flow of rerun_eval.

What it fixes, what it touches and what rollback undoes is said beside its Params and plan,
in playbooks/actions/rerun_eval.py.
"""

from typing import Any

from prefect.runtime import flow_run

from checks.runner import sweep
from flows import hooks
from flows.action_flow import action_flow
from flows.logs import run_logger
from models.db import connect
from models.enums import RunTrigger
from models.settings import get_settings
from playbooks.actions.rerun_eval import (
    ACTION_TYPE,
    Params,
    chosen,
)
from playbooks.catalog import load_checks


@action_flow(ACTION_TYPE, no_rollback="rerun_eval has no rollback: it changes nothing")
async def rerun_eval(
    action_id: int, params: dict[str, Any], rollback: bool, prior_state: dict[str, Any] | None
) -> dict[str, Any]:
    """Run an agent's checks now (see the module docstring)."""
    settings = get_settings()
    specs = chosen(Params.model_validate(params), load_checks(settings.checks_file))
    database = connect(settings.database_url, pool_size=1, max_overflow=1)
    try:
        runs = await sweep(
            specs, database, settings, trigger=RunTrigger.PLAYBOOK, flow_run_id=flow_run.id
        )
    finally:
        await database.dispose()
    results = [
        {
            "check_id": r.check_id,
            "value": r.value,
            "threshold": r.threshold,
            "passed": r.passed,
            "error": r.error,
            "run_id": r.id,
            "incident_id": r.incident_id,
        }
        for r in runs
    ]
    passing = sum(1 for r in runs if r.passed)
    message = f"{passing}/{len(runs)} check(s) of {params['agent']} pass"
    run_logger().info("action %s: %s", action_id, message)
    if passing == len(runs):
        await hooks.note_on_incident(
            action_id,
            verb="eval_passed",
            notes=f"rerun_eval: all {len(runs)} check(s) pass ({', '.join(s.id for s in specs)})",
        )
    result = {"message": message, "checks": results}
    await hooks.finish(action_id, result)
    return result
