"""Approval requests: separation of duties for the actions that need approval.

A responder asks (the exact params and the dry-run plan are stored); another approver approves
it, which executes exactly those params once (the execution's idempotency key is the request),
or rejects it. A request not decided within INTERVENE_APPROVAL_TTL_SECONDS expires.
"""

from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models.access import ApprovalRequest, Principal
from models.action import Action
from models.base import utcnow
from models.db import Database, transaction
from models.enums import ApprovalStatus
from models.errors import BadRequest, Conflict, Forbidden, NotFound
from models.services import playbook_timeline
from models.services.incidents import get_incident
from playbooks.approval_rules import approver_may_act_alone
from playbooks.requests import Execution, Rollback
from playbooks.service import Playbooks

# How long an approval may take from claiming its request to recording the run (a plan, a
# preflight and one call to Prefect take seconds); a claim older than this with no run
# recorded belongs to a process that stopped.
CLAIM_SECONDS = 300


class ApprovalAsk(Protocol):
    """What an approval request names: an execution (`action_type`, `params`) or a rollback
    (`rollback_of`); the API's request body is one."""

    @property
    def action_type(self) -> str | None: ...
    @property
    def params(self) -> dict[str, Any]: ...
    @property
    def rollback_of(self) -> int | None: ...
    @property
    def reason(self) -> str | None: ...


@dataclass(frozen=True)
class DryRun:
    action_type: str
    params: dict[str, Any]
    requested_by: str = "api"


def shown_status(request: ApprovalRequest) -> str:
    """A pending request past its time reads as expired, whether or not that was written."""
    if request.status == ApprovalStatus.PENDING and utcnow() >= request.expires_at:
        return ApprovalStatus.EXPIRED.value
    return request.status


class Approvals:
    def __init__(self, database: Database, playbooks: Playbooks) -> None:
        self.database = database
        self.playbooks = playbooks
        self.ttl = timedelta(seconds=playbooks.settings.approval_ttl_seconds)

    async def request(
        self, incident_id: int, body: ApprovalAsk, principal: Principal
    ) -> ApprovalRequest:
        params: dict[str, Any] = {}
        if body.rollback_of is not None:
            original, needs = await self.playbooks.rollback_preview(incident_id, body.rollback_of)
            action_type = original.action_type
            plan = {
                "message": f"Roll back action {original.id} ({original.action_type})",
                "changes": [f"Restore the state captured before action {original.id}"],
                "requires_approval": needs,
                "estimated_duration": original.estimated_duration,
                "estimated_cost": original.estimated_cost,
            }
        else:
            assert body.action_type is not None
            dry_run = DryRun(action_type=body.action_type, params=body.params)
            spec, params, planned = await self.playbooks.plan(incident_id, dry_run)
            action_type, needs = spec.action_type, planned.requires_approval
            plan = {k: v for k, v in asdict(planned).items() if k != "prior_state"}
        if not needs:
            raise BadRequest(
                f"{action_type} with these params needs no approval: run it directly",
                details={"action_type": action_type, "requires_approval": False},
            )
        now = utcnow()
        async with transaction(self.database.writer) as session:
            await get_incident(session, incident_id, for_update=True)
            request = ApprovalRequest(
                incident_id=incident_id,
                action_type=action_type,
                params=params,
                rollback_of=body.rollback_of,
                plan=plan,
                reason=body.reason,
                requested_by=principal.name,
                requested_at=now,
                expires_at=now + self.ttl,
            )
            session.add(request)
            await session.flush()  # its id, for the timeline
            asked = playbook_timeline.approval(request, "approval_requested", principal.name, now)
            session.add(asked)
        return request

    async def list(self, incident_id: int) -> list[ApprovalRequest]:
        async with transaction(self.database.reader) as session:
            await get_incident(session, incident_id)
            query = (
                select(ApprovalRequest)
                .where(ApprovalRequest.incident_id == incident_id)
                .order_by(ApprovalRequest.id)
            )
            return list(await session.scalars(query))

    async def get(self, incident_id: int, approval_id: int) -> ApprovalRequest:
        async with transaction(self.database.reader) as session:
            return await _get(session, incident_id, approval_id)

    async def approve(
        self, incident_id: int, approval_id: int, principal: Principal, notes: str | None
    ) -> tuple[ApprovalRequest, Action]:
        """Claim the request (pending -> approved, under its row lock), then run it: a
        concurrent approval or rejection finds it decided. If the run cannot even be recorded
        (a limit, a plan that no longer holds), the claim is given back."""
        async with transaction(self.database.writer) as session:
            request, refusal = await self._pending(session, incident_id, approval_id)
            if refusal is None:
                if request.requested_by == principal.name and not approver_may_act_alone(
                    request.action_type, self.playbooks.settings
                ):
                    raise Forbidden(
                        f"{principal.name} asked for this; another approver must approve it",
                        details={"approval_id": approval_id, "separation_of_duties": True},
                    )
                request.apply("approve", by=principal.name, at=utcnow(), notes=notes)
        if refusal is not None:  # what it found is written (committed) before saying so
            raise refusal
        try:
            action = await self._run(request, principal)
        except Exception:
            async with transaction(self.database.writer) as session:
                claimed = await _get(session, incident_id, approval_id, for_update=True)
                recorded = await self._recorded_action(session, claimed)
                if recorded is None:  # nothing ran: it may be approved again
                    claimed.apply("release")
                else:
                    claimed.action_id = recorded.id
            raise
        async with transaction(self.database.writer) as session:
            approved = await _get(session, incident_id, approval_id, for_update=True)
            approved.action_id = action.id
            who = principal.name
            session.add(playbook_timeline.approval(approved, "approval_approved", who, utcnow()))
        return approved, action

    async def _recorded_action(
        self, session: AsyncSession, request: ApprovalRequest
    ) -> Action | None:
        """The action a failed run still recorded (e.g. kept as failed when Prefect was down)."""
        query = select(Action).where(Action.incident_id == request.incident_id)
        if request.rollback_of is not None:
            query = query.where(Action.rollback_of == request.rollback_of)
            query = query.where(Action.approved_by == request.decided_by)
        else:
            query = query.where(Action.idempotency_key == f"approval-{request.id}")
        return await session.scalar(query.order_by(Action.id.desc()).limit(1))

    async def reject(
        self, incident_id: int, approval_id: int, principal: Principal, notes: str | None
    ) -> ApprovalRequest:
        async with transaction(self.database.writer) as session:
            request, refusal = await self._pending(session, incident_id, approval_id)
            if refusal is None:
                at = utcnow()
                request.apply("reject", by=principal.name, at=at, notes=notes)
                who = principal.name
                session.add(playbook_timeline.approval(request, "approval_rejected", who, at))
        if refusal is not None:
            raise refusal
        return request

    async def _pending(
        self, session: AsyncSession, incident_id: int, approval_id: int
    ) -> tuple[ApprovalRequest, Conflict | None]:
        """The request, locked, and why it can no longer be decided (None: it can). What it
        finds out is written in this transaction (an expiry, an abandoned claim given back, a
        recorded run linked), so the caller raises the refusal only after the commit."""
        request = await _get(session, incident_id, approval_id, for_update=True)
        if await self._abandoned(session, request):
            request.apply("release")
        if request.status == ApprovalStatus.PENDING and utcnow() >= request.expires_at:
            request.apply("expire")
            return request, _expired(approval_id)
        if request.status != ApprovalStatus.PENDING:
            return request, Conflict(
                f"Approval request {approval_id} is already {request.status}",
                details={
                    "approval_id": approval_id,
                    "status": request.status,
                    "action_id": request.action_id,
                },
            )
        return request, None

    async def _abandoned(self, session: AsyncSession, request: ApprovalRequest) -> bool:
        """Whether an approval claimed this request and then stopped before its run was
        recorded (its process died in between): after CLAIM_SECONDS with no recorded action,
        the request may be decided again. A run that was recorded is linked instead."""
        if request.status != ApprovalStatus.APPROVED or request.action_id is not None:
            return False
        recorded = await self._recorded_action(session, request)
        if recorded is not None:
            request.action_id = recorded.id
            return False
        assert request.decided_at is not None
        return utcnow() - request.decided_at >= timedelta(seconds=CLAIM_SECONDS)

    async def _run(self, request: ApprovalRequest, principal: Principal) -> Action:
        """Execute (or roll back) exactly what was asked, once: a second approval of the same
        request finds the first one's action by its idempotency key."""
        if request.rollback_of is not None:
            body = Rollback(approved_by=principal.name, requested_by=request.requested_by)
            return await self.playbooks.rollback(
                request.incident_id,
                request.rollback_of,
                body,
                principal=principal,
                wait=0,
                approved_request=True,
            )
        execute = Execution(
            action_type=request.action_type,
            params=request.params,
            requested_by=request.requested_by,
            approved_by=principal.name,
        )
        recorded = await self.playbooks.execute(
            request.incident_id,
            execute,
            principal=principal,
            idempotency_key=f"approval-{request.id}",
            wait=0,
            approved_request=True,
        )
        return recorded.action


def _expired(approval_id: int) -> Conflict:
    return Conflict(
        f"Approval request {approval_id} expired",
        details={"approval_id": approval_id, "status": ApprovalStatus.EXPIRED.value},
    )


async def _get(
    session: AsyncSession, incident_id: int, approval_id: int, *, for_update: bool = False
) -> ApprovalRequest:
    request = await session.get(ApprovalRequest, approval_id, with_for_update=for_update)
    if request is None or request.incident_id != incident_id:
        raise NotFound(
            f"Approval request {approval_id} not found for incident {incident_id}",
            details={"incident_id": incident_id, "approval_id": approval_id},
        )
    return request
