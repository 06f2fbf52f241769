"""Recording playbook actions: dry-runs, executions, rollbacks, and their progress.

Per-incident limits are counted in the database under a lock on the incident row, so
concurrent requests cannot together exceed them.
"""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from models.action import Action
from models.enums import ActionStatus
from models.errors import NotFound, RateLimited
from models.services import playbook_timeline
from models.services.incidents import get_incident


@dataclass(frozen=True)
class ActionLimit:
    """At most `limit` actions of one kind (dry-runs, or executions) per incident per `window`."""

    limit: int
    window: timedelta = timedelta(hours=1)


@dataclass(frozen=True)
class Quota:
    """What is left of a limit after this request; becomes the X-RateLimit-* headers."""

    limit: int
    remaining: int
    reset_at: datetime


@dataclass(frozen=True)
class NewAction:
    incident_id: int
    action_type: str
    params: dict[str, Any]
    dry_run: bool
    requested_by: str
    message: str
    details: dict[str, Any]
    changes: list[str]
    estimated_duration: int
    estimated_cost: float
    requires_approval: bool
    rollback_available: bool = False
    approved_by: str | None = None
    rollback_of: int | None = None
    prior_state: dict[str, Any] | None = None
    idempotency_key: str | None = None


async def claim_quota(
    session: AsyncSession, *, incident_id: int, dry_run: bool, limit: ActionLimit, at: datetime
) -> Quota:
    """Lock the incident and count its recent actions of this kind; raise when none are left."""
    await get_incident(session, incident_id, for_update=True)
    since = at - limit.window
    recent = list(
        await session.scalars(
            select(Action.created_at)
            .where(
                Action.incident_id == incident_id,
                Action.dry_run == dry_run,
                Action.created_at > since,
            )
            .order_by(Action.created_at)
        )
    )
    reset_at = (recent[0] if recent else at) + limit.window
    if len(recent) >= limit.limit:
        frees_at = recent[len(recent) - limit.limit] + limit.window
        # `at` was read before the lock; a request that held it may have recorded a later time
        now = max(at, recent[-1])
        retry_after = max(1, math.ceil((frees_at - now).total_seconds()))
        kind = "dry-runs" if dry_run else "executions"
        raise RateLimited(
            f"Too many {kind} for incident {incident_id}: {len(recent)} in the last "
            f"{int(limit.window.total_seconds())} s (limit {limit.limit})",
            retry_after=retry_after,
            limit="incident_actions",
            details={
                "incident_id": incident_id,
                "limit": limit.limit,
                "window_seconds": int(limit.window.total_seconds()),
                "retry_after": retry_after,
                "reset_at": math.ceil(frees_at.timestamp()),
            },
        )
    return Quota(limit=limit.limit, remaining=limit.limit - len(recent) - 1, reset_at=reset_at)


async def find_by_idempotency_key(
    session: AsyncSession, *, incident_id: int, key: str
) -> Action | None:
    query = select(Action).where(Action.incident_id == incident_id, Action.idempotency_key == key)
    return await session.scalar(query)


async def record_action(
    session: AsyncSession, *, new: NewAction, status: ActionStatus, at: datetime
) -> Action:
    """Insert an action. A concurrent twin with the same idempotency key raises IntegrityError."""
    action = Action(
        incident_id=new.incident_id,
        action_type=new.action_type,
        params=new.params,
        dry_run=new.dry_run,
        status=status.value,
        message=new.message,
        details=new.details,
        changes=new.changes,
        requires_approval=new.requires_approval,
        approved_by=new.approved_by,
        requested_by=new.requested_by,
        estimated_duration=new.estimated_duration,
        estimated_cost=new.estimated_cost,
        rollback_available=new.rollback_available,
        rollback_of=new.rollback_of,
        prior_state=new.prior_state,
        idempotency_key=new.idempotency_key,
        created_at=at,
        updated_at=at,
    )
    async with session.begin_nested():
        session.add(action)
        await session.flush()
    if status.is_terminal:
        action.completed_at = at
        session.add(action.executed_event())
    session.add(playbook_timeline.recorded(action, at))
    await session.flush()
    return action


async def get_action(session: AsyncSession, *, incident_id: int, action_id: int) -> Action:
    action = await session.get(Action, action_id)
    if action is None or action.incident_id != incident_id:
        raise NotFound(
            f"Action {action_id} not found for incident {incident_id}",
            details={"incident_id": incident_id, "action_id": action_id},
        )
    return action


async def list_actions(session: AsyncSession, *, incident_id: int) -> list[Action]:
    await get_incident(session, incident_id)
    query = select(Action).where(Action.incident_id == incident_id).order_by(Action.id)
    return list(await session.scalars(query))


async def advance_action(
    session: AsyncSession,
    *,
    action_id: int,
    status: ActionStatus,
    at: datetime,
    message: str | None = None,
    result: dict[str, Any] | None = None,
    flow_run_id: str | None = None,
    flow_run_url: str | None = None,
) -> Action | None:
    """Move an action forward (never back), with its event. None when the action is gone."""
    action = await session.get(Action, action_id, with_for_update=True)
    if action is None:
        return None
    if flow_run_id is not None and action.flow_run_id is None:
        action.flow_run_id = flow_run_id
        action.flow_run_url = flow_run_url
        action.updated_at = at
    was_open = not action.action_status.is_terminal
    event = action.advance(status, at=at, message=message, result=result)
    if event is not None:
        session.add(event)
    if was_open and action.action_status.is_terminal:
        session.add(playbook_timeline.finished(action, at))
    await session.flush()
    return action


async def store_result(
    session: AsyncSession, *, action_id: int, result: dict[str, Any], at: datetime
) -> None:
    """Keep what a run produced (per-model results, captured prior state) before it ends."""
    action = await session.get(Action, action_id, with_for_update=True)
    if action is None:
        return
    _keep_result(action, result, at)
    await session.flush()


def _keep_result(action: Action, result: dict[str, Any], at: datetime) -> None:
    action.result = result
    if isinstance(result.get("message"), str):
        action.message = result["message"]
    if "prior_state" in result:
        action.prior_state = result["prior_state"]
    action.updated_at = at


async def finish(
    session: AsyncSession,
    *,
    action_id: int,
    result: dict[str, Any],
    status: ActionStatus,
    at: datetime,
    message: str | None = None,
) -> Action | None:
    """Record a run's result and its terminal status together, from the flow that did the work.

    Once the warehouse (or the planner, or the index) has been changed, this is what happened:
    a crash report that Prefect sends later (its server was down as the run ended, say) moves
    nothing back, and a crash declared while the flow still worked gives way (Action.settle)."""
    action = await session.get(Action, action_id, with_for_update=True)
    if action is None:
        return None
    if not action.open_to_outcome:
        return action  # settled already (a retried flow): the first outcome stands
    _keep_result(action, result, at)
    before = action.status
    event = action.settle(status, at=at, message=message)
    if event is not None:
        session.add(event)
    if action.status != before and action.action_status.is_terminal:
        session.add(playbook_timeline.finished(action, at))
    await session.flush()
    return action


async def beat(session: AsyncSession, *, action_id: int, at: datetime) -> None:
    action = await session.get(Action, action_id, with_for_update=True)
    if action is not None and not action.action_status.is_terminal:
        action.heartbeat_at = at
        await session.flush()


async def unfinished_actions(session: AsyncSession, *, older_than: datetime) -> list[Action]:
    """Executions not yet terminal and not updated since `older_than`: the reconciler's work."""
    query = (
        select(Action)
        .where(
            Action.dry_run.is_(False),
            Action.status.in_(
                [
                    ActionStatus.PENDING.value,
                    ActionStatus.SCHEDULED.value,
                    ActionStatus.RUNNING.value,
                ]
            ),
            func.coalesce(Action.heartbeat_at, Action.updated_at) < older_than,
        )
        .order_by(Action.id)
    )
    return list(await session.scalars(query))


def is_duplicate_key(error: IntegrityError) -> bool:
    return "uq_actions_idempotency" in str(error.orig) or "idempotency_key" in str(error.orig)
