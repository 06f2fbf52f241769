"""Automatic remediation: the switch (read by viewers, thrown by admins) and the retry that
releases an incident automation gave up on (remediation/loop.py does the work)."""

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Request
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from alerts.rules import AlertRules
from api.auth import AdminDep, PrincipalDep
from api.deps import SessionDep, SettingsDep
from api.openapi import Error
from api.schemas.automation import AutomationRead, RemediationRead, SwitchRequest
from checks.service import Checks
from models.base import utcnow
from models.errors import Conflict
from models.remediation import AutomationState
from models.services import remediations as store
from models.services.incidents import get_incident
from models.settings import Settings
from remediation import view

router = APIRouter(tags=["automation"])

IncidentId = Annotated[int, Path(ge=1, le=2**63 - 1, description="Incident ID")]
OptionalSwitch = Annotated[SwitchRequest | None, Body()]


async def get_policies(request: Request) -> view.Policies:
    """The remediation policies of the declared checks and alert routing rules, as the app
    loaded them."""
    checks: Checks = request.app.state.checks
    rules: AlertRules = request.app.state.alert_rules
    return view.Policies(checks.specs, rules)


PoliciesDep = Annotated[view.Policies, Depends(get_policies)]


@router.get("/automation")
async def get_automation(
    session: SessionDep, settings: SettingsDep, policies: PoliciesDep
) -> AutomationRead:
    """Whether automation runs, who switched it last, the hourly budgets left, what is in
    flight."""
    return AutomationRead.of(await view.automation(session, settings, policies, utcnow()))


@router.post("/automation/pause")
async def pause_automation(
    session: SessionDep,
    settings: SettingsDep,
    policies: PoliciesDep,
    principal: AdminDep,
    body: OptionalSwitch = None,
) -> AutomationRead:
    """Stop automatic remediation: no attempt starts or executes until resumed (idempotent)."""
    return await _switch(session, settings, policies, paused=True, by=principal.name, body=body)


@router.post("/automation/resume")
async def resume_automation(
    session: SessionDep,
    settings: SettingsDep,
    policies: PoliciesDep,
    principal: AdminDep,
    body: OptionalSwitch = None,
) -> AutomationRead:
    """Let automatic remediation run again (idempotent)."""
    return await _switch(session, settings, policies, paused=False, by=principal.name, body=body)


@router.post(
    "/incidents/{incident_id}/remediation/retry",
    responses={409: {"model": Error, "description": "Nothing holds automation off it"}},
)
async def retry_remediation(
    incident_id: IncidentId, session: SessionDep, policies: PoliciesDep, principal: PrincipalDep
) -> RemediationRead:
    """Release an incident automation gave up on: its next violation may start a new round."""
    incident = await get_incident(session, incident_id, for_update=True)
    now = utcnow()
    released = await store.release(session, incident_id, by=principal.name, at=now)
    if not released:
        raise Conflict(
            f"Automation holds nothing on incident {incident_id}: no give-up waits for a retry",
            details={"incident_id": incident_id},
        )
    ids = ", ".join(str(attempt.id) for attempt in released)
    incident.note(
        actor=principal.name,
        verb="remediation_retry",
        notes=f"released remediation {ids}: automation may try again",
        at=now,
    )
    await session.flush()
    remediation = RemediationRead.of(await view.incident_remediation(session, incident, policies))
    assert remediation is not None  # it has attempts: the ones just released
    return remediation


async def _switch(
    session: AsyncSession,
    settings: Settings,
    policies: view.Policies,
    *,
    paused: bool,
    by: str,
    body: SwitchRequest | None,
) -> AutomationRead:
    state = await _locked_state(session)
    now = utcnow()  # under the row's lock: the last switch committed has the newest time
    state.paused, state.changed_by, state.changed_at = paused, by, now
    state.reason = body.reason if body else None
    await session.flush()
    return AutomationRead.of(await view.automation(session, settings, policies, now))


async def _locked_state(session: AsyncSession) -> AutomationState:
    """The switch's row, locked. The migration made it; where it is missing, the first of
    racing writers makes it and the others, refused by its key, lock the one it made."""
    try:
        async with session.begin_nested():
            return await store.automation(session, lock=True)
    except IntegrityError:
        return await store.automation(session, lock=True)
