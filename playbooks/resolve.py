"""An action named for an incident, resolved: its spec (or an alias's), its params (presets from
the incident, then the caller's, then what the alias fixes), its plan, and the row to record.

400 (BadRequest) for what cannot be, 422 (InvalidParams) for bad params, 503 (Unavailable) when
the plan needs what is missing (a manifest, a check's config).
"""

from dataclasses import dataclass, replace
from typing import Any

from pydantic import BaseModel, ValidationError

from checks.config import ConfigError
from integrations.warehouse import ManifestMissing
from models.db import transaction
from models.enums import IncidentStatus
from models.errors import BadRequest, InvalidParams, ParamsError, Unavailable
from models.incident import Incident
from models.services import actions as service
from models.services import planner as planner_service
from models.services.incidents import get_incident
from playbooks import estimates
from playbooks.catalog import (
    ACTIONS,
    ALIASES,
    ActionSpec,
    Alias,
    PlanContext,
    get_action_spec,
    presets,
)
from playbooks.engine import Engine
from playbooks.estimates import Calibration, calibrated
from playbooks.plan import Plan, Preflight
from playbooks.requests import DryRunRequest


@dataclass(frozen=True)
class Planned:
    spec: ActionSpec
    params: BaseModel
    plan: Plan
    problem: str | None  # the preflight's: why it cannot run now


def params_error(exc: ValidationError | ParamsError) -> InvalidParams:
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


def resolve(
    incident: Incident, action_type: str, raw: dict[str, Any]
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
        raise params_error(exc) from exc


def make_plan(
    spec: ActionSpec,
    params: BaseModel,
    alias: Alias | None,
    context: PlanContext,
    calibration: Calibration,
) -> Plan:
    try:
        plan = spec.plan(params, context)
    except ParamsError as exc:
        raise params_error(exc) from exc
    except (ManifestMissing, ConfigError) as exc:
        raise Unavailable(str(exc)) from exc
    if alias is not None:
        plan = replace(
            plan,
            requires_approval=plan.requires_approval or alias.requires_approval,
            details=plan.details | {"playbook": alias.name},
        )
    return calibrated(plan, calibration)


async def plan_request(engine: Engine, incident_id: int, body: DryRunRequest) -> Planned:
    """Validate and plan in a read transaction (its estimates scaled by the action's recent
    runs), then ask the action whether it can run now (a cluster to reach...) outside any
    transaction: nothing waits on the network."""
    async with transaction(engine.database.reader) as session:
        incident = await get_incident(session, incident_id)
        planner = await planner_service.snapshot(session)
        spec, params, alias = resolve(incident, body.action_type, body.params)
        learned = await estimates.calibrations(session, [spec.action_type])
    calibration = learned[spec.action_type]
    check = await spec.preflight(params, engine.settings) if spec.preflight else Preflight()
    context = PlanContext(engine.settings, planner, check.facts)
    plan = make_plan(spec, params, alias, context, calibration)
    return Planned(spec, params, plan, check.problem)


def new_action(
    incident_id: int,
    planned: Planned,
    requested_by: str,
    *,
    dry_run: bool,
    approved_by: str | None = None,
    idempotency_key: str | None = None,
) -> service.NewAction:
    """The row to record for `planned`; a preflight problem is its message."""
    plan = planned.plan
    new = service.NewAction(
        incident_id=incident_id,
        action_type=planned.spec.action_type,
        params=planned.params.model_dump(mode="json"),
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
    if planned.problem:
        new = replace(new, message=f"Cannot run now: {planned.problem}")
    return new
