"""rerun_eval: run an agent's declared checks now and report each result.

Verifies a fix: the same evaluation the schedules run (flows/checks), on demand, for one agent
(or some of its checks). Failing checks open or count incidents as scheduled runs do; when every
check passes, the incident's timeline says so. Read-only on the warehouse; nothing to roll back.
"""

from typing import Annotated, Any

from prefect import flow
from pydantic import BaseModel, ConfigDict, StringConstraints

from flows import hooks
from flows.checks.config import CheckSpec, load_checks
from flows.checks.runner import sweep
from flows.logs import run_logger
from flows.plan import Plan
from models.db import connect
from models.enums import RunTrigger
from models.errors import ParamsError
from models.settings import get_settings

ACTION_TYPE = "rerun_eval"
SECONDS_PER_CHECK = 2  # the default estimate (flows/estimates.py scales it)
Name = Annotated[str, StringConstraints(min_length=1, max_length=120, pattern=r"^[\w.-]+$")]


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent: Name
    checks: list[Name] | None = None


PARAMS_DOC = {
    "agent": "string (required)",
    "checks": "array[string] (optional, default: all of the agent's checks)",
}


class ActionFailed(RuntimeError):
    pass


def estimate(checks: int) -> tuple[int, float]:
    """Seconds and USD by default (read-only queries: no cost counted)."""
    return SECONDS_PER_CHECK * checks, 0.0


def chosen(params: Params, declared: dict[str, CheckSpec]) -> list[CheckSpec]:
    mine = {cid: spec for cid, spec in declared.items() if spec.agent == params.agent}
    if not mine:
        agents = sorted({spec.agent for spec in declared.values()})
        raise ParamsError("params.agent", f"no checks for agent {params.agent!r} (agents: "
                          f"{', '.join(agents)})")  # fmt: skip
    unknown = sorted(set(params.checks or []) - set(mine))
    if unknown:
        raise ParamsError("params.checks", f"not checks of {params.agent}: {', '.join(unknown)}")
    return [mine[cid] for cid in (params.checks or sorted(mine))]


def plan(params: Params, declared: dict[str, CheckSpec]) -> Plan:
    specs = chosen(params, declared)
    names = ", ".join(spec.id for spec in specs)
    seconds, usd = estimate(len(specs))
    return Plan(
        message=f"Run {len(specs)} check(s) of {params.agent} now: {names}",
        details={"agent": params.agent, "checks": [spec.id for spec in specs]},
        changes=[
            f"Runs {len(specs)} check(s) of {params.agent} now: {names}",
            "Failing checks open or count incidents, as scheduled runs do",
            "Read-only on the warehouse; nothing to roll back",
        ],
        estimated_duration=seconds,
        estimated_cost=usd,
        requires_approval=False,
    )


@flow(name=ACTION_TYPE, **hooks.ACTION_HOOKS)
async def rerun_eval(
    action_id: int,
    params: dict[str, Any],
    dry_run: bool = False,
    rollback: bool = False,
    prior_state: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run an agent's checks now (see the module docstring)."""
    if rollback:
        raise ActionFailed("rerun_eval has no rollback: it changes nothing")
    if await hooks.is_finished(action_id):
        return dict(hooks.SKIPPED)
    settings = get_settings()
    specs = chosen(Params.model_validate(params), load_checks(settings.checks_file))
    database = connect(settings.database_url, pool_size=1, max_overflow=1)
    try:
        runs = await sweep(specs, database, settings, trigger=RunTrigger.PLAYBOOK)
    finally:
        await database.dispose()
    results = [
        {"check_id": r.check_id, "value": r.value, "threshold": r.threshold, "passed": r.passed,
         "error": r.error, "run_id": r.id, "incident_id": r.incident_id}
        for r in runs
    ]  # fmt: skip
    passing = sum(1 for r in runs if r.passed)
    message = f"{passing}/{len(runs)} check(s) of {params['agent']} pass"
    run_logger().info("action %s: %s", action_id, message)
    if passing == len(runs):
        await hooks.note_on_incident(
            action_id, verb="eval_passed",
            notes=f"rerun_eval: all {len(runs)} check(s) pass ({', '.join(s.id for s in specs)})",
        )  # fmt: skip
    result = {"message": message, "checks": results}
    await hooks.finish(action_id, result)
    return result
