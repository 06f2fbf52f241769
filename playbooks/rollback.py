"""Roll back an executed action: check it can be (playbooks/rollbacks.py says why not), gate,
claim quota and record the rollback under the incident's row lock, then launch and wait.

Undoing needs approval when the original did, or when it would raise a canary's traffic.
"""

from sqlalchemy.ext.asyncio import AsyncSession

from models.access import Principal
from models.action import Action
from models.base import utcnow
from models.db import transaction
from models.enums import ActionStatus
from models.errors import BadRequest
from models.services import actions as service
from models.services import planner as planner_service
from models.services import rollbacks as rollback_service
from models.services.incidents import get_incident
from playbooks import rollbacks
from playbooks.approval_rules import gate_direct
from playbooks.catalog import ActionSpec, get_action_spec
from playbooks.engine import Engine
from playbooks.requests import RollbackRequest
from playbooks.runs import launch, wait_for


async def rollback(
    engine: Engine,
    incident_id: int,
    action_id: int,
    body: RollbackRequest,
    *,
    principal: Principal,
    wait: float,
    approved_request: bool = False,
) -> Action:
    at = utcnow()
    async with transaction(engine.database.writer) as session:
        await get_incident(session, incident_id, for_update=True)  # rollbacks take turns
        original, spec, needs_approval = await _target(session, incident_id, action_id)
        await _not_rolled_back(session, action_id)
        if not approved_request:
            _gate(engine, original, body, principal, needs_approval=needs_approval)
        await service.claim_quota(
            session,
            incident_id=incident_id,
            dry_run=False,
            limit=engine.limit(dry_run=False),
            at=at,
        )
        new = _rollback_of(original, body, needs_approval=needs_approval)
        undoing = await service.record_action(session, new=new, status=ActionStatus.PENDING, at=at)
    undoing = await launch(engine, spec, undoing, rollback=True)
    return await wait_for(engine, undoing, wait)


async def preview(engine: Engine, incident_id: int, action_id: int) -> tuple[Action, bool]:
    """The action a rollback would undo, and whether that rollback needs approval."""
    async with transaction(engine.database.reader) as session:
        await get_incident(session, incident_id)
        original, _spec, needs_approval = await _target(session, incident_id, action_id)
        return original, needs_approval


async def _target(
    session: AsyncSession, incident_id: int, action_id: int
) -> tuple[Action, ActionSpec, bool]:
    """The action to undo (400 if it cannot be), its spec, and whether undoing it needs
    approval: the original did, or undoing it would raise a canary's traffic."""
    original = await service.get_action(session, incident_id=incident_id, action_id=action_id)
    spec = get_action_spec(original.action_type)
    if reason := rollbacks.refusal(original, spec):
        raise BadRequest(
            f"Rollback not available for action {original.id}: {reason}",
            details={"action_id": original.id, "status": original.status},
        )
    assert spec is not None
    planner = await planner_service.snapshot(session)
    needs_approval = original.requires_approval or bool(
        spec.rollback_needs_approval
        and original.prior_state
        and spec.rollback_needs_approval(original.prior_state, planner)
    )
    return original, spec, needs_approval


async def _not_rolled_back(session: AsyncSession, action_id: int) -> None:
    if await rollback_service.has_rollback(session, action_id=action_id):
        raise BadRequest(
            f"Action {action_id} has already been rolled back",
            details={"action_id": action_id},
        )


def _gate(
    engine: Engine,
    original: Action,
    body: RollbackRequest,
    principal: Principal,
    *,
    needs_approval: bool,
) -> None:
    gate_direct(
        f"Rolling back {original.action_type}",
        original.action_type,
        requires_approval=needs_approval,
        approved_by=body.approved_by,
        principal=principal,
        settings=engine.settings,
        details={"action_id": original.id},
    )


def _rollback_of(
    original: Action, body: RollbackRequest, *, needs_approval: bool
) -> service.NewAction:
    return service.NewAction(
        incident_id=original.incident_id,
        action_type=original.action_type,
        params=original.params,
        dry_run=False,
        requested_by=body.requested_by,
        message=f"Rolling back action {original.id}",
        details={"rollback_of": original.id},
        changes=[f"Restore the state captured before action {original.id}"],
        estimated_duration=original.estimated_duration,
        estimated_cost=original.estimated_cost,
        requires_approval=needs_approval,
        approved_by=body.approved_by,
        rollback_of=original.id,
        prior_state=original.prior_state,
    )
