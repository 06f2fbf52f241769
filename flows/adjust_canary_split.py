"""adjust_canary_split: set the share of traffic a canary planner version serves.

Fixes a canary that should see less (or, after a fix, more) traffic: `version` goes to
`target_percent`, the difference taken from or given to the stable version, at once or with
`gradual` through a midpoint. Raising a canary's share needs approval. Rollback restores the
shares exactly as they were.
"""

from typing import Annotated, Any

from prefect import flow
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from flows import hooks, planner_steps
from flows.plan import Plan
from models.errors import ParamsError
from models.services.planner import PlannerSnapshot, moved
from models.settings import get_settings

ACTION_TYPE = "adjust_canary_split"
Version = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[\w.+-]+$")]


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Version
    target_percent: int = Field(ge=0, le=100)
    gradual: bool = False


PARAMS_DOC = {
    "version": "string (required)",
    "target_percent": "integer 0..100 (required)",
    "gradual": "boolean (optional, default: false)",
}


def plan(params: Params, planner: PlannerSnapshot, step_seconds: float) -> Plan:
    stable = planner.stable_version
    if stable is None or stable == params.version:
        raise ParamsError("params.version", f"{params.version} is not a canary of a stable "
                          f"version (stable: {stable or 'none'})")  # fmt: skip
    if params.version not in planner.traffic and params.version != planner.canary_version:
        raise ParamsError("params.version", f"unknown planner version {params.version}")
    current = planner.share(params.version)
    targets = [params.target_percent]
    if params.gradual and abs(params.target_percent - current) > 1:
        targets.insert(0, (current + params.target_percent) // 2)
    steps = [moved(planner.traffic, params.version, t, stable) for t in targets]
    raising = params.target_percent > current
    how = "at once" if len(steps) == 1 else f"in {len(steps)} steps, {step_seconds:g} s apart"
    seconds, usd = planner_steps.estimate(len(steps), step_seconds)
    return Plan(
        message=f"Set {params.version}'s share from {current}% to {params.target_percent}% {how}",
        details={
            "version": params.version,
            "from_percent": current,
            "target_percent": params.target_percent,
            "steps": steps,
        },
        changes=[
            f"{params.version} serves {params.target_percent}% of traffic (now {current}%)",
            *planner_steps.describe_steps(
                [dict(planner.traffic), *steps], sorted({params.version, stable})
            ),
            "Raising a canary's share needs approval" if raising else "Lowers the canary's share",
        ],
        estimated_duration=seconds,
        estimated_cost=usd,
        requires_approval=raising,
        rollback_available=True,
    )


@flow(name=ACTION_TYPE, **hooks.ACTION_HOOKS)
async def adjust_canary_split(
    action_id: int,
    params: dict[str, Any],
    dry_run: bool = False,
    rollback: bool = False,
    prior_state: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Set a canary version's traffic share (see the module docstring)."""
    if await hooks.is_finished(action_id):
        return dict(hooks.SKIPPED)
    if rollback:
        return await planner_steps.undo(action_id, prior_state)
    parsed = Params.model_validate(params)
    planner = await planner_steps.current()
    steps_plan = plan(parsed, planner, get_settings().planner_step_seconds)
    return await planner_steps.apply(
        action_id=action_id, planner=planner, steps=steps_plan.details["steps"],
        announce=steps_plan.message,
        change=f"adjust_canary_split {parsed.version} -> {parsed.target_percent}%",
        message=steps_plan.message, canary_version=parsed.version,
    )  # fmt: skip
