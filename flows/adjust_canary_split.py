"""The Prefect flow of adjust_canary_split.

What it fixes, what it touches and what rollback undoes is said beside its Params and plan,
in playbooks/actions/adjust_canary_split.py.
"""

from typing import Any

from flows import planner_steps
from flows.action_flow import action_flow
from models.settings import get_settings
from playbooks.actions.adjust_canary_split import (
    ACTION_TYPE,
    Params,
    plan,
)


@action_flow(ACTION_TYPE)
async def adjust_canary_split(
    action_id: int, params: dict[str, Any], rollback: bool, prior_state: dict[str, Any] | None
) -> dict[str, Any]:
    """Set a canary version's traffic share (see the module docstring)."""
    if rollback:
        return await planner_steps.undo(action_id, prior_state)
    parsed = Params.model_validate(params)
    planner = await planner_steps.current()
    steps_plan = plan(parsed, planner, get_settings().planner_step_seconds)
    return await planner_steps.apply(
        action_id=action_id,
        planner=planner,
        steps=steps_plan.details["steps"],
        announce=steps_plan.message,
        change=f"adjust_canary_split {parsed.version} -> {parsed.target_percent}%",
        message=steps_plan.message,
        canary_version=parsed.version,
    )
