"""What an attempt writes: its own row, and the incident's timeline, in one transaction.

Each step is a timeline entry by `automation:<check id>` (`automation:rule:<name>` for a routed
alert's) whose verb names the step
(`remediation_planned`, `remediation_executing`, `remediation_verified`, ...) and whose notes
name the action and check-run ids; each is also an `incident_updated` event with that `change`.
Giving up adds the `remediation_failed` event, which webhooks may subscribe to.
"""

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from models.enums import ACTIVE_STATUSES, EventType, RemediationStep, Verb
from models.errors import InvalidTransition
from models.event import Event
from models.incident import Incident
from models.remediation import Remediation
from models.services.incidents import get_incident, transition_incident

ACTOR_PREFIX = "automation:"


def actor_of(origin: str) -> str:
    """`origin`: a check's id, or `rule:<name>` (Remediation.origin)."""
    return f"{ACTOR_PREFIX}{origin}"


def note(incident: Incident, remediation: Remediation, verb: str, notes: str, at: datetime) -> None:
    incident.note(
        actor=actor_of(remediation.origin),
        verb=f"remediation_{verb}",
        notes=f"remediation {remediation.id} (attempt {remediation.attempt}): {notes}",
        at=at,
        changes=None,
    )


async def record(
    session: AsyncSession,
    remediation: Remediation,
    *,
    at: datetime,
    step: RemediationStep | None = None,
    say: tuple[str, str] | None = None,
    **changes: Any,
) -> Incident:
    """Write `changes` (and `step`) to the attempt and, given `say` (verb, notes), a timeline
    entry; a terminal step finishes the attempt (it leaves the in-flight index)."""
    incident = await get_incident(session, remediation.incident_id, for_update=True)
    for field, value in changes.items():
        setattr(remediation, field, value)
    if step is not None and step.value != remediation.step:
        remediation.step = step.value
        remediation.step_started_at = at
        if not step.in_flight:
            remediation.finished_at = at
            remediation.lease_owner = remediation.lease_until = None
    remediation.updated_at = at
    if say is not None:
        note(incident, remediation, *say, at)
    return incident


async def settle_incident(
    session: AsyncSession, remediation: Remediation, *, resolve: bool, notes: str, at: datetime
) -> str:
    """Move the incident to mitigated (and resolved, with `resolve`) as the fix's proof says;
    what was done, in words (nothing when a person or the check got there first)."""
    incident = await get_incident(session, remediation.incident_id, for_update=True)
    actor = actor_of(remediation.origin)
    verbs = [Verb.MITIGATE, Verb.RESOLVE] if resolve else [Verb.MITIGATE]
    done = []
    for verb in verbs:
        if incident.status not in ACTIVE_STATUSES:
            break
        try:
            incident.check(verb)
        except InvalidTransition:
            continue  # already mitigated: resolving is what is left
        await transition_incident(
            session, incident_id=incident.id, verb=verb, actor=actor, notes=notes, at=at
        )
        done.append(verb.value)
    return " and ".join(f"{verb}d" for verb in done) or f"left {incident.status.value}"


def escalate(
    incident: Incident, remediation: Remediation, reason: str, attempts: int, at: datetime
) -> None:
    """The loop gave up on this incident: a timeline entry and `incident_updated` with
    `change: remediation_failed` (note), and the `remediation_failed` event of its own."""
    note(incident, remediation, "failed", f"gave up after {attempts} attempt(s): {reason}", at)
    incident.events.add(
        Event.of(
            EventType.REMEDIATION_FAILED,
            {
                "id": incident.id,
                "incident_id": incident.id,
                "status": incident.status.value,
                "remediation_id": remediation.id,
                "check_id": remediation.check_id,
                "rule": remediation.rule,
                "action_type": remediation.action_type,
                "action_id": remediation.action_id,
                "rollback_action_id": remediation.rollback_action_id,
                "attempts": attempts,
                "reason": reason,
            },
        )
    )
