"""rerun_dbt: re-run dbt models to refresh stale or broken tables.

Fixes freshness and quality invariants whose cause is a table that was not rebuilt. Touches the
warehouse tables of the selected models (with `upstream`, their ancestors too); `full_refresh`
rebuilds incremental models from scratch, which is why it needs approval. No rollback: a rebuild
cannot be undone, only run again. dbt runs in-process through `dbtRunner`, never a shell, and
one run at a time (the deployment's concurrency limit: dbt is not safe to run twice in one
process and DuckDB allows one writer).
"""

import asyncio
import time
from dataclasses import asdict
from typing import Annotated, Any

from prefect import flow, task
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from flows import hooks, warm_dbt
from flows.logs import run_logger
from flows.plan import Plan
from flows.retries import retrying
from integrations.warehouse import DUCKDB_LOCKED, DbtProject, Manifest, WarehouseBusy
from models.settings import get_settings

ACTION_TYPE = "rerun_dbt"
# The default estimate (flows/estimates.py scales it by how long the last runs took)
BASE_SECONDS = 60
SECONDS_PER_MODEL = 120
FULL_REFRESH_FACTOR = 3
USD_PER_SECOND = 0.05 / 300


def estimate(models: int, *, full_refresh: bool) -> tuple[int, float]:
    """Seconds and USD by default: what the plan says, and the catalog for one model."""
    per_model = SECONDS_PER_MODEL * (FULL_REFRESH_FACTOR if full_refresh else 1)
    seconds = BASE_SECONDS + per_model * models
    return seconds, round(seconds * USD_PER_SECOND, 4)


ModelName = Annotated[
    str, StringConstraints(min_length=1, max_length=200, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
]


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task_id: Annotated[
        str, StringConstraints(min_length=1, max_length=200, pattern=r"^[\w.:-]+$")
    ] = Field(description="Your reference for this run (ticket, task or incident id).")
    models: list[ModelName] = Field(min_length=1, max_length=50)
    full_refresh: bool = False
    upstream: bool = False
    threads: int = Field(default=4, ge=1, le=16)


PARAMS_DOC = {
    "task_id": "string (required)",
    "models": "array[string] (required)",
    "full_refresh": "boolean (optional, default: false)",
    "upstream": "boolean (optional, default: false)",
    "threads": "integer (optional, default: 4)",
}


class ActionFailed(RuntimeError):
    pass


def selectors(params: Params) -> list[str]:
    return [f"+{name}" if params.upstream else name for name in params.models]


def command_line(params: Params) -> str:
    """How the run reads as a dbt command (shown to people; never executed through a shell)."""
    parts = ["dbt", "run", "--select", *selectors(params), "--threads", str(params.threads)]
    if params.full_refresh:
        parts.append("--full-refresh")
    return " ".join(parts)


def plan(params: Params, manifest: Manifest) -> Plan:
    models = manifest.select(params.models, upstream=params.upstream)
    seconds, usd = estimate(len(models), full_refresh=params.full_refresh)
    incremental = [m for m in models if manifest.materialized.get(m) == "incremental"]
    count = len(models)
    changes = [f"Will re-run {count} dbt model{'s' if count != 1 else ''}"]
    changes += [f"Model: {name}" for name in models]
    if params.upstream:
        changes.append(f"Includes upstream models of: {', '.join(params.models)}")
    if params.full_refresh:
        rebuilt = ", ".join(incremental) or "none of the selected models"
        changes.append(f"Full refresh: incremental models rebuilt from scratch ({rebuilt})")
    else:
        changes.append("No full refresh (incremental only)")
    command = command_line(params)
    return Plan(
        message=f"Command: {command}",
        details={"command": command, "models": models, "threads": params.threads},
        changes=changes,
        estimated_duration=seconds,
        estimated_cost=usd,
        requires_approval=params.full_refresh,
        rollback_available=False,
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


@flow(name=ACTION_TYPE, **hooks.ACTION_HOOKS)
async def rerun_dbt(
    action_id: int,
    params: dict[str, Any],
    dry_run: bool = False,
    rollback: bool = False,
    prior_state: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Re-run the selected dbt models (see the module docstring)."""
    logger = run_logger()
    project = DbtProject.from_settings(get_settings())
    parsed = Params.model_validate(params)
    steps = plan(parsed, project.manifest())
    if dry_run:
        return {"plan": asdict(steps)}
    if await hooks.is_finished(action_id):
        logger.warning("action %s is already finished: nothing to do", action_id)
        return dict(hooks.SKIPPED)
    if rollback:
        raise ActionFailed("rerun_dbt cannot be rolled back: run it again instead")
    logger.info("action %s: %s", action_id, steps.message)
    async with hooks.heartbeat(action_id):
        result = await run_models(parsed, steps.details["models"], project)
    failed = None if result["success"] else result["message"]
    await hooks.finish(action_id, result, failed=failed)
    logger.info("action %s: %s", action_id, result["message"])
    if failed is not None:
        raise ActionFailed(failed)
    return result
