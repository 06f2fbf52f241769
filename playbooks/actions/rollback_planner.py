"""rollback_planner: move the planner's traffic off a version that regressed.

Fixes a canary (or a release) whose quality dropped: its traffic moves to `to_version` (default
the stable version), gradually (100 -> 50 -> 0 percent of what it had, a step every
INTERVENE_PLANNER_STEP_SECONDS) or, with `immediate` (which needs approval), at once. Touches
only Intervene's planner state, which agents read from GET /api/planner. Rollback re-activates
`from_version` exactly as it was.
"""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

from models.errors import ParamsError
from models.services.planner import PlannerSnapshot, moved
from playbooks.actions import planner_steps
from playbooks.plan import Plan

ACTION_TYPE = "rollback_planner"
Version = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[\w.+-]+$")]


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    from_version: Version
    to_version: Version | None = None
    immediate: bool = False


PARAMS_DOC = {
    "from_version": "string (required)",
    "to_version": "string (optional, default: the stable version)",
    "immediate": "boolean (optional, default: false)",
}


def target_of(params: Params, planner: PlannerSnapshot) -> str:
    if planner.share(params.from_version) == 0:
        raise ParamsError(
            "params.from_version",
            f"{params.from_version} serves no traffic (traffic: {planner.traffic or 'none'})",
        )
    to_version = params.to_version or planner.stable_version
    if to_version is None or to_version == params.from_version:
        raise ParamsError(
            "params.to_version",
            f"give a to_version other than {params.from_version} (no other stable version)",
        )
    if to_version not in planner.traffic and to_version != planner.stable_version:
        raise ParamsError(
            "params.to_version",
            f"unknown planner version {to_version} (a typo would get all the traffic)",
        )
    return to_version


def steps_of(params: Params, planner: PlannerSnapshot, to_version: str) -> list[dict[str, int]]:
    share = planner.share(params.from_version)
    targets = [0] if params.immediate or share < 2 else [share // 2, 0]
    return [moved(planner.traffic, params.from_version, t, to_version) for t in targets]


def plan(params: Params, planner: PlannerSnapshot, step_seconds: float) -> Plan:
    to_version = target_of(params, planner)
    steps = steps_of(params, planner, to_version)
    walk = [dict(planner.traffic), *steps]
    how = "at once" if len(steps) == 1 else f"in {len(steps)} steps, {step_seconds:g} s apart"
    seconds, usd = planner_steps.estimate(len(steps), step_seconds)
    return Plan(
        message=f"Move {params.from_version}'s traffic to {to_version} {how}",
        details={
            "from_version": params.from_version,
            "to_version": to_version,
            "steps": steps,
            "before": dict(planner.traffic),
        },
        changes=[
            f"Traffic moves from {params.from_version} to {to_version} {how}",
            *planner_steps.describe_steps(walk, sorted({params.from_version, to_version})),
            f"{to_version} becomes the stable version",
        ],
        estimated_duration=seconds,
        estimated_cost=usd,
        # at once, or onto a version that is not the stable one: someone must say yes
        requires_approval=params.immediate or to_version != planner.stable_version,
        rollback_available=True,
    )
