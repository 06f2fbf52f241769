"""Dry-run: plan an action for an incident and record the plan (a dry-run's quota counted under
the incident's row lock); nothing runs. Also the plan an approval request stores."""

from typing import Any

from models.base import utcnow
from models.db import transaction
from models.enums import ActionStatus
from models.services import actions as service
from models.services.incidents import get_incident
from playbooks.catalog import ActionSpec
from playbooks.engine import Engine
from playbooks.plan import Plan
from playbooks.requests import DryRunRequest, Recorded
from playbooks.resolve import new_action, plan_request


async def dry_run(engine: Engine, incident_id: int, body: DryRunRequest) -> Recorded:
    planned = await plan_request(engine, incident_id, body)
    at = utcnow()
    new = new_action(incident_id, planned, body.requested_by, dry_run=True)
    async with transaction(engine.database.writer) as session:
        await get_incident(session, incident_id, for_update=True)
        quota = await service.claim_quota(
            session,
            incident_id=incident_id,
            dry_run=True,
            limit=engine.limit(dry_run=True),
            at=at,
        )
        status = ActionStatus.DRY_RUN_FAILED if planned.problem else ActionStatus.DRY_RUN_SUCCESS
        action = await service.record_action(session, new=new, status=status, at=at)
    return Recorded(action=action, quota=quota, plan=planned.plan)


async def plan_only(
    engine: Engine, incident_id: int, body: DryRunRequest
) -> tuple[ActionSpec, dict[str, Any], Plan]:
    """What an execution with these params would do (for an approval request): the
    action, its params as validated, the plan."""
    planned = await plan_request(engine, incident_id, body)
    return planned.spec, planned.params.model_dump(mode="json"), planned.plan
