"""The Prefect flow of adjust_canary_split.

What it fixes, what it touches and what rollback undoes is said beside its Params and plan,
in playbooks/actions/adjust_canary_split.py.
"""

from typing import Any

from prefect import flow

from flows import hooks, planner_steps
from models.settings import get_settings
from playbooks.actions.adjust_canary_split import (
    ACTION_TYPE,
    Params,
    plan,
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
    skipped = await hooks.begin(action_id, rollback=rollback)
    if skipped is not None:
        return skipped
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
