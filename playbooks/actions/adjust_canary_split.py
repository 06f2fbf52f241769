"""adjust_canary_split: set the share of traffic a canary planner version serves.

Fixes a canary that should see less (or, after a fix, more) traffic: `version` goes to
`target_percent`, the difference taken from or given to the stable version, at once or with
`gradual` through a midpoint. Raising a canary's share needs approval. Rollback restores the
shares exactly as they were.
"""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from models.errors import ParamsError
from models.services.planner import PlannerSnapshot, moved
from playbooks.actions import planner_steps
from playbooks.plan import Plan

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
        raise ParamsError(
            "params.version",
            f"{params.version} is not a canary of a stable version (stable: {stable or 'none'})",
        )
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
