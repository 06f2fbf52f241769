"""On-call overrides: made, listed and cancelled. Which schedules and people exist is the
on-call file's business (the API checks names against it); this keeps the rows."""

from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.errors import NotFound
from models.oncall import OnCallOverride

MAX_DURATION = timedelta(days=90)


class OverrideState(StrEnum):
    UPCOMING = "upcoming"
    ACTIVE = "active"
    ENDED = "ended"  # its window passed
    CANCELLED = "cancelled"


def state_of(override: OnCallOverride, at: datetime) -> OverrideState:
    if override.cancelled_at is not None:
        return OverrideState.CANCELLED
    if at >= override.ends_at:
        return OverrideState.ENDED
    return OverrideState.UPCOMING if at < override.starts_at else OverrideState.ACTIVE


async def create_override(
    session: AsyncSession,
    *,
    schedule: str,
    person: str,
    covers: str | None,
    starts_at: datetime,
    ends_at: datetime,
    reason: str,
    created_by: str,
    at: datetime,
) -> OnCallOverride:
    override = OnCallOverride(
        schedule=schedule,
        person=person,
        covers=covers,
        starts_at=starts_at,
        ends_at=ends_at,
        reason=reason,
        created_by=created_by,
        created_at=at,
    )
    session.add(override)
    await session.flush()
    return override


async def list_overrides(
    session: AsyncSession,
    *,
    schedule: str | None,
    state: OverrideState | None,
    at: datetime,
    limit: int,
    offset: int,
) -> tuple[list[OnCallOverride], int]:
    """By start time; without a state, those still to come or under way."""
    choices: dict[OverrideState | None, list[ColumnElement[bool]]] = {
        None: [OnCallOverride.cancelled_at.is_(None), OnCallOverride.ends_at > at],
        OverrideState.UPCOMING: [
            OnCallOverride.cancelled_at.is_(None),
            OnCallOverride.starts_at > at,
        ],
        OverrideState.ACTIVE: [
            OnCallOverride.cancelled_at.is_(None),
            OnCallOverride.starts_at <= at,
            OnCallOverride.ends_at > at,
        ],
        OverrideState.ENDED: [OnCallOverride.cancelled_at.is_(None), OnCallOverride.ends_at <= at],
        OverrideState.CANCELLED: [OnCallOverride.cancelled_at.is_not(None)],
    }
    filters = choices[state]
    if schedule is not None:
        filters = [*filters, OnCallOverride.schedule == schedule]
    total = await session.scalar(select(func.count()).select_from(OnCallOverride).where(*filters))
    rows = await session.scalars(
        select(OnCallOverride)
        .where(*filters)
        .order_by(OnCallOverride.starts_at, OnCallOverride.id)
        .limit(limit)
        .offset(offset)
    )
    return list(rows), int(total or 0)


async def in_force(session: AsyncSession, at: datetime) -> list[OnCallOverride]:
    """Every override not cancelled and not over at `at` (what who-is-on-call applies)."""
    rows = await session.scalars(
        select(OnCallOverride)
        .where(OnCallOverride.cancelled_at.is_(None), OnCallOverride.ends_at > at)
        .order_by(OnCallOverride.id)
    )
    return list(rows)


async def cancel_override(
    session: AsyncSession, override_id: int, *, by: str, at: datetime
) -> OnCallOverride:
    """Cancel it (idempotent: a second cancel changes nothing and keeps the first's name)."""
    override = await session.scalar(
        select(OnCallOverride).where(OnCallOverride.id == override_id).with_for_update()
    )
    if override is None:
        raise NotFound(f"Override {override_id} not found", details={"override_id": override_id})
    if override.cancelled_at is None:
        override.cancelled_at, override.cancelled_by = at, by
        await session.flush()
    return override
