"""Approval requests: ask (responder), list, approve or reject (another approver)."""

from typing import Annotated

from fastapi import APIRouter, Path, Request

from api.auth import ApproverDep, PrincipalDep
from api.schemas.approvals import (
    ApprovalCreate,
    ApprovalDecided,
    ApprovalList,
    ApprovalRead,
    Decision,
)
from api.schemas.playbooks import ActionRead
from models.access import ApprovalRequest
from playbooks.approvals import Approvals, shown_status

router = APIRouter(
    prefix="/playbooks/incidents/{incident_id}/actions/approvals", tags=["approvals"]
)

IncidentId = Annotated[int, Path(ge=1, le=2**63 - 1, description="Incident ID")]
ApprovalId = Annotated[int, Path(ge=1, le=2**63 - 1, description="Approval request ID")]


def _approvals(request: Request) -> Approvals:
    approvals: Approvals = request.app.state.approvals
    return approvals


def _read(request: ApprovalRequest) -> ApprovalRead:
    read = ApprovalRead.model_validate(request)
    return read.model_copy(update={"status": shown_status(request)})


@router.post("", status_code=201)
async def request_approval(
    incident_id: IncidentId, body: ApprovalCreate, principal: PrincipalDep, request: Request
) -> ApprovalRead:
    """Ask for an execution (or rollback) that needs approval; another approver decides."""
    created = await _approvals(request).request(incident_id, body, principal)
    return _read(created)


@router.get("")
async def list_approvals(incident_id: IncidentId, request: Request) -> ApprovalList:
    approvals = await _approvals(request).list(incident_id)
    return ApprovalList(incident_id=incident_id, approvals=[_read(a) for a in approvals])


@router.get("/{approval_id}")
async def get_approval(
    incident_id: IncidentId, approval_id: ApprovalId, request: Request
) -> ApprovalRead:
    return _read(await _approvals(request).get(incident_id, approval_id))


@router.post("/{approval_id}/approve")
async def approve(
    incident_id: IncidentId,
    approval_id: ApprovalId,
    principal: ApproverDep,
    request: Request,
    body: Decision | None = None,
) -> ApprovalDecided:
    """Approve and run exactly the requested params, once."""
    notes = body.notes if body else None
    approvals = _approvals(request)
    decided, action = await approvals.approve(incident_id, approval_id, principal, notes)
    available = await approvals.playbooks.rollback_available(action)
    return ApprovalDecided(
        approval=_read(decided), action=ActionRead.of(action, rollback_available=available)
    )


@router.post("/{approval_id}/reject")
async def reject(
    incident_id: IncidentId,
    approval_id: ApprovalId,
    principal: ApproverDep,
    request: Request,
    body: Decision | None = None,
) -> ApprovalDecided:
    notes = body.notes if body else None
    decided = await _approvals(request).reject(incident_id, approval_id, principal, notes)
    return ApprovalDecided(approval=_read(decided))
