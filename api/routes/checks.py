"""Checks: what is declared, how each last ran, their runs, and running one now."""

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, BackgroundTasks, Path, Query, Request
from fastapi.responses import JSONResponse

from api import check_launcher as prefect
from api.launcher import prefect_ui_url
from api.schemas.checks import CheckList, CheckRead, CheckRunRead, CheckRuns, CheckRunStarted
from checks.config import CheckSpec
from checks.service import Checks
from models.base import utcnow
from models.check_run import CheckRun
from models.enums import RunTrigger
from models.errors import Unavailable

router = APIRouter(prefix="/checks", tags=["checks"])

CheckId = Annotated[str, Path(min_length=1, max_length=120)]
NEXT_RUN_MARGIN_SECONDS = 60  # how far past the longest interval to look for next runs


def _checks(request: Request) -> Checks:
    checks: Checks = request.app.state.checks
    return checks


def _flow_run_url(request: Request, flow_run_id: str | None) -> str | None:
    ui = prefect_ui_url(_checks(request).settings.prefect_ui_url)
    return f"{ui}/runs/flow-run/{flow_run_id}" if ui and flow_run_id else None


def _run(request: Request, run: CheckRun) -> CheckRunRead:
    read = CheckRunRead.model_validate(run)
    read.flow_run_url = _flow_run_url(request, run.flow_run_id)
    return read


def _read(
    request: Request,
    spec: CheckSpec,
    last: CheckRun | None,
    scheduled: CheckRun | None,
    next_in_prefect: dict[str, datetime],
) -> CheckRead:
    checks = _checks(request)
    return CheckRead(
        id=spec.id,
        kind=spec.kind.value,
        agent=spec.agent,
        description=spec.description,
        query=spec.query,
        comparison=spec.comparison,
        threshold=spec.threshold,
        severity=spec.incident_severity.value,
        playbooks=list(spec.playbooks),
        every=spec.every,
        auto_resolve=spec.auto_resolve,
        budget=spec.budget,
        last_run=_run(request, last) if last else None,
        # Prefect's next scheduled run when it answers; else computed from the last one
        next_run_at=next_in_prefect.get(spec.id) or checks.next_run_at(spec, scheduled),
        stale=checks.is_stale(spec, scheduled, utcnow()),
    )


@router.get("")
async def list_checks(request: Request) -> CheckList:
    """Every declared check with its last result, next run and whether it has gone stale."""
    checks = _checks(request)
    last, scheduled = await checks.last_runs(), await checks.last_runs(RunTrigger.SCHEDULE)
    longest = max((spec.every for spec in checks.specs.values()), default=0)
    next_in_prefect = await prefect.next_scheduled(
        list(checks.specs), longest + NEXT_RUN_MARGIN_SECONDS
    )
    return CheckList(
        checks=[
            _read(request, spec, last.get(spec.id), scheduled.get(spec.id), next_in_prefect)
            for spec in checks.specs.values()
        ]
    )


@router.get("/{check_id}/runs")
async def list_check_runs(
    check_id: CheckId, request: Request, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> CheckRuns:
    """The check's runs, newest first."""
    runs = await _checks(request).runs(check_id, limit)
    return CheckRuns(check_id=check_id, runs=[_run(request, r) for r in runs])


@router.post(
    "/{check_id}/run",
    response_model=CheckRunRead,
    responses={202: {"model": CheckRunStarted, "description": "Started on Prefect (wait=0)"}},
)
async def run_check_now(
    check_id: CheckId,
    request: Request,
    background: BackgroundTasks,
    wait: Annotated[int, Query(ge=0, le=300)] = 60,
) -> CheckRunRead | JSONResponse:
    """Evaluate the check now and return the recorded run: on its Prefect deployment when a
    Prefect server is configured (waiting up to `wait` s), else in the API's process."""
    checks = _checks(request)
    checks.get(check_id)  # an unknown check is a 404 before anything starts
    if not prefect.prefect_configured():
        return _run(request, await checks.run_now(check_id, background))
    flow_run_id = str(await prefect.start_check_run(check_id))
    started = CheckRunStarted(
        check_id=check_id,
        flow_run_id=flow_run_id,
        flow_run_url=_flow_run_url(request, flow_run_id),
    )
    if wait == 0:
        return JSONResponse(started.model_dump(mode="json"), status_code=202)
    details = started.model_dump(mode="json") | {"deployment": prefect.deployment_name(check_id)}
    flow_run = await prefect.wait_for_end(UUID(flow_run_id), wait, details)
    run = await checks.run_of_flow_run(flow_run_id)
    if run is None:
        state = flow_run.state.name if flow_run.state else "unknown"
        message = flow_run.state.message if flow_run.state and flow_run.state.message else ""
        raise Unavailable(
            f"The check's flow run ended {state} without recording a run: {message}".rstrip(": "),
            details=details,
        )
    return _run(request, run)
