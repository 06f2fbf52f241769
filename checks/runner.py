"""Run a check end to end: measure, record the run, open or settle incidents."""

import asyncio
from typing import Any

from checks.config import CheckSpec
from checks.evaluate import describe, measure_batch, unmeasured
from checks.lineage import watched
from integrations.issue_opener import IssueOpener
from integrations.warehouse import open_warehouse
from models.check_run import CheckRun
from models.db import Database, transaction
from models.enums import IncidentKind, RunTrigger
from models.errors import RateLimited
from models.services.check_health import CheckProblem, open_check_incident
from models.services.checks import Measurement, OnFailure, consecutive_errors, record_runs
from models.services.incidents import IncidentCap, NewIncident
from models.settings import Settings


def incident_for(spec: CheckSpec, m: Measurement, nodes: tuple[str, ...] = ()) -> NewIncident:
    """The contract's details shape for each kind, the check's playbooks and agent; `nodes`
    are the dbt nodes it watches (checks/lineage.py)."""
    actual = m.value
    # the contract's fields, then how to read them (added, never in place of a field)
    measured: dict[str, Any] = {"threshold": spec.threshold, "actual": actual}
    measured |= {"comparison": spec.comparison}
    measured |= {"unit": spec.unit} if spec.unit else {}
    details: dict[str, Any]
    if spec.kind is IncidentKind.BUDGET:
        details = {"budget": {"id": spec.id, "type": spec.budget} | measured}
    elif spec.kind is IncidentKind.PLANNER:
        shape = {"id": spec.id} | measured
        # the query's other columns (version, stable...) follow; one named like a field loses
        details = {"planner": shape | {k: v for k, v in m.context.items() if k not in shape}}
    else:
        details = {"invariant": {"id": spec.id} | measured}
    unit = f" {spec.unit}" if spec.unit else ""
    shown = f"{actual:g}{unit}" if actual is not None else "?"
    what = spec.description.rstrip(".") or spec.id
    return NewIncident(
        kind=spec.kind,
        key=spec.incident_key(m.context),
        severity=spec.incident_severity,
        # the title stays true at every occurrence: the value lives in details and the timeline
        summary=f"{spec.agent}: {what}"[:500],
        said=f"value {shown} (must be {spec.comparison} {spec.threshold:g}{unit})",
        details=details,
        playbooks=list(spec.playbooks),
        metadata={"agent": spec.agent, "auto_created": True, "check_id": spec.id}
        | ({"playbook_params": spec.params} if spec.params else {})
        | ({"dbt_nodes": list(nodes)} if nodes else {}),
    )


async def record(
    spec: CheckSpec, measurement: Measurement, database: Database, settings: Settings
) -> CheckRun:
    """Record one run, then open the issue of the incident it opened, if any."""
    opened: list[int] = []
    run = (await record_many([(spec, measurement)], database, settings, opened=opened))[0]
    await IssueOpener(settings).open_for(database, opened)  # after commit, never blocking
    return run


async def record_many(
    measured: list[tuple[CheckSpec, Measurement]],
    database: Database,
    settings: Settings,
    *,
    opened: list[int] | None = None,
    trigger: RunTrigger = RunTrigger.SCHEDULE,
    flow_run_id: str | None = None,
) -> list[CheckRun]:
    """Record runs and their incidents in one transaction; a check that keeps erroring gets an
    incident of its own after INTERVENE_CHECK_ERROR_THRESHOLD errors in a row. The ids of the
    incidents it opens are added to `opened`, for the caller to open their issues
    (integrations/issue_opener.py) once it is done."""
    cap = IncidentCap(limit=settings.incident_cap_per_key, window=settings.incident_cap_window)
    lineage = watched(settings, [spec for spec, _ in measured])
    items = []
    for spec, m in measured:
        nodes = lineage.nodes(spec) if lineage else ()
        failure = incident_for(spec, m, nodes)
        items.append((m, OnFailure(failure, auto_resolve=spec.auto_resolve, nodes=nodes)))
    opened = [] if opened is None else opened
    async with transaction(database.writer) as session:
        runs = await record_runs(
            session,
            items=items,
            cap=cap,
            opened=opened,
            trigger=trigger,
            flow_run_id=flow_run_id,
            downstream=lineage.downstream if lineage else None,
        )
        for (spec, m), run in zip(measured, runs, strict=True):
            if m.error is None:
                continue
            errors = await consecutive_errors(session, spec.id, settings.check_error_threshold)
            if errors < settings.check_error_threshold:
                continue
            try:
                async with session.begin_nested():
                    problem = CheckProblem(
                        check_id=spec.id,
                        agent=spec.agent,
                        severity=spec.incident_severity,
                        problem="failing",
                        summary=f"Check {spec.id} failed {errors} times in a row: {m.error}",
                        threshold=settings.check_error_threshold,
                        actual=errors,
                        check_run_id=run.id,
                    )
                    incident, created = await open_check_incident(
                        session, problem, cap=cap, at=m.started_at
                    )
                run.incident_id = incident.id
                if created:
                    opened.append(incident.id)
            except RateLimited:
                pass  # the run is kept; the cap already holds this key's incidents back
    return runs


async def run_check(
    spec: CheckSpec,
    database: Database,
    settings: Settings,
    *,
    opened: list[int] | None = None,
    trigger: RunTrigger = RunTrigger.SCHEDULE,
    flow_run_id: str | None = None,
) -> CheckRun:
    runs = await sweep(
        [spec], database, settings, opened=opened, trigger=trigger, flow_run_id=flow_run_id
    )
    return runs[0]


SWEEP_CHUNK = 250  # checks per pipeline and per transaction (bench/checks_sweep.py)


async def sweep(
    specs: list[CheckSpec],
    database: Database,
    settings: Settings,
    *,
    opened: list[int] | None = None,
    trigger: RunTrigger = RunTrigger.SCHEDULE,
    flow_run_id: str | None = None,
) -> list[CheckRun]:
    """Measure checks in chunks through one warehouse connection (in a thread; pipelined on
    PostgreSQL) while the previous chunk is recorded (a transaction per chunk): warehouse time
    and bookkeeping overlap instead of adding up. Issues for the incidents it opens wait for
    the end of the sweep (or for the caller, given `opened`), never a chunk's recording."""
    issues_now = opened is None
    opened = [] if opened is None else opened
    chunks = [specs[i : i + SWEEP_CHUNK] for i in range(0, len(specs), SWEEP_CHUNK)]
    loop = asyncio.get_running_loop()
    measured: asyncio.Queue[list[tuple[CheckSpec, Measurement]] | None] = asyncio.Queue()

    def hand_over(batch: list[tuple[CheckSpec, Measurement]] | None) -> None:
        loop.call_soon_threadsafe(measured.put_nowait, batch)

    def measure_all() -> None:
        done = 0
        try:
            with open_warehouse(settings.warehouse_url, read_only=True) as conn:
                for chunk in chunks:
                    hand_over(list(zip(chunk, measure_batch(conn, chunk), strict=True)))
                    done += 1
        except Exception as exc:  # the warehouse is unreachable: the rest report it
            error = describe(exc)
            for chunk in chunks[done:]:
                hand_over([(spec, unmeasured(spec, error)) for spec in chunk])
        finally:
            hand_over(None)

    measuring = asyncio.create_task(asyncio.to_thread(measure_all))
    runs: list[CheckRun] = []
    while (batch := await measured.get()) is not None:
        runs += await record_many(
            batch, database, settings, opened=opened, trigger=trigger, flow_run_id=flow_run_id
        )
    await measuring
    if issues_now:
        await IssueOpener(settings).open_for(database, opened)
    return runs
