"""What the planner playbooks share: reading the planner, walking traffic through steps with a
pause between them, and putting it back exactly as it was for a rollback."""

import asyncio
from typing import Any

from flows import hooks
from flows.logs import run_logger
from models.base import utcnow
from models.db import transaction
from models.services import planner as service
from models.services.planner import PlannerSnapshot
from models.settings import get_settings


async def current() -> PlannerSnapshot:
    async with hooks.app_database() as database, transaction(database.reader) as session:
        return await service.snapshot(session)


async def walk(
    *,
    action_id: int,
    actor: str,
    start: dict[str, int],
    steps: list[dict[str, int]],
    change: str,
    stable_version: str | None = None,
    canary_version: str | None = None,
    clear_canary: bool = False,
) -> None:
    """Apply each traffic step in its own transaction, INTERVENE_PLANNER_STEP_SECONDS apart
    (the first step at once), while the action flow beats the heartbeat. Each step applies
    only to the traffic it was planned from: a concurrent change stops the walk (Conflict)."""
    settings = get_settings()
    async with hooks.app_database() as database:
        previous = start
        for n, traffic in enumerate(steps):
            if n:
                await asyncio.sleep(settings.planner_step_seconds)
            last = n == len(steps) - 1
            async with transaction(database.writer) as session:
                await service.set_traffic(
                    session,
                    traffic=traffic,
                    change=f"{change} (step {n + 1}/{len(steps)})",
                    actor=actor,
                    at=utcnow(),
                    action_id=action_id,
                    stable_version=stable_version if last else None,
                    canary_version=canary_version if last else None,
                    clear_canary=clear_canary and last,
                    expect=previous,
                )
            previous = traffic


async def apply(
    *,
    action_id: int,
    planner: PlannerSnapshot,
    steps: list[dict[str, int]],
    announce: str,
    change: str,
    message: str,
    **final: Any,
) -> dict[str, Any]:
    """A planner action's execute: capture the state (before the first change, so even a run
    that dies half-way can be rolled back), walk the steps, record the result. `final` are
    the stable/canary settings of the last step (see walk)."""
    prior = planner.as_state() | {"action_id": action_id}
    await hooks.store_result(action_id, {"prior_state": prior})
    run_logger().info("action %s: %s", action_id, announce)
    await walk(
        action_id=action_id,
        actor=f"action:{action_id}",
        start=dict(planner.traffic),
        steps=steps,
        change=change,
        **final,
    )
    result = {"message": message, "steps": steps, "prior_state": prior}
    await hooks.finish(action_id, result)
    return result


async def undo(action_id: int, prior_state: dict[str, Any] | None) -> dict[str, Any]:
    """A planner action's rollback: the traffic exactly as its execute found it."""
    assert prior_state is not None, "a rollback needs the state captured at execute"
    await put_back(
        action_id=action_id,
        actor=f"action:{action_id}",
        prior=prior_state,
        undoing=prior_state.get("action_id"),
    )
    result = {"message": f"Restored traffic {prior_state['traffic']}", "restored": prior_state}
    await hooks.finish(action_id, result)
    return result


async def put_back(
    *, action_id: int, actor: str, prior: dict[str, Any], undoing: int | None
) -> None:
    async with hooks.app_database() as database, transaction(database.writer) as session:
        await service.restore(
            session, prior=prior, actor=actor, at=utcnow(), action_id=action_id, undoing=undoing
        )
