"""Incidents about a check itself, not what it measures: `INV_check_<id>_failing` (its query
kept erroring) and `INV_check_<id>_stale` (it stopped running, found by the watchdog).

Both carry the check's own severity and its id in `metadata.check_id`. Both end when the check
runs again without an error (models/services/checks.py resolves them): they describe the
monitor being broken, and a run that completes is proof that it works, whatever `auto_resolve`
says (that setting is about the system the check measures, where a human may want to confirm).

The watchdog runs in every API process; a pass is one transaction that first takes an advisory
lock on PostgreSQL (a process that finds it taken skips its pass) and writes at most one
recurrence per stale check per check interval, so N processes count a silence as one does.
SQLite needs no lock: write transactions start with BEGIN IMMEDIATE and take turns.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from models.enums import ACTIVE_STATUSES, IncidentKind, Severity
from models.errors import RateLimited
from models.incident import Incident
from models.services.incidents import IncidentCap, NewIncident, create_incident

Problem = Literal["failing", "stale"]
PROBLEMS: tuple[Problem, ...] = ("failing", "stale")
WATCHDOG_LOCK = 0x1A7E_C4EC  # one constant for every Intervene process
WATCHDOG = "watchdog"


def actor_of(check_id: str) -> str:
    return f"check:{check_id}"


def own_key(check_id: str, problem: Problem) -> str:
    return f"INV_check_{check_id}_{problem}"


def is_own(incident: Incident, check_id: str, problems: tuple[Problem, ...] = PROBLEMS) -> bool:
    """Whether `incident` is about the check `check_id` itself (one of `problems`)."""
    return incident.kind is IncidentKind.INVARIANT and incident.key in {
        own_key(check_id, problem) for problem in problems
    }


@dataclass(frozen=True)
class CheckProblem:
    """What an incident about a check says: the check, what went wrong, the run behind it."""

    check_id: str
    agent: str
    severity: Severity
    problem: Problem
    summary: str
    threshold: float
    actual: float
    check_run_id: int | None = None  # failing: the run that crossed the threshold

    def incident(self) -> NewIncident:
        metadata: dict[str, object] = {
            "agent": self.agent,
            "auto_created": True,
            "check_id": self.check_id,
        }
        if self.check_run_id is not None:
            metadata["check_run_id"] = self.check_run_id
        return NewIncident(
            kind=IncidentKind.INVARIANT,
            key=own_key(self.check_id, self.problem),
            severity=self.severity,
            summary=self.summary[:500],
            details={
                "invariant": {
                    "id": f"check_{self.problem}:{self.check_id}",
                    "threshold": self.threshold,
                    "actual": self.actual,
                }
            },
            metadata=metadata,
        )


async def open_check_incident(
    session: AsyncSession, problem: CheckProblem, *, cap: IncidentCap, at: datetime
) -> tuple[Incident, bool]:
    """Open the incident about the check, or count a repeat on the active one; whether new."""
    actor = WATCHDOG if problem.problem == "stale" else actor_of(problem.check_id)
    return await create_incident(session, new=problem.incident(), actor=actor, cap=cap, at=at)


async def take_watchdog_turn(session: AsyncSession) -> bool:
    """Whether this transaction may run the watchdog pass: False when another process is
    running one now (PostgreSQL; the lock ends with the transaction)."""
    connection = await session.connection()
    if connection.dialect.name != "postgresql":
        return True
    taken = await session.scalar(
        text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": WATCHDOG_LOCK}
    )
    return bool(taken)


@dataclass(frozen=True)
class Stale:
    """A check that stopped running: its problem, and its interval (one recurrence per)."""

    problem: CheckProblem
    every: float


async def record_stale(
    session: AsyncSession, stale: list[Stale], *, cap: IncidentCap, at: datetime
) -> list[tuple[Incident, bool]]:
    """Open an incident for each stale check, or count a recurrence on its active one unless
    one was counted within the check's interval; (incident, is new) for each written."""
    keys = sorted(own_key(s.problem.check_id, "stale") for s in stale)
    if not keys:
        return []
    locked = await session.scalars(  # row locks first, in one order, before any event
        select(Incident)
        .where(Incident.kind == IncidentKind.INVARIANT, Incident.key.in_(keys))
        .where(Incident.status.in_(ACTIVE_STATUSES))
        .order_by(Incident.key)
        .with_for_update()
    )
    active = {incident.key: incident for incident in locked}
    written = []
    for item in stale:
        problem = item.problem
        incident = active.get(own_key(problem.check_id, "stale"))
        if incident is not None:
            if (at - incident.last_seen_at).total_seconds() < item.every:
                continue  # counted within this interval already (by this or another process)
            incident.record_recurrence(
                actor=WATCHDOG,
                at=at,
                severity=problem.severity,
                notes=f"still silent after {problem.actual:.0f} s",
            )
            written.append((incident, False))
            continue
        try:  # the cap refuses before writing anything
            written.append(await open_check_incident(session, problem, cap=cap, at=at))
        except RateLimited:
            continue  # the cap holds this key back; tried again next pass
    await session.flush()
    return written
