"""Execute: validate, gate, claim quota, record, launch, wait.

The order is the design's: validate params (InvalidParams: 422), approval (Forbidden: 403),
per-incident limits (RateLimited: 429, counted under the incident's row lock), insert the
action and commit, and only then ask the Launcher for a flow run (playbooks/runs.py). A retry
with the same idempotency key gets its action back, whatever planning would say now.
"""

from dataclasses import replace

from sqlalchemy.exc import IntegrityError

from models.access import Principal
from models.action import Action
from models.base import utcnow
from models.db import transaction
from models.enums import ActionStatus
from models.errors import Unavailable
from models.services import actions as service
from models.services.incidents import get_incident
from playbooks.approval_rules import gate_direct
from playbooks.engine import Engine
from playbooks.requests import ExecuteRequest, Recorded
from playbooks.resolve import Planned, new_action, plan_request
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
    earlier = await _retried(engine, incident_id, idempotency_key) if idempotency_key else None
    if earlier is not None:
        return Recorded(action=earlier)
    planned = await plan_request(engine, incident_id, body)
    if not approved_request:
        _gate(engine, planned, body, principal)
    new = _to_record(incident_id, planned, body, idempotency_key, approved_request)
    recorded = await _record(engine, new, problem=planned.problem)
    if recorded.quota is None:  # a same-key retry's action
        return recorded
    if planned.problem:
        raise _cannot_run(recorded.action, planned.problem)
    action = await launch(engine, planned.spec, recorded.action, rollback=False)
    action = await wait_for(engine, action, wait)
    return Recorded(action=action, quota=recorded.quota, plan=planned.plan)


async def _retried(engine: Engine, incident_id: int, idempotency_key: str) -> Action | None:
    """The action an earlier request with this key recorded (404 for an unknown incident)."""
    async with transaction(engine.database.reader) as session:
        await get_incident(session, incident_id)
        return await service.find_by_idempotency_key(
            session, incident_id=incident_id, key=idempotency_key
        )


def _gate(engine: Engine, planned: Planned, body: ExecuteRequest, principal: Principal) -> None:
    gate_direct(
        f"{planned.spec.action_type} with these params",
        planned.spec.action_type,
        requires_approval=planned.plan.requires_approval,
        approved_by=body.approved_by,
        principal=principal,
        settings=engine.settings,
        details={"action_type": planned.spec.action_type},
    )


def _to_record(
    incident_id: int,
    planned: Planned,
    body: ExecuteRequest,
    idempotency_key: str | None,
    approved_request: bool,
) -> service.NewAction:
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
    return new


async def _record(engine: Engine, new: service.NewAction, *, problem: str | None) -> Recorded:
    """Claim the quota and insert the action, committed before anything is launched; a
    same-key retry (seen under the row lock, or losing the insert race) gets the earlier
    action back, with no quota."""
    try:
        return await _claim_and_insert(engine, new, problem=problem)
    except IntegrityError as exc:
        if not (new.idempotency_key and service.is_duplicate_key(exc)):
            raise
        async with transaction(engine.database.reader) as session:  # lost a same-key race
            earlier = await service.find_by_idempotency_key(
                session, incident_id=new.incident_id, key=new.idempotency_key
            )
        assert earlier is not None
        return Recorded(action=earlier)


async def _claim_and_insert(
    engine: Engine, new: service.NewAction, *, problem: str | None
) -> Recorded:
    """One transaction: the quota is counted under the incident's row lock, and the action
    inserted with it (FAILED when the preflight found a problem)."""
    at = utcnow()
    async with transaction(engine.database.writer) as session:
        # the row lock first: same-key retries and the quota are decided in turn
        await get_incident(session, new.incident_id, for_update=True)
        if new.idempotency_key:
            earlier = await service.find_by_idempotency_key(
                session, incident_id=new.incident_id, key=new.idempotency_key
            )
            if earlier is not None:
                return Recorded(action=earlier)
        quota = await service.claim_quota(
            session,
            incident_id=new.incident_id,
            dry_run=False,
            limit=engine.limit(dry_run=False),
            at=at,
        )
        status = ActionStatus.FAILED if problem else ActionStatus.PENDING
        action = await service.record_action(session, new=new, status=status, at=at)
    return Recorded(action=action, quota=quota)


def _cannot_run(action: Action, problem: str) -> Unavailable:
    return Unavailable(
        f"Action {action.id} cannot run now: {problem}",
        details={"action_id": action.id, "status": ActionStatus.FAILED.value},
    )
