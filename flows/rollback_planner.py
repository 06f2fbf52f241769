"""The Prefect flow of rollback_planner.

What it fixes, what it touches and what rollback undoes is said beside its Params and plan,
in playbooks/actions/rollback_planner.py.
"""

from typing import Any

from flows import planner_steps
from flows.action_flow import action_flow
from models.settings import get_settings
from playbooks.actions.rollback_planner import (
    ACTION_TYPE,
    Params,
    plan,
)


@action_flow(ACTION_TYPE)
async def rollback_planner(
    action_id: int, params: dict[str, Any], rollback: bool, prior_state: dict[str, Any] | None
) -> dict[str, Any]:
    """Move traffic off a planner version (see the module docstring)."""
    if rollback:
        return await planner_steps.undo(action_id, prior_state)
    parsed = Params.model_validate(params)
    planner = await planner_steps.current()
    steps_plan = plan(parsed, planner, get_settings().planner_step_seconds)
    to_version = steps_plan.details["to_version"]
    return await planner_steps.apply(
        action_id=action_id,
        planner=planner,
        steps=steps_plan.details["steps"],
        announce=steps_plan.message,
        change=f"rollback_planner {parsed.from_version} -> {to_version}",
        message=f"Rolled back to {to_version}",
        stable_version=to_version,
        clear_canary=planner.canary_version == parsed.from_version,
    )
