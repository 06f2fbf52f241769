"""Check runs and what they do to incidents.

A failing run opens an incident for its key, or counts a repeat on the active one (the
incident service's dedup and per-key cap apply). A run that passes after a failing one notes it
on the active incident's timeline and, with `auto_resolve`, resolves it; for a planner check
that includes the incidents it opened for earlier canary versions (found by the check id in
their metadata). A check whose query keeps failing, or that stops running, gets an incident of
its own (models/services/check_health.py), resolved by its next run without an error.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    BindParameter,
    String,
    and_,
    any_,
    bindparam,
    func,
    or_,
    select,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import TypeEngine

from models.bulk import insert_all
from models.check_run import CheckRun
from models.enums import ACTIVE_STATUSES, IncidentKind, RunTrigger, Verb
from models.incident import Incident
from models.services.check_health import PROBLEMS, Problem, actor_of, is_own
from models.services.check_open import Pending, open_for_failures
from models.services.check_related import Downstream, Watching, join_upstream, settle
from models.services.incidents import IncidentCap, NewIncident, transition_incident
from models.services.planner import snapshot as planner_snapshot


@dataclass(frozen=True)
class Measurement:
    check_id: str
    started_at: datetime
    duration_ms: float
    threshold: float
    value: float | None = None
    passed: bool | None = None
    error: str | None = None
    context: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OnFailure:
    """The incident a failing run opens (its details and metadata get the run id added)."""

    incident: NewIncident
    auto_resolve: bool = False
    nodes: tuple[str, ...] = ()  # the dbt nodes its query reads (check_related.py)


@dataclass
class Active:
    """The active incidents a batch may touch, locked: by (kind, key), and by the check that
    opened them (`metadata.check_id`)."""

    by_key: dict[tuple[IncidentKind, str], Incident]
    by_check: dict[str, list[Incident]]

    def of_check(self, check_id: str) -> list[Incident]:
        return self.by_check.get(check_id, [])


async def record_runs(
    session: AsyncSession,
    *,
    items: list[tuple[Measurement, OnFailure]],
    cap: IncidentCap,
    opened: list[int] | None = None,
    trigger: RunTrigger = RunTrigger.SCHEDULE,
    flow_run_id: str | None = None,
    downstream: Downstream | None = None,
) -> list[CheckRun]:
    """Record a sweep's runs in one go (one lookup, one insert), then act on each outcome.
    The ids of incidents this opened (not those it counted again) are added to `opened`;
    `flow_run_id` is the Prefect flow run the runs were measured in (None: in-process). With
    `downstream` (the dbt lineage), a failing run whose nodes are downstream of an active dbt
    incident joins it instead of opening its own (check_related.py)."""
    # any run without an error shows the query works again; only the schedule's show that it
    # runs again (a stale check's incident stays until then, whoever presses "Run now")
    settles: tuple[Problem, ...] = PROBLEMS if trigger is RunTrigger.SCHEDULE else ("failing",)
    active = await _lock_active(
        session,
        [f.incident for m, f in items if m.passed is not None],
        sorted({m.check_id for m, _ in items}),
    )
    # whether a passing run is a recovery depends on the run before it: read before inserting,
    # and only for the checks that pass now while an incident of theirs is active (few, if any)
    previous = await last_outcomes(
        session, [m.check_id for m, f in items if m.passed and _recovering(active, m, f)]
    )
    idle = await _not_serving(session, items)
    rows = [
        {
            "check_id": m.check_id,
            "started_at": m.started_at,
            "duration_ms": m.duration_ms,
            "value": m.value,
            "threshold": m.threshold,
            "passed": m.passed,
            "error": m.error,
            "context": m.context | ({"not_serving": idle[n]} if n in idle else {}),
            "trigger": trigger.value,
            "flow_run_id": flow_run_id,
        }
        for n, (m, _) in enumerate(items)
    ]
    runs = await insert_all(session, CheckRun, rows)
    pending: list[Pending] = []  # failing runs whose key has no active incident
    watching: list[Watching] = []  # those that read dbt nodes, which may join an upstream one
    settled: list[Watching] = []
    for n, (run, (m, on_failure)) in enumerate(zip(runs, items, strict=True)):
        new = on_failure.incident
        incident = active.by_key.get((new.kind, new.key))
        if m.passed is not None:  # it ran: whatever said it was broken is over
            for own in [i for i in active.of_check(m.check_id) if is_own(i, m.check_id, settles)]:
                await _runs_again(session, run, own)
        if n in idle:
            continue  # recorded as failing; nobody is served by that version: no incident
        if m.passed is False and incident is not None:
            # a repeat: counted in memory, written with the whole batch at the final flush
            incident.record_recurrence(
                actor=actor_of(m.check_id), at=m.started_at, severity=new.severity, said=new.said
            )
            run.incident_id = incident.id
        elif m.passed is False and downstream is not None and on_failure.nodes:
            watching.append(Watching(run, new, on_failure.nodes))
        elif m.passed is False:
            pending.append((run, new))
        elif m.passed and previous.get(m.check_id) is not True:
            # passing after a failure, or after errors that followed one
            for recovered in _recovering(active, m, on_failure):
                await _recovered(session, run, recovered, on_failure.auto_resolve)
        if m.passed and on_failure.nodes:
            settled.append(Watching(run, new, on_failure.nodes))
    if downstream is not None:
        alone = await join_upstream(session, watching, downstream)
        pending += [(item.run, item.new) for item in alone]
        await settle(session, settled)
    created = await open_for_failures(session, pending, cap)
    if opened is not None:
        opened += created
    await session.flush()
    return runs


async def _not_serving(
    session: AsyncSession, items: list[tuple[Measurement, OnFailure]]
) -> dict[int, str]:
    """The failing planner runs (by position) whose canary version serves no traffic in the
    planner state, with why: once rolled back, the version's regression harms no one, so it
    neither counts on its incident nor opens a new one after that is resolved. A planner that
    Intervene does not manage (no state) is always taken as serving."""
    failing = {
        n: str(m.context["version"])
        for n, (m, f) in enumerate(items)
        if m.passed is False
        and f.incident.kind is IncidentKind.PLANNER
        and m.context.get("version")
    }
    if not failing:
        return {}
    planner = await planner_snapshot(session)
    if not planner.traffic:
        return {}
    return {
        n: f"{version} serves no traffic (planner state): no incident"
        for n, version in failing.items()
        if planner.share(version) == 0
    }


def _recovering(active: Active, m: Measurement, on_failure: OnFailure) -> list[Incident]:
    """The active incidents a passing run settles: the one with the run's key and, for a
    planner check, those it opened for earlier canary versions (keyed by their version)."""
    new = on_failure.incident
    found = active.by_key.get((new.kind, new.key))
    settled = [found] if found is not None else []
    if new.kind is IncidentKind.PLANNER:
        settled += [
            incident
            for incident in active.of_check(m.check_id)
            if incident.kind is IncidentKind.PLANNER and incident is not found
        ]
    return settled


async def _lock_active(
    session: AsyncSession, incidents: list[NewIncident], check_ids: list[str]
) -> Active:
    """Lock the active incidents a batch may touch, in one order, before it writes any event:
    the event lock (models.event) is then always taken after the row locks, never before.
    Those are the incidents with the batch's keys and those its checks opened under another
    key (a planner's earlier canary versions, a check's own failing or stale incident)."""
    keys = sorted({(new.kind.value, new.key) for new in incidents})
    if not keys and not check_ids:
        return Active({}, {})
    opened_by = Incident.metadata_["check_id"].as_string()
    if (await session.connection()).dialect.name == "postgresql":
        # three array parameters, however large the batch: a list of 500 placeholders costs
        # PostgreSQL ~8 ms to plan and the client more to render, per chunk. The kinds and keys
        # match as two sets, a superset of the pairs: keys carry their kind's prefix, and
        # locking one more active incident in the same order is harmless.
        wanted = or_(
            and_(
                Incident.kind == any_(_text_array(sorted({kind for kind, _ in keys}))),
                Incident.key == any_(_text_array([key for _, key in keys])),
            ),
            opened_by == any_(_text_array(check_ids)),
        )
    else:
        wanted = or_(tuple_(Incident.kind, Incident.key).in_(keys), opened_by.in_(check_ids))
    rows = await session.scalars(
        select(Incident)
        .where(wanted)
        .where(Incident.status.in_(ACTIVE_STATUSES))
        .order_by(Incident.kind, Incident.key)
        .with_for_update()
    )
    active = Active({}, {})
    for incident in rows:
        active.by_key[(incident.kind, incident.key)] = incident
        check_id = incident.metadata_.get("check_id")
        if isinstance(check_id, str):
            active.by_check.setdefault(check_id, []).append(incident)
    return active


_TEXT_ARRAY: TypeEngine[Any] = ARRAY(String)


def _text_array(values: list[str]) -> BindParameter[Any]:
    """One PostgreSQL text[] parameter (for `column = ANY(...)`)."""
    return bindparam(None, values, type_=_TEXT_ARRAY)


async def _recovered(
    session: AsyncSession, run: CheckRun, incident: Incident, auto_resolve: bool
) -> None:
    notes = (
        f"Check {run.check_id} passes again (value {run.value:g}, threshold {run.threshold:g}, "
        f"run {run.id})"
    )
    run.incident_id = incident.id
    if auto_resolve:
        await transition_incident(
            session,
            incident_id=incident.id,
            verb=Verb.RESOLVE,
            actor=actor_of(run.check_id),
            notes=f"{notes}; resolved automatically",
            at=run.started_at,
        )
    else:
        incident.note(
            actor=actor_of(run.check_id), verb="check_passing", notes=notes, at=run.started_at
        )


async def _runs_again(session: AsyncSession, run: CheckRun, incident: Incident) -> None:
    """A check that was failing to run or silent ran without an error: its own incident is
    over (resolved whatever `auto_resolve` says: see models/services/check_health.py)."""
    outcome = "passed" if run.passed else "failed"
    await transition_incident(
        session,
        incident_id=incident.id,
        verb=Verb.RESOLVE,
        actor=actor_of(run.check_id),
        notes=f"Check {run.check_id} runs again without an error (run {run.id}, {outcome}); "
        "resolved automatically",
        at=run.started_at,
    )


async def consecutive_errors(session: AsyncSession, check_id: str, limit: int) -> int:
    recent = await session.scalars(
        select(CheckRun.error)
        .where(CheckRun.check_id == check_id)
        .order_by(CheckRun.started_at.desc(), CheckRun.id.desc())
        .limit(limit)
    )
    count = 0
    for error in recent:
        if error is None:
            break
        count += 1
    return count


async def last_runs(
    session: AsyncSession,
    check_ids: list[str] | None = None,
    *,
    trigger: RunTrigger | None = None,
) -> dict[str, CheckRun]:
    """The newest run of every check that has run (of `check_ids` only, started by `trigger`
    only, when given)."""
    newest_query = select(CheckRun.check_id, func.max(CheckRun.id).label("id"))
    if check_ids is not None:
        newest_query = newest_query.where(CheckRun.check_id.in_(check_ids))
    if trigger is not None:
        newest_query = newest_query.where(CheckRun.trigger == trigger.value)
    newest = newest_query.group_by(CheckRun.check_id).subquery()
    rows = await session.scalars(select(CheckRun).join(newest, CheckRun.id == newest.c.id))
    return {run.check_id: run for run in rows}


async def last_outcomes(session: AsyncSession, check_ids: list[str]) -> dict[str, bool | None]:
    """Whether the newest run of each of `check_ids` passed (None: it errored)."""
    if not check_ids:
        return {}
    newest = (
        select(func.max(CheckRun.id).label("id"))
        .where(CheckRun.check_id.in_(check_ids))
        .group_by(CheckRun.check_id)
    )
    rows = await session.execute(
        select(CheckRun.check_id, CheckRun.passed).where(CheckRun.id.in_(newest))
    )
    return {check_id: passed for check_id, passed in rows}


async def run_of_flow_run(session: AsyncSession, flow_run_id: str) -> CheckRun | None:
    """The check run a Prefect flow run recorded (None: it recorded none, or not yet)."""
    return await session.scalar(
        select(CheckRun).where(CheckRun.flow_run_id == flow_run_id).order_by(CheckRun.id).limit(1)
    )


async def list_runs(session: AsyncSession, check_id: str, *, limit: int) -> list[CheckRun]:
    query = (
        select(CheckRun)
        .where(CheckRun.check_id == check_id)
        .order_by(CheckRun.started_at.desc(), CheckRun.id.desc())
        .limit(limit)
    )
    return list(await session.scalars(query))
