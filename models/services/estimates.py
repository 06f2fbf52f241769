"""The recent runs an action type's estimates learn from (playbooks/estimates.py)."""

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models.action import Action
from models.enums import ActionStatus


@dataclass(frozen=True)
class Run:
    actual_duration: float
    estimated_duration: int
    details: dict[str, Any]  # the plan's: what the estimate was based on


async def recent_runs(
    session: AsyncSession, *, action_types: Collection[str], limit: int
) -> dict[str, list[Run]]:
    """Each type's last `limit` successful executions, newest first. Rollbacks aside: they
    restore what was captured, not the work the action's estimate is about."""
    found: dict[str, list[Run]] = {}
    for action_type in sorted(set(action_types)):
        query = (
            select(Action.actual_duration, Action.estimated_duration, Action.details)
            .where(
                Action.action_type == action_type,
                Action.status == ActionStatus.SUCCESS.value,
                Action.dry_run.is_(False),
                Action.rollback_of.is_(None),
                Action.actual_duration.is_not(None),
            )
            .order_by(Action.id.desc())
            .limit(limit)
        )
        rows = await session.execute(query)
        found[action_type] = [
            Run(row.actual_duration, row.estimated_duration, row.details) for row in rows
        ]
    return found
