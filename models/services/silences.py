"""Silences (maintenance windows): made, listed, read with what they hold, and ended early."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.alert_hold import AlertHold, Silence
from models.errors import NotFound

MAX_DURATION = timedelta(days=30)


class SilenceState(StrEnum):
    PENDING = "pending"  # scheduled ahead
    ACTIVE = "active"
    EXPIRED = "expired"


def state_of(silence: Silence, at: datetime) -> SilenceState:
    if at >= silence.ends_at:  # a scheduled silence ended early ends before it starts
        return SilenceState.EXPIRED
    return SilenceState.PENDING if at < silence.starts_at else SilenceState.ACTIVE


@dataclass(frozen=True)
class Held:
    """What a silence keeps quiet: how many alerts (keys), how many occurrences of them."""

    alerts: int = 0
    occurrences: int = 0


async def create_silence(
    session: AsyncSession,
    *,
    matchers: dict[str, Any],
    starts_at: datetime,
    ends_at: datetime,
    reason: str,
    created_by: str,
    at: datetime,
) -> Silence:
    silence = Silence(
        matchers=matchers,
        starts_at=starts_at,
        ends_at=ends_at,
        reason=reason,
        created_by=created_by,
        created_at=at,
    )
    session.add(silence)
    await session.flush()
    return silence


async def get_silence(
    session: AsyncSession, silence_id: int, *, for_update: bool = False
) -> Silence:
    query = select(Silence).where(Silence.id == silence_id)
    if for_update:
        query = query.with_for_update()
    silence = await session.scalar(query)
    if silence is None:
        raise NotFound(f"Silence {silence_id} not found", details={"silence_id": silence_id})
    return silence


async def list_silences(
    session: AsyncSession, *, state: SilenceState | None, at: datetime, limit: int, offset: int
) -> tuple[list[Silence], int]:
    """Newest first; without a state, those not yet expired."""
    filters = {
        None: [Silence.ends_at > at],
        SilenceState.PENDING: [Silence.starts_at > at, Silence.ends_at > at],
        SilenceState.ACTIVE: [Silence.starts_at <= at, Silence.ends_at > at],
        SilenceState.EXPIRED: [Silence.ends_at <= at],
    }[state]
    total = await session.scalar(select(func.count()).select_from(Silence).where(*filters))
    rows = await session.scalars(
        select(Silence).where(*filters).order_by(Silence.id.desc()).limit(limit).offset(offset)
    )
    return list(rows), total or 0


async def held_by(session: AsyncSession, silence_ids: list[int]) -> dict[int, Held]:
    """Per silence: the alerts it holds or held, and their occurrences."""
    if not silence_ids:
        return {}
    rows = await session.execute(
        select(
            AlertHold.silence_id, func.count(), func.coalesce(func.sum(AlertHold.occurrences), 0)
        )
        .where(AlertHold.silence_id.in_(silence_ids))
        .group_by(AlertHold.silence_id)
    )
    return {
        silence_id: Held(count, int(total))
        for silence_id, count, total in rows
        if silence_id is not None
    }


async def holds_of(session: AsyncSession, silence_id: int, *, limit: int = 100) -> list[AlertHold]:
    query = (
        select(AlertHold)
        .where(AlertHold.silence_id == silence_id)
        .order_by(AlertHold.last_seen_at.desc(), AlertHold.id.desc())
        .limit(limit)
    )
    return list(await session.scalars(query))


async def end_silence(session: AsyncSession, silence_id: int, *, by: str, at: datetime) -> Silence:
    """End it now (idempotent: an expired silence is left as it was). What it held is released
    by the services (deployments/silences.py): an alert still firing opens then."""
    silence = await get_silence(session, silence_id, for_update=True)
    if silence.ends_at > at:
        silence.ends_at = at
        silence.ended_by = by
        await session.flush()
    return silence
