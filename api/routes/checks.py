"""Checks: what is declared, how each last ran, their runs, and running one now."""

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Path, Query, Request

from api.schemas.checks import CheckList, CheckRead, CheckRunRead, CheckRuns
from checks.config import CheckSpec
from checks.service import Checks
from models.base import utcnow
from models.check_run import CheckRun
from models.enums import RunTrigger

router = APIRouter(prefix="/checks", tags=["checks"])

CheckId = Annotated[str, Path(min_length=1, max_length=120)]


def _checks(request: Request) -> Checks:
    checks: Checks = request.app.state.checks
    return checks


def _read(
    checks: Checks, spec: CheckSpec, last: CheckRun | None, scheduled: CheckRun | None
) -> CheckRead:
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
        last_run=CheckRunRead.model_validate(last) if last else None,
        next_run_at=checks.next_run_at(spec, scheduled),
        stale=checks.is_stale(spec, scheduled, utcnow()),
    )


@router.get("")
async def list_checks(request: Request) -> CheckList:
    """Every declared check with its last result, next run and whether it has gone stale."""
    checks = _checks(request)
    last, scheduled = await checks.last_runs(), await checks.last_runs(RunTrigger.SCHEDULE)
    return CheckList(
        checks=[
            _read(checks, spec, last.get(spec.id), scheduled.get(spec.id))
            for spec in checks.specs.values()
        ]
    )


@router.get("/{check_id}/runs")
async def list_check_runs(
    check_id: CheckId, request: Request, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> CheckRuns:
    """The check's runs, newest first."""
    runs = await _checks(request).runs(check_id, limit)
    return CheckRuns(check_id=check_id, runs=[CheckRunRead.model_validate(r) for r in runs])


@router.post("/{check_id}/run")
async def run_check_now(
    check_id: CheckId, request: Request, background: BackgroundTasks
) -> CheckRunRead:
    """Evaluate the check now (as its schedule would) and return the recorded run."""
    return CheckRunRead.model_validate(await _checks(request).run_now(check_id, background))
