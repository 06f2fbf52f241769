"""What the API and the console show of automatic remediation: an incident's attempts against
its check's policy, and the automation switch with what is left of the hourly budgets.

Reads only: the rows stay the loop's (loop.py, steps.py) and the switch the admin routes'.
An incident's policy is its check's (`metadata.check_id`, as checks/runner.py opens it), or
for an alert its routing rule's (`metadata.rule`), as declared now; once neither declares one,
the policy the newest attempt started with. Incidents about a check itself (stale, failing:
models/services/check_health.py) are not what its policy fixes, and get none.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from alerts.rules import AlertRules
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


@dataclass(frozen=True)
class Policies:
    """The remediation policies declared now: the checks' and the alert routing rules'."""

    specs: Mapping[str, CheckSpec]
    rules: AlertRules = field(default_factory=AlertRules)

    def declared(self, incident: Incident) -> RemediationPolicy | None:
        check_id = check_of(incident)
        if check_id is not None:
            spec = self.specs.get(check_id)
            return spec.remediation if spec is not None else None
        metadata = incident.metadata_ or {}
        name = metadata.get("rule")
        if isinstance(name, str) and metadata.get("source"):
            rule = self.rules.rule(name)
            return rule.remediation if rule is not None else None
        return None

    def auto_actions(self) -> set[str]:
        checks = {
            spec.remediation.action
            for spec in self.specs.values()
            if spec.remediation is not None and spec.remediation.mode == "auto"
        }
        return checks | {policy.action for policy in self.rules.policies(mode="auto").values()}


def check_of(incident: Incident) -> str | None:
    check_id = (incident.metadata_ or {}).get("check_id")
    if not isinstance(check_id, str) or is_own(incident, check_id):
        return None
    return check_id


def policy_of(
    incident: Incident, policies: Policies, history: list[Remediation]
) -> RemediationPolicy | None:
    declared = policies.declared(incident)
    if declared is not None:
        return declared
    if not history:
        return None
    try:  # its check or rule dropped the policy: the one the newest attempt ran under
        return RemediationPolicy.model_validate(history[-1].policy)
    except ValidationError:
        return None


def remediation_of(
    incident: Incident, policies: Policies, history: list[Remediation]
) -> IncidentRemediation | None:
    """`history`: the incident's attempts, oldest first (store.of_incident)."""
    policy = policy_of(incident, policies, history)
    if policy is None and not history:
        return None
    newest = history[-1] if history else None
    judged = [a for a in history if a.step in JUDGED]
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
    session: AsyncSession, incident: Incident, policies: Policies
) -> IncidentRemediation | None:
    return remediation_of(incident, policies, await store.of_incident(session, incident.id))


async def automation(
    session: AsyncSession, settings: Settings, policies: Policies, now: datetime
) -> Automation:
    """The switch and the budgets: every action type an `auto` policy names, and any other
    that ran in the last hour (a policy changed since, or removed)."""
    state = await session.scalar(select(AutomationState).where(AutomationState.id == 1))
    executed = await store.executed_in_last_hour(session, now)
    named = policies.auto_actions()
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
