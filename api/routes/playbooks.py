"""Playbooks: list the actions for an incident, dry-run, execute, roll back, history."""

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Response
from pydantic import AfterValidator

from api.auth import PrincipalDep, on_behalf
from api.deps import PlaybooksDep
from api.headers import incident_quota_headers
from api.schemas.playbooks import (
    ActionHistory,
    ActionRead,
    AvailableAction,
    AvailableActions,
    DryRunRequest,
    DryRunResponse,
    ExecuteRequest,
    ExecuteResponse,
    RollbackRequest,
    RollbackResponse,
)
from models.action import Action
from models.services.actions import Quota

router = APIRouter(prefix="/playbooks/incidents/{incident_id}/actions", tags=["playbooks"])

IncidentId = Annotated[int, Path(ge=1, le=2**63 - 1, description="Incident ID")]
ActionId = Annotated[int, Path(ge=1, le=2**63 - 1, description="Action ID")]
Wait = Annotated[
    float, Query(ge=0, le=300, description="Seconds to wait for a terminal status (max 300).")
]


def _not_reserved(key: str | None) -> str | None:
    if key is not None and key.startswith("approval-"):
        raise ValueError("keys starting with approval- are the approvals' own")
    return key


IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="A retried execute with the same key returns the first one's action.",
    ),
    AfterValidator(_not_reserved),
]


def _quota_headers(response: Response, quota: Quota | None) -> None:
    if quota is not None:
        reset = int(quota.reset_at.timestamp())
        response.headers.update(incident_quota_headers(quota.limit, quota.remaining, reset))


def _execute_response(action: Action, *, rollback_available: bool) -> ExecuteResponse:
    return ExecuteResponse(
        action_id=action.id,
        action_type=action.action_type,
        status=action.status,
        message=action.message,
        details=action.details,
        estimated_duration=action.estimated_duration,
        actual_duration=action.actual_duration,
        estimated_cost=action.estimated_cost,
        logs_url=action.flow_run_url,
        rollback_available=rollback_available,
        created_at=action.created_at,
        completed_at=action.completed_at,
        approved_by=action.approved_by,
        result=action.result,
        flow_run_id=action.flow_run_id,
        flow_run_url=action.flow_run_url,
    )


@router.get("")
async def list_available_actions(
    incident_id: IncidentId, playbooks: PlaybooksDep
) -> AvailableActions:
    """Actions for this incident: its suggested playbooks first, then the rest for its kind."""
    offered = await playbooks.available(incident_id)
    return AvailableActions(
        incident_id=incident_id,
        available_actions=[
            AvailableAction(
                action_type=o.name,
                display_name=o.alias.display_name if o.alias else o.spec.display_name,
                description=o.alias.description if o.alias else o.spec.description,
                params={
                    k: v
                    for k, v in o.spec.params_doc.items()
                    if not o.alias or k not in o.alias.fixed
                },
                requires_approval=o.spec.approval_by_default
                or (o.alias.requires_approval if o.alias else False),
                estimated_duration=o.quote.duration,
                estimated_cost=o.quote.cost,
                estimate_basis=o.quote.basis,
                rollback_supported=o.spec.rollback_supported,
            )
            for o in offered
        ],
    )


@router.post("/dry-run")
async def dry_run_action(
    incident_id: IncidentId,
    body: DryRunRequest,
    playbooks: PlaybooksDep,
    principal: PrincipalDep,
    response: Response,
) -> DryRunResponse:
    """Preview an action: what it will change, how long, how much, whether approval is needed."""
    recorded = await playbooks.dry_run(incident_id, on_behalf(body, "requested_by", principal))
    _quota_headers(response, recorded.quota)
    action, plan = recorded.action, recorded.plan
    assert plan is not None
    return DryRunResponse(
        action_type=action.action_type,
        status=action.status,
        message=action.message or plan.message,
        details=plan.details,
        estimated_duration=plan.estimated_duration,
        estimated_cost=plan.estimated_cost,
        changes=plan.changes,
        requires_approval=plan.requires_approval,
        action_id=action.id,
        rollback_available=plan.rollback_available,
    )


@router.post("/execute")
async def execute_action(
    incident_id: IncidentId,
    body: ExecuteRequest,
    playbooks: PlaybooksDep,
    principal: PrincipalDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
    wait: Wait = 0,
) -> ExecuteResponse:
    """Run an action as a Prefect flow; `?wait=` answers once it has finished (or timed out)."""
    recorded = await playbooks.execute(
        incident_id,
        on_behalf(body, "requested_by", principal),
        principal=principal,
        idempotency_key=idempotency_key,
        wait=wait,
    )
    _quota_headers(response, recorded.quota)
    available = await playbooks.rollback_available(recorded.action)
    return _execute_response(recorded.action, rollback_available=available)


@router.post("/{action_id}/rollback")
async def rollback_action(
    incident_id: IncidentId,
    action_id: ActionId,
    playbooks: PlaybooksDep,
    principal: PrincipalDep,
    body: RollbackRequest | None = None,
    wait: Wait = 0,
) -> RollbackResponse:
    """Undo a successful action by running its flow with rollback=True and the captured state."""
    body = on_behalf(body or RollbackRequest(), "requested_by", principal)
    action = await playbooks.rollback(incident_id, action_id, body, principal=principal, wait=wait)
    assert action.rollback_of is not None
    return RollbackResponse(
        action_id=action.id,
        action_type=action.action_type,
        status=action.status,
        message=action.message,
        rollback_of=action.rollback_of,
        flow_run_id=action.flow_run_id,
        flow_run_url=action.flow_run_url,
        created_at=action.created_at,
        completed_at=action.completed_at,
    )


@router.get("/history")
async def get_action_history(incident_id: IncidentId, playbooks: PlaybooksDep) -> ActionHistory:
    """Every dry-run, execution and rollback of this incident, oldest first."""
    actions = await playbooks.history(incident_id)
    return ActionHistory(
        incident_id=incident_id,
        actions=[ActionRead.of(action, rollback_available=ok) for action, ok in actions],
    )
