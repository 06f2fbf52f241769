"""Which actions have been rolled back: a rollback that is in flight or succeeded has undone (or
is undoing) its action, which cannot be rolled back again; one that failed, crashed or was
cancelled leaves its action to be rolled back again."""

from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.action import Action
from models.enums import ActionStatus

CAME_TO_NOTHING = (ActionStatus.FAILED, ActionStatus.CRASHED, ActionStatus.CANCELLED)


def undoes(action: Action) -> int | None:
    """The id of the action `action` undid or is undoing, if it is such a rollback."""
    if action.rollback_of is None or action.action_status in CAME_TO_NOTHING:
        return None
    return action.rollback_of


def undone_among(actions: Iterable[Action]) -> set[int]:
    """The ids of the actions that some rollback in `actions` undid or is undoing (an
    incident's whole history holds every rollback of its actions)."""
    return {target for action in actions if (target := undoes(action)) is not None}


async def has_rollback(session: AsyncSession, *, action_id: int) -> bool:
    query = (
        select(func.count())
        .select_from(Action)
        .where(
            Action.rollback_of == action_id,
            Action.status.not_in([status.value for status in CAME_TO_NOTHING]),
        )
    )
    return bool(await session.scalar(query))
