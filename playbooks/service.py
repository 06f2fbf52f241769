"""The playbook engine as the API and approvals call it: one Playbooks per app, each method
one module's entry point.

- resolve.py: the action and its params for an incident, its plan, the row to record;
- dry_run.py: dry-run (and the plan an approval request stores);
- execute.py: validate, gate, claim quota, record, launch, wait;
- runs.py: launch a recorded action's flow run, wait for it;
- rollback.py: roll an action back (and what a rollback would undo);
- history.py: the incident's actions with their `rollback_available`.
"""

from typing import Any

from models.access import Principal
from models.action import Action
from models.db import transaction
from models.services.incidents import get_incident
from playbooks import dry_run, execute, history, rollback
from playbooks.catalog import ActionSpec
from playbooks.engine import Engine
from playbooks.offers import Offer, offers
from playbooks.plan import Plan
from playbooks.requests import (
    DryRunRequest,
    ExecuteRequest,
    Recorded,
    RollbackRequest,
)


class Playbooks(Engine):
    async def available(self, incident_id: int) -> list[Offer]:
        async with transaction(self.database.reader) as session:
            incident = await get_incident(session, incident_id)
            return await offers(session, incident, self.settings)

    async def dry_run(self, incident_id: int, body: DryRunRequest) -> Recorded:
        return await dry_run.dry_run(self, incident_id, body)

    async def plan(
        self, incident_id: int, body: DryRunRequest
    ) -> tuple[ActionSpec, dict[str, Any], Plan]:
        return await dry_run.plan_only(self, incident_id, body)

    async def execute(
        self,
        incident_id: int,
        body: ExecuteRequest,
        *,
        principal: Principal,
        idempotency_key: str | None,
        wait: float,
        approved_request: bool = False,
    ) -> Recorded:
        return await execute.execute(
            self,
            incident_id,
            body,
            principal=principal,
            idempotency_key=idempotency_key,
            wait=wait,
            approved_request=approved_request,
        )

    async def rollback(
        self,
        incident_id: int,
        action_id: int,
        body: RollbackRequest,
        *,
        principal: Principal,
        wait: float,
        approved_request: bool = False,
    ) -> Action:
        return await rollback.rollback(
            self,
            incident_id,
            action_id,
            body,
            principal=principal,
            wait=wait,
            approved_request=approved_request,
        )

    async def rollback_preview(self, incident_id: int, action_id: int) -> tuple[Action, bool]:
        return await rollback.preview(self, incident_id, action_id)

    async def history(self, incident_id: int) -> list[tuple[Action, bool]]:
        return await history.history(self, incident_id)

    async def rollback_available(self, action: Action) -> bool:
        return await history.rollback_available(self, action)
