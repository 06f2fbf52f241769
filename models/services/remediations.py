"""The remediation loop's reads and writes: attempts, their leases, the budgets, the switch.

Everything that must hold across processes is decided here by the database: one attempt in
flight per key (the unique index: `start` returns None to the loser), one process moving an
attempt at a time (`lease`, a compare-and-set on `lease_until`), and the hourly budgets,
counted under the automation row's lock so that two processes never both take the last one.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from models.check_run import CheckRun
from models.enums import ACTIVE_STATUSES, Verb
from models.incident import Incident, TimelineEntry
from models.remediation import AutomationState, Remediation

HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class Failing:
    """An active incident with automatic remediation, and its newest violation: a check's run
    that found it (`check_id`, `run_id`), or the last time a routed alert fired (`rule`)."""

    incident: Incident
    check_id: str | None
    run_id: int | None
    run_started_at: datetime
    rule: str | None = None


@dataclass(frozen=True)
class Budget:
    """Automatic executions left this hour: of the action type, and of all together."""

    action_type: str
    action_left: int
    total_left: int

    @property
    def allows(self) -> bool:
        return self.action_left > 0 and self.total_left > 0


async def automation(session: AsyncSession, *, lock: bool = False) -> AutomationState:
    query = select(AutomationState).where(AutomationState.id == 1)
    if lock:
        query = query.with_for_update()
    state = await session.scalar(query)
    if state is None:  # the migration made it; a database made from the models alone may not
        state = AutomationState(id=1, paused=False)
        if lock:  # a writer that means to change it: it is made now
            session.add(state)
            await session.flush()
    return state


async def failing(session: AsyncSession, check_ids: Iterable[str]) -> list[Failing]:
    """Each active incident that one of `check_ids` opened or counted, with its newest run that
    found a violation (not an error: a query that cannot run is not fixed by the playbook)."""
    ids = sorted(set(check_ids))
    if not ids:
        return []
    active = select(Incident.id).where(Incident.status.in_(ACTIVE_STATUSES))
    newest = (
        select(
            CheckRun.incident_id,
            CheckRun.check_id,
            func.max(CheckRun.id).label("run_id"),
        )
        .where(
            CheckRun.incident_id.in_(active),
            CheckRun.check_id.in_(ids),
            CheckRun.passed.is_(False),
            CheckRun.error.is_(None),
        )
        .group_by(CheckRun.incident_id, CheckRun.check_id)
        .subquery()
    )
    rows = await session.execute(
        select(Incident, newest.c.check_id, newest.c.run_id, CheckRun.started_at)
        .join(newest, newest.c.incident_id == Incident.id)
        .join(CheckRun, CheckRun.id == newest.c.run_id)
        .order_by(Incident.id)
    )
    return [
        Failing(cast(Incident, incident), str(check_id), cast(int, run_id), cast(datetime, at))
        for incident, check_id, run_id, at in rows
    ]


async def alerting(session: AsyncSession, rules: Iterable[str]) -> list[Failing]:
    """Each active incident an alert routed by one of `rules` opened, with when it last fired."""
    names = sorted(set(rules))
    if not names:
        return []
    rule = Incident.metadata_["rule"].as_string()
    query = (
        select(Incident)
        .where(Incident.status.in_(ACTIVE_STATUSES), rule.in_(names))
        .order_by(Incident.id)
    )
    return [
        Failing(incident, None, None, incident.last_seen_at, rule=incident.metadata_["rule"])
        for incident in await session.scalars(query)
    ]


async def resolution(
    session: AsyncSession, incident_id: int, since: datetime
) -> TimelineEntry | None:
    """The newest resolve of the incident since `since` (who, when), if any."""
    query = (
        select(TimelineEntry)
        .where(
            TimelineEntry.incident_id == incident_id,
            TimelineEntry.verb == Verb.RESOLVE.value,
            TimelineEntry.at >= since,
        )
        .order_by(TimelineEntry.id.desc())
        .limit(1)
    )
    found: TimelineEntry | None = await session.scalar(query)
    return found


async def of_incident(session: AsyncSession, incident_id: int) -> list[Remediation]:
    query = (
        select(Remediation).where(Remediation.incident_id == incident_id).order_by(Remediation.id)
    )
    return list(await session.scalars(query))


async def of_incidents(
    session: AsyncSession, incident_ids: list[int]
) -> dict[int, list[Remediation]]:
    found: dict[int, list[Remediation]] = {incident_id: [] for incident_id in incident_ids}
    if not incident_ids:
        return found
    query = (
        select(Remediation)
        .where(Remediation.incident_id.in_(incident_ids))
        .order_by(Remediation.id)
    )
    for remediation in await session.scalars(query):
        found[remediation.incident_id].append(remediation)
    return found


async def in_flight(session: AsyncSession) -> list[Remediation]:
    query = select(Remediation).where(Remediation.finished_at.is_(None)).order_by(Remediation.id)
    return list(await session.scalars(query))


async def start(session: AsyncSession, values: dict[str, Any]) -> Remediation | None:
    """Insert an attempt; None when its key has one in flight already (another opener won)."""
    remediation = Remediation(**values)
    try:
        async with session.begin_nested():
            session.add(remediation)
            await session.flush()
    except IntegrityError:
        return None
    return remediation


async def lease(
    session: AsyncSession, remediation_id: int, *, owner: str, now: datetime, seconds: float
) -> Remediation | None:
    """Take the attempt for `seconds` (None: another process holds it, or it is finished)."""
    taken = await session.execute(
        update(Remediation)
        .where(
            Remediation.id == remediation_id,
            Remediation.finished_at.is_(None),
            or_(
                Remediation.lease_until.is_(None),
                Remediation.lease_until < now,
                Remediation.lease_owner == owner,
            ),
        )
        .values(lease_owner=owner, lease_until=now + timedelta(seconds=seconds))
        .execution_options(synchronize_session=False)
    )
    if getattr(taken, "rowcount", 0) != 1:
        return None
    return await session.get(Remediation, remediation_id, populate_existing=True)


async def give_back(session: AsyncSession, remediation_id: int, *, owner: str) -> None:
    await session.execute(
        update(Remediation)
        .where(Remediation.id == remediation_id, Remediation.lease_owner == owner)
        .values(lease_owner=None, lease_until=None)
        .execution_options(synchronize_session=False)
    )


async def budget(
    session: AsyncSession, action_type: str, *, action_limit: int, total_limit: int, now: datetime
) -> Budget:
    """What is left of the hour's budgets (the caller holds the automation row's lock when it
    means to spend one)."""
    since = now - HOUR
    counted = await session.execute(
        select(Remediation.action_type, func.count())
        .where(Remediation.executed_at > since)
        .group_by(Remediation.action_type)
    )
    per_type: dict[str, int] = {action: n for action, n in counted.all()}
    total = sum(per_type.values())
    return Budget(
        action_type=action_type,
        action_left=max(0, action_limit - per_type.get(action_type, 0)),
        total_left=max(0, total_limit - total),
    )


async def executed_in_last_hour(session: AsyncSession, now: datetime) -> dict[str, int]:
    counted = await session.execute(
        select(Remediation.action_type, func.count())
        .where(Remediation.executed_at > now - HOUR)
        .group_by(Remediation.action_type)
    )
    return {action: n for action, n in counted.all()}


async def release(
    session: AsyncSession, incident_id: int, *, by: str, at: datetime
) -> list[Remediation]:
    """Lift the hold that given-up attempts keep on the incident; those it released."""
    held = list(
        await session.scalars(
            select(Remediation).where(
                and_(
                    Remediation.incident_id == incident_id,
                    Remediation.gave_up.is_(True),
                    Remediation.released_at.is_(None),
                )
            )
        )
    )
    for remediation in held:
        remediation.released_at, remediation.released_by = at, by
        remediation.updated_at = at
    return held
