"""Reading and changing the planner's traffic; every change is recorded with who and why."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models.errors import BadRequest, Conflict
from models.planner import PlannerChange, PlannerState


@dataclass(frozen=True)
class PlannerSnapshot:
    """The planner as a plan sees it (read-only, no session attached)."""

    traffic: dict[str, int] = field(default_factory=dict)
    stable_version: str | None = None
    canary_version: str | None = None

    def share(self, version: str) -> int:
        return self.traffic.get(version, 0)

    def as_state(self) -> dict[str, Any]:
        return {
            "traffic": dict(self.traffic),
            "stable_version": self.stable_version,
            "canary_version": self.canary_version,
        }


def snapshot_of(state: PlannerState | None) -> PlannerSnapshot:
    if state is None:
        return PlannerSnapshot()
    return PlannerSnapshot(
        traffic={k: int(v) for k, v in state.traffic.items()},
        stable_version=state.stable_version,
        canary_version=state.canary_version,
    )


async def get_state(session: AsyncSession, *, for_update: bool = False) -> PlannerState | None:
    query = select(PlannerState).where(PlannerState.id == 1)
    if for_update:
        query = query.with_for_update()
    return await session.scalar(query)


async def snapshot(session: AsyncSession) -> PlannerSnapshot:
    return snapshot_of(await get_state(session))


def moved(traffic: dict[str, int], version: str, target: int, to_version: str) -> dict[str, int]:
    """`traffic` with `version` at `target` percent, the difference taken from (or given to)
    `to_version`; versions left at 0 percent are dropped."""
    result = dict(traffic)
    delta = result.get(version, 0) - target
    result[version] = target
    result[to_version] = result.get(to_version, 0) + delta
    if result[to_version] < 0:
        raise BadRequest(f"{to_version} cannot give up {-delta}% of traffic it does not have")
    return {k: v for k, v in sorted(result.items()) if v > 0}


async def set_traffic(
    session: AsyncSession,
    *,
    traffic: dict[str, int],
    change: str,
    actor: str,
    at: datetime,
    action_id: int | None = None,
    stable_version: str | None = None,
    canary_version: str | None = None,
    clear_canary: bool = False,
    clear_stable: bool = False,
    expect: dict[str, int] | None = None,
) -> PlannerChange:
    """Set the traffic; with `expect`, only if it still is what the caller planned from (a
    concurrent change makes this a Conflict instead of silently overwriting it)."""
    if traffic and sum(traffic.values()) != 100:
        raise BadRequest(f"traffic must sum to 100%, not {sum(traffic.values())}%")
    state = await get_state(session, for_update=True)
    found = {k: int(v) for k, v in state.traffic.items()} if state else {}
    if expect is not None and found != expect:
        raise Conflict(
            f"the planner changed since this was planned (expected {expect}, found {found})",
            details={"expected": expect, "found": found},
        )
    if state is None:
        state = PlannerState(id=1, traffic={})
        session.add(state)
    before = snapshot_of(state).as_state()
    state.traffic = dict(traffic)
    if stable_version is not None or clear_stable:
        state.stable_version = stable_version
    if canary_version is not None or clear_canary:
        state.canary_version = canary_version
    state.updated_at = at
    record = PlannerChange(
        at=at,
        actor=actor,
        action_id=action_id,
        change=change[:200],
        before=before,
        after=snapshot_of(state).as_state(),
    )
    session.add(record)
    await session.flush()
    return record


async def restore(
    session: AsyncSession,
    *,
    prior: dict[str, Any],
    actor: str,
    at: datetime,
    action_id: int,
    undoing: int | None,
) -> PlannerChange:
    """Put the planner back exactly as `prior` (a snapshot's as_state()) had it."""
    return await set_traffic(
        session,
        traffic={k: int(v) for k, v in prior["traffic"].items()},
        change=f"rolled back action {undoing}: traffic as it was before it",
        actor=actor,
        at=at,
        action_id=action_id,
        stable_version=prior.get("stable_version"),
        canary_version=prior.get("canary_version"),
        clear_canary=prior.get("canary_version") is None,
        clear_stable=prior.get("stable_version") is None,
    )


async def list_changes(session: AsyncSession, *, limit: int = 50) -> list[PlannerChange]:
    query = select(PlannerChange).order_by(PlannerChange.id.desc()).limit(limit)
    return list(await session.scalars(query))
