"""Execute: validate, gate, record, then trigger.

The order is the design's: validate params (InvalidParams: 422), approval (Forbidden: 403),
per-incident limits (RateLimited: 429), insert the action and commit, and only then ask the
Launcher for a flow run (playbooks/runs.py).
"""

from dataclasses import replace

from sqlalchemy.exc import IntegrityError

from models.access import Principal
from models.base import utcnow
from models.db import transaction
from models.enums import ActionStatus
from models.errors import Unavailable
from models.services import actions as service
from models.services.incidents import get_incident
from playbooks.approval_rules import gate_direct
from playbooks.engine import Engine
from playbooks.requests import ExecuteRequest, Recorded
from playbooks.resolve import new_action, plan_request
from playbooks.runs import launch, wait_for


async def execute(
    engine: Engine,
    incident_id: int,
    body: ExecuteRequest,
    *,
    principal: Principal,
    idempotency_key: str | None,
    wait: float,
    approved_request: bool = False,
) -> Recorded:
    """`approved_request`: from an approval request another approver approved (its
    rules were applied there); otherwise the direct rules apply here."""
    if idempotency_key:  # a retry gets its action back, whatever planning would say now
        async with transaction(engine.database.reader) as session:
            await get_incident(session, incident_id)
            earlier = await service.find_by_idempotency_key(
                session, incident_id=incident_id, key=idempotency_key
            )
        if earlier is not None:
            return Recorded(action=earlier)
    planned = await plan_request(engine, incident_id, body)
    spec, plan, problem = planned.spec, planned.plan, planned.problem
    if not approved_request:
        gate_direct(
            f"{spec.action_type} with these params",
            spec.action_type,
            requires_approval=plan.requires_approval,
            approved_by=body.approved_by,
            principal=principal,
            settings=engine.settings,
            details={"action_type": spec.action_type},
        )
    at = utcnow()
    new = new_action(
        incident_id,
        planned,
        body.requested_by,
        dry_run=False,
        approved_by=body.approved_by,
        idempotency_key=idempotency_key,
    )
    if approved_request:  # approved as needing approval (through an alias, say): it stays so
        new = replace(new, requires_approval=True)
    try:
        async with transaction(engine.database.writer) as session:
            # the row lock first: same-key retries and the quota are decided in turn
            await get_incident(session, incident_id, for_update=True)
            if idempotency_key:
                earlier = await service.find_by_idempotency_key(
                    session, incident_id=incident_id, key=idempotency_key
                )
                if earlier is not None:
                    return Recorded(action=earlier)
            quota = await service.claim_quota(
                session,
                incident_id=incident_id,
                dry_run=False,
                limit=engine.limit(dry_run=False),
                at=at,
            )
            status = ActionStatus.FAILED if problem else ActionStatus.PENDING
            action = await service.record_action(session, new=new, status=status, at=at)
    except IntegrityError as exc:
        if not (idempotency_key and service.is_duplicate_key(exc)):
            raise
        async with transaction(engine.database.reader) as session:  # lost a same-key race
            earlier = await service.find_by_idempotency_key(
                session, incident_id=incident_id, key=idempotency_key
            )
        assert earlier is not None
        return Recorded(action=earlier)
    if problem:
        raise Unavailable(
            f"Action {action.id} cannot run now: {problem}",
            details={"action_id": action.id, "status": ActionStatus.FAILED.value},
        )
    action = await launch(engine, spec, action, rollback=False)
    return Recorded(action=await wait_for(engine, action, wait), quota=quota, plan=plan)
