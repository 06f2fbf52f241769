"""Dry-run, execute and roll back playbook actions: validate, gate, record, then trigger.

The order is the design's: validate params (InvalidParams: 422), approval (Forbidden: 403),
per-incident limits (RateLimited: 429), insert the action and commit, and only then ask the
Launcher (Prefect's, api/launcher.py) for a flow run, passing ids and parameters. If it cannot
start the run the action is kept, marked failed to start (Unavailable: 503).
"""

import asyncio
import time
from dataclasses import dataclass, replace
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from checks.config import ConfigError
from integrations.warehouse import ManifestMissing
from models.access import Principal
from models.action import Action
from models.base import utcnow
from models.db import Database, transaction
from models.enums import ActionStatus, IncidentStatus
from models.errors import BadRequest, InvalidParams, NotFound, ParamsError, Unavailable
from models.incident import Incident
from models.installation import action_run_key, action_run_tags
from models.services import actions as service
from models.services import planner as planner_service
from models.services import rollbacks as rollback_service
from models.services.incidents import get_incident
from models.services.installation import installation_id
from models.settings import Settings
from playbooks import estimates, rollbacks
from playbooks.approval_rules import gate_direct
from playbooks.catalog import (
    ACTIONS,
    ALIASES,
    ActionSpec,
    Alias,
    PlanContext,
    get_action_spec,
    presets,
)
from playbooks.estimates import Calibration, calibrated
from playbooks.launcher import Launcher, LaunchError
from playbooks.offers import Offer, offers
from playbooks.plan import Plan, Preflight

WAIT_POLL_SECONDS = 0.2


class DryRunRequest(Protocol):
    """What a dry-run names (the API's request body is one)."""

    @property
    def action_type(self) -> str: ...
    @property
    def params(self) -> dict[str, Any]: ...
    @property
    def requested_by(self) -> str: ...


class ExecuteRequest(DryRunRequest, Protocol):
    @property
    def approved_by(self) -> str | None: ...


class RollbackRequest(Protocol):
    @property
    def approved_by(self) -> str | None: ...
    @property
    def requested_by(self) -> str: ...


@dataclass(frozen=True)
class Execution:
    """An execute the service asks itself for (an approved request's)."""

    action_type: str
    params: dict[str, Any]
    requested_by: str
    approved_by: str | None


@dataclass(frozen=True)
class Rollback:
    """A rollback the service asks itself for (an approved request's)."""

    approved_by: str | None
    requested_by: str


@dataclass(frozen=True)
class Recorded:
    action: Action
    quota: service.Quota | None = None
    plan: Plan | None = None


def _params_error(exc: ValidationError | ParamsError) -> InvalidParams:
    errors: list[dict[str, Any]]
    if isinstance(exc, ParamsError):
        loc = ("body", *exc.field.split("."))
        errors = [{"loc": loc, "msg": exc.message, "type": "value_error"}]
    else:
        errors = [
            {"loc": ("body", "params", *e["loc"]), "msg": e["msg"], "type": e["type"]}
            for e in exc.errors()
        ]
    return InvalidParams(errors)


def applies(spec: ActionSpec, incident: Incident) -> bool:
    return incident.kind in spec.applies_to or spec.action_type in incident.playbooks


class Playbooks:
    def __init__(self, database: Database, settings: Settings, launcher: Launcher) -> None:
        self.database = database
        self.settings = settings
        self.launcher = launcher
        self._installation: str | None = None

    async def installation(self) -> str:
        """This installation's id, which every flow run's key and tags carry."""
        if self._installation is None:
            async with transaction(self.database.writer) as session:
                self._installation = await installation_id(session)
        return self._installation

    async def available(self, incident_id: int) -> list[Offer]:
        async with transaction(self.database.reader) as session:
            incident = await get_incident(session, incident_id)
            return await offers(session, incident, self.settings)

    def _resolve(
        self, incident: Incident, action_type: str, raw: dict[str, Any]
    ) -> tuple[ActionSpec, BaseModel, Alias | None]:
        """The action (or alias) named, and its params: presets from the incident, then the
        caller's, then what the alias fixes; 400 for what cannot be, 422 for bad params."""
        if incident.status is IncidentStatus.CLOSED:
            raise BadRequest(
                f"Incident {incident.id} is closed: reopen is not possible, open a new one",
                details={"incident_id": incident.id, "status": incident.status.value},
            )
        alias = ALIASES.get(action_type)
        spec = get_action_spec(alias.action_type if alias else action_type)
        if spec is None:
            suggested = action_type in incident.playbooks
            raise BadRequest(
                f"Action type {action_type!r} is "
                + ("suggested but not available in this version" if suggested else "unknown"),
                details={"action_type": action_type, "known": sorted([*ACTIONS, *ALIASES])},
            )
        if not (applies(spec, incident) or action_type in incident.playbooks):
            raise BadRequest(
                f"{action_type} does not apply to {incident.kind.value} incidents",
                details={"action_type": action_type, "kind": incident.kind.value},
            )
        drawn = presets(
            spec.action_type,
            incident_id=incident.id,
            key=incident.key,
            details=incident.details,
            metadata=incident.metadata_,
        )
        merged = drawn | raw | (alias.fixed if alias else {})
        try:
            return spec, spec.params_model.model_validate(merged), alias
        except ValidationError as exc:
            raise _params_error(exc) from exc

    @staticmethod
    def _make_plan(
        spec: ActionSpec,
        params: BaseModel,
        alias: Alias | None,
        context: PlanContext,
        calibration: Calibration,
    ) -> Plan:
        try:
            plan = spec.plan(params, context)
        except ParamsError as exc:
            raise _params_error(exc) from exc
        except (ManifestMissing, ConfigError) as exc:
            raise Unavailable(str(exc)) from exc
        if alias is not None:
            plan = replace(
                plan,
                requires_approval=plan.requires_approval or alias.requires_approval,
                details=plan.details | {"playbook": alias.name},
            )
        return calibrated(plan, calibration)

    def _limit(self, *, dry_run: bool) -> service.ActionLimit:
        per_hour = (
            self.settings.action_dry_runs_per_hour
            if dry_run
            else self.settings.action_executions_per_hour
        )
        return service.ActionLimit(limit=per_hour)

    async def _plan(
        self, incident_id: int, body: DryRunRequest
    ) -> tuple[ActionSpec, BaseModel, Plan, str | None]:
        """Validate and plan in a read transaction (its estimates scaled by the action's recent
        runs), then ask the action whether it can run now (a cluster to reach...) outside any
        transaction: nothing waits on the network."""
        async with transaction(self.database.reader) as session:
            incident = await get_incident(session, incident_id)
            planner = await planner_service.snapshot(session)
            spec, params, alias = self._resolve(incident, body.action_type, body.params)
            learned = await estimates.calibrations(session, [spec.action_type])
        calibration = learned[spec.action_type]
        check = await spec.preflight(params, self.settings) if spec.preflight else Preflight()
        plan = self._make_plan(
            spec, params, alias, PlanContext(self.settings, planner, check.facts), calibration
        )
        return spec, params, plan, check.problem

    async def dry_run(self, incident_id: int, body: DryRunRequest) -> Recorded:
        spec, params, plan, problem = await self._plan(incident_id, body)
        at = utcnow()
        new = self._new_action(incident_id, spec, params, plan, body.requested_by, dry_run=True)
        if problem:
            new = replace(new, message=f"Cannot run now: {problem}")
        async with transaction(self.database.writer) as session:
            await get_incident(session, incident_id, for_update=True)
            quota = await service.claim_quota(
                session,
                incident_id=incident_id,
                dry_run=True,
                limit=self._limit(dry_run=True),
                at=at,
            )
            status = ActionStatus.DRY_RUN_FAILED if problem else ActionStatus.DRY_RUN_SUCCESS
            action = await service.record_action(session, new=new, status=status, at=at)
        return Recorded(action=action, quota=quota, plan=plan)

    async def plan(
        self, incident_id: int, body: DryRunRequest
    ) -> tuple[ActionSpec, dict[str, Any], Plan]:
        """What an execution with these params would do (for an approval request): the
        action, its params as validated, the plan."""
        spec, params, plan, _problem = await self._plan(incident_id, body)
        return spec, params.model_dump(mode="json"), plan

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
        """`approved_request`: from an approval request another approver approved (its
        rules were applied there); otherwise the direct rules apply here."""
        if idempotency_key:  # a retry gets its action back, whatever planning would say now
            async with transaction(self.database.reader) as session:
                await get_incident(session, incident_id)
                earlier = await service.find_by_idempotency_key(
                    session, incident_id=incident_id, key=idempotency_key
                )
            if earlier is not None:
                return Recorded(action=earlier)
        spec, params, plan, problem = await self._plan(incident_id, body)
        if not approved_request:
            gate_direct(
                f"{spec.action_type} with these params",
                spec.action_type,
                requires_approval=plan.requires_approval,
                approved_by=body.approved_by,
                principal=principal,
                settings=self.settings,
                details={"action_type": spec.action_type},
            )
        at = utcnow()
        new = self._new_action(
            incident_id,
            spec,
            params,
            plan,
            body.requested_by,
            dry_run=False,
            approved_by=body.approved_by,
            idempotency_key=idempotency_key,
        )
        if problem:
            new = replace(new, message=f"Cannot run now: {problem}")
        if approved_request:  # approved as needing approval (through an alias, say): it stays so
            new = replace(new, requires_approval=True)
        try:
            async with transaction(self.database.writer) as session:
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
                    limit=self._limit(dry_run=False),
                    at=at,
                )
                status = ActionStatus.FAILED if problem else ActionStatus.PENDING
                action = await service.record_action(session, new=new, status=status, at=at)
        except IntegrityError as exc:
            if not (idempotency_key and service.is_duplicate_key(exc)):
                raise
            async with transaction(self.database.reader) as session:  # lost a same-key race
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
        action = await self._launch(spec, action, rollback=False)
        return Recorded(action=await self._wait(action, wait), quota=quota, plan=plan)

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
        at = utcnow()
        async with transaction(self.database.writer) as session:
            await get_incident(session, incident_id, for_update=True)  # rollbacks take turns
            original, spec, needs_approval = await self._rollback_target(
                session, incident_id, action_id
            )
            if await rollback_service.has_rollback(session, action_id=action_id):
                raise BadRequest(
                    f"Action {action_id} has already been rolled back",
                    details={"action_id": action_id},
                )
            if not approved_request:
                gate_direct(
                    f"Rolling back {original.action_type}",
                    original.action_type,
                    requires_approval=needs_approval,
                    approved_by=body.approved_by,
                    principal=principal,
                    settings=self.settings,
                    details={"action_id": action_id},
                )
            await service.claim_quota(
                session,
                incident_id=incident_id,
                dry_run=False,
                limit=self._limit(dry_run=False),
                at=at,
            )
            rollback = await service.record_action(
                session,
                new=service.NewAction(
                    incident_id=incident_id,
                    action_type=original.action_type,
                    params=original.params,
                    dry_run=False,
                    requested_by=body.requested_by,
                    message=f"Rolling back action {action_id}",
                    details={"rollback_of": action_id},
                    changes=[f"Restore the state captured before action {action_id}"],
                    estimated_duration=original.estimated_duration,
                    estimated_cost=original.estimated_cost,
                    requires_approval=needs_approval,
                    approved_by=body.approved_by,
                    rollback_of=action_id,
                    prior_state=original.prior_state,
                ),
                status=ActionStatus.PENDING,
                at=at,
            )
        rollback = await self._launch(spec, rollback, rollback=True)
        return await self._wait(rollback, wait)

    async def rollback_preview(self, incident_id: int, action_id: int) -> tuple[Action, bool]:
        """The action a rollback would undo, and whether that rollback needs approval."""
        async with transaction(self.database.reader) as session:
            await get_incident(session, incident_id)
            original, _spec, needs_approval = await self._rollback_target(
                session, incident_id, action_id
            )
            return original, needs_approval

    async def _rollback_target(
        self, session: AsyncSession, incident_id: int, action_id: int
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

    async def history(self, incident_id: int) -> list[tuple[Action, bool]]:
        """The incident's actions, oldest first, each with its `rollback_available`."""
        async with transaction(self.database.reader) as session:
            actions = await service.list_actions(session, incident_id=incident_id)
        undone = rollback_service.undone_among(actions)
        return [(a, rollbacks.available(a, undone=a.id in undone)) for a in actions]

    async def rollback_available(self, action: Action) -> bool:
        if not rollbacks.available(action, undone=False):
            return False
        async with transaction(self.database.reader) as session:
            undone = await rollback_service.has_rollback(session, action_id=action.id)
        return not undone

    def _new_action(
        self,
        incident_id: int,
        spec: ActionSpec,
        params: BaseModel,
        plan: Plan,
        requested_by: str,
        *,
        dry_run: bool,
        approved_by: str | None = None,
        idempotency_key: str | None = None,
    ) -> service.NewAction:
        return service.NewAction(
            incident_id=incident_id,
            action_type=spec.action_type,
            params=params.model_dump(mode="json"),
            dry_run=dry_run,
            requested_by=requested_by,
            message=plan.message,
            details=plan.details,
            changes=plan.changes,
            estimated_duration=plan.estimated_duration,
            estimated_cost=plan.estimated_cost,
            requires_approval=plan.requires_approval,
            rollback_available=plan.rollback_available,
            approved_by=approved_by,
            idempotency_key=idempotency_key,
        )

    async def _launch(self, spec: ActionSpec, action: Action, *, rollback: bool) -> Action:
        parameters = {
            "action_id": action.id,
            "params": action.params,
            "dry_run": False,
            "rollback": rollback,
            "prior_state": action.prior_state,
        }
        installation = await self.installation()
        tags = action_run_tags(installation, action.id, action.incident_id)
        key = action_run_key(installation, action.id)
        try:
            launched = await self.launcher.launch(spec.deployment, parameters, key=key, tags=tags)
        except LaunchError as exc:
            if (
                exc.maybe_started
            ):  # a run may exist: the reconciler finds it by its tag, or fails it
                raise Unavailable(
                    f"Action {action.id} was recorded; Prefect did not confirm its start: {exc}",
                    details={"action_id": action.id, "status": ActionStatus.PENDING.value},
                ) from exc
            async with transaction(self.database.writer) as session:
                await service.advance_action(
                    session,
                    action_id=action.id,
                    status=ActionStatus.FAILED,
                    at=utcnow(),
                    message=f"Failed to start: {exc}",
                )
            raise Unavailable(
                f"Action {action.id} was recorded but could not be started: {exc}",
                details={"action_id": action.id, "status": ActionStatus.FAILED.value},
            ) from exc
        async with transaction(self.database.writer) as session:
            updated = await service.advance_action(
                session,
                action_id=action.id,
                status=ActionStatus.SCHEDULED,
                at=utcnow(),
                flow_run_id=launched.flow_run_id,
                flow_run_url=launched.url,
            )
        if updated is None:
            raise NotFound(f"Action {action.id} disappeared", details={"action_id": action.id})
        return updated

    async def _wait(self, action: Action, seconds: float) -> Action:
        deadline = time.monotonic() + seconds
        while not action.action_status.is_terminal and time.monotonic() < deadline:
            await asyncio.sleep(WAIT_POLL_SECONDS)
            async with transaction(self.database.reader) as session:
                fresh = await session.get(Action, action.id, populate_existing=True)
            if fresh is not None:
                action = fresh
        return action
