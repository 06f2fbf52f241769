"""The Prefect flow of rerun_dbt.

What it fixes, what it touches and what rollback undoes is said beside its Params and plan,
in playbooks/actions/rerun_dbt.py.
"""

import asyncio
import time
from dataclasses import asdict
from typing import Any

from prefect import task

from flows import hooks, warm_dbt
from flows.action_flow import action_flow
from flows.hooks import ActionFailed
from flows.logs import run_logger
from flows.retries import retrying
from integrations.warehouse import DUCKDB_LOCKED, DbtProject, WarehouseBusy
from models.settings import get_settings
from playbooks.actions.rerun_dbt import (
    ACTION_TYPE,
    Params,
    command_line,
    plan,
    selectors,
)


def _invoke_dbt(params: Params, expected: list[str], project: DbtProject) -> dict[str, Any]:
    args = ["run", "--select", *selectors(params), "--threads", str(params.threads)]
    if params.full_refresh:
        args.append("--full-refresh")
    started = time.perf_counter()
    outcome = warm_dbt.run(project, args, get_settings().dbt_socket)
    if not outcome["success"] and DUCKDB_LOCKED in str(outcome["exception"]):
        # another process that does not take turns (someone's own dbt) holds the DuckDB file
        raise WarehouseBusy(f"dbt could not open the warehouse: {outcome['exception']}")
    elapsed = round(time.perf_counter() - started, 3)
    models = outcome["results"]
    ran = [m["name"] for m in models if m["status"] == "success"]
    missing = [name for name in expected if name not in ran]
    success = bool(outcome["success"]) and not missing
    if success:
        message = f"Successfully ran {len(ran)} model(s)"
    elif outcome["exception"]:
        message = f"dbt failed: {outcome['exception']}"
    else:
        failed = [m["name"] for m in models if m["status"] != "success"] or missing
        message = f"dbt run failed for: {', '.join(failed)}"
    return {
        "success": success,
        "message": message,
        "command": command_line(params),
        "models": models,
        "models_run": ran,
        "exit_code": 0 if success else 1,
        "dbt_seconds": elapsed,
    }


@task(name="dbt run")
async def run_models(params: Params, expected: list[str], project: DbtProject) -> dict[str, Any]:
    """dbt's own result, failed models included; a warehouse that stays busy is retried."""
    return await retrying(
        "dbt run", lambda: asyncio.to_thread(_invoke_dbt, params, expected, project)
    )


async def preview(params: dict[str, Any]) -> dict[str, Any]:
    """A dry run: the plan, from the project's manifest."""
    project = DbtProject.from_settings(get_settings())
    return {"plan": asdict(plan(Params.model_validate(params), project.manifest()))}


@action_flow(
    ACTION_TYPE,
    no_rollback="rerun_dbt cannot be rolled back: run it again instead",
    preview=preview,
)
async def rerun_dbt(
    action_id: int, params: dict[str, Any], rollback: bool, prior_state: dict[str, Any] | None
) -> dict[str, Any]:
    """Re-run the selected dbt models (see the module docstring)."""
    logger = run_logger()
    project = DbtProject.from_settings(get_settings())
    parsed = Params.model_validate(params)
    steps = plan(parsed, project.manifest())
    logger.info("action %s: %s", action_id, steps.message)
    result = await run_models(parsed, steps.details["models"], project)
    failed = None if result["success"] else result["message"]
    await hooks.finish(action_id, result, failed=failed)
    logger.info("action %s: %s", action_id, result["message"])
    if failed is not None:
        raise ActionFailed(failed, result=result)
    return result
