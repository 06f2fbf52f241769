"""What the API and the console show of automatic remediation: an incident's attempts against
its check's policy, and the automation switch with what is left of the hourly budgets.

Reads only: the rows stay the loop's (loop.py, steps.py) and the switch the admin routes'.
An incident's policy is its check's (`metadata.check_id`, as checks/runner.py opens it) as
declared now; once the check no longer declares one, the policy the newest attempt started
with. Incidents about a check itself (stale, failing: models/services/check_health.py) are
not what its policy fixes, and get none.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from checks.config import CheckSpec
from checks.remediation import RemediationPolicy
from models.enums import RemediationStep
from models.incident import Incident
from models.remediation import AutomationState, Remediation
from models.services import remediations as store
from models.services.check_health import is_own
from models.settings import Settings
from remediation.loop import current_round

JUDGED = frozenset({RemediationStep.VERIFIED.value, RemediationStep.INEFFECTIVE.value})


@dataclass(frozen=True)
class Verification:
    check_run_id: int | None
    passed: bool


@dataclass(frozen=True)
class IncidentRemediation:
    policy: dict[str, Any] | None
    mode: str | None
    attempts: int  # in the current round (a release starts a new one)
    max_attempts: int | None
    step: str | None  # the newest attempt's
    in_flight: bool
    held: bool  # a give-up no person has released: no automatic attempt until one does
    attempts_history: list[Remediation]  # oldest first
    verification: Verification | None


@dataclass(frozen=True)
class ActionBudget:
    per_hour: int
    left: int


@dataclass(frozen=True)
class Budgets:
    per_hour: int
    left: int
    actions: dict[str, ActionBudget]


@dataclass(frozen=True)
class Automation:
    paused: bool
    changed_by: str | None
    changed_at: datetime | None
    reason: str | None
    budgets: Budgets
    in_flight: list[Remediation]


def check_of(incident: Incident) -> str | None:
    check_id = (incident.metadata_ or {}).get("check_id")
    if not isinstance(check_id, str) or is_own(incident, check_id):
        return None
    return check_id


def policy_of(
    incident: Incident, specs: Mapping[str, CheckSpec], history: list[Remediation]
) -> RemediationPolicy | None:
    check_id = check_of(incident)
    spec = specs.get(check_id) if check_id else None
    if spec is not None and spec.remediation is not None:
        return spec.remediation
    if not history:
        return None
    try:  # the check dropped its policy: the one the newest attempt ran under
        return RemediationPolicy.model_validate(history[-1].policy)
    except ValidationError:
        return None


def remediation_of(
    incident: Incident, specs: Mapping[str, CheckSpec], history: list[Remediation]
) -> IncidentRemediation | None:
    """`history`: the incident's attempts, oldest first (store.of_incident)."""
    policy = policy_of(incident, specs, history)
    if policy is None and not history:
        return None
    newest = history[-1] if history else None
    judged = [a for a in history if a.step in JUDGED and a.verify_check_run_id is not None]
    verification = (
        Verification(judged[-1].verify_check_run_id, judged[-1].step == RemediationStep.VERIFIED)
        if judged
        else None
    )
    return IncidentRemediation(
        policy=policy.model_dump(mode="json") if policy else None,
        mode=policy.mode if policy else None,
        attempts=len(current_round(history)),
        max_attempts=policy.max_attempts if policy else None,
        step=newest.step if newest else None,
        in_flight=any(a.in_flight for a in history),
        held=any(a.blocks for a in history),
        attempts_history=history,
        verification=verification,
    )


async def incident_remediation(
    session: AsyncSession, incident: Incident, specs: Mapping[str, CheckSpec]
) -> IncidentRemediation | None:
    return remediation_of(incident, specs, await store.of_incident(session, incident.id))


async def automation(
    session: AsyncSession, settings: Settings, specs: Mapping[str, CheckSpec], now: datetime
) -> Automation:
    """The switch and the budgets: every action type an `auto` policy names, and any other
    that ran in the last hour (a policy changed since, or removed)."""
    state = await session.scalar(select(AutomationState).where(AutomationState.id == 1))
    executed = await store.executed_in_last_hour(session, now)
    named = {
        spec.remediation.action
        for spec in specs.values()
        if spec.remediation is not None and spec.remediation.mode == "auto"
    }
    actions = {}
    for action_type in sorted(named | set(executed)):
        limit = settings.remediation_action_budget(action_type)
        actions[action_type] = ActionBudget(limit, max(0, limit - executed.get(action_type, 0)))
    total = settings.remediation_budget_per_hour
    return Automation(
        paused=state.paused if state else False,
        changed_by=state.changed_by if state else None,
        changed_at=state.changed_at if state else None,
        reason=state.reason if state else None,
        budgets=Budgets(total, max(0, total - sum(executed.values())), actions),
        in_flight=await store.in_flight(session),
    )
