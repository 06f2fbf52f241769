"""Escalation: each open incident's policy, run step by step on its clock.

A pass (a loop of `intervene services`, deployments/notifier.py) looks at every incident still
open (not acknowledged: acknowledging stops escalation). One not begun gets the first policy
that fits it (oncall/policies.py) and a clock that starts at its creation; a reopened one
(a new round: its reopen count) starts over from the reopen. Step n is due once the waits of the
steps before it have passed since the clock's start, as the acknowledge SLA timer counts from
the same start; each due step writes its notifications (models/services/notifications.py), once
per recipient and medium whatever the number of processes. A recurrence changes none of this:
it never pages again. Silenced or related alerts open no incident, so they page no one.
"""

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models.db import Database, transaction
from models.enums import IncidentStatus
from models.incident import Incident
from models.notification import Escalation
from models.oncall import OnCallOverride
from models.services import notifications as service
from models.services.notifications import Page, Waiting
from models.services.oncall_overrides import in_force
from oncall.policies import Policy, Step, policy_for
from oncall.rotation import covers_of, on_duty
from oncall.schedules import OnCallFile


def due_at(escalation: Escalation, policy: Policy, step: int) -> datetime:
    waited = sum(s.wait_minutes for s in policy.steps[:step])
    return escalation.started_at + timedelta(minutes=waited)


def pages_of(
    oncall: OnCallFile, overrides: list[OnCallOverride], step: Step, at: datetime
) -> list[Page]:
    """Whom the step reaches at `at`, by each medium the file gives them: a person by email
    and, with a Slack user id, by a Slack DM; a channel by its email and/or Slack channel."""
    notify = step.notify
    if notify.channel is not None:
        channel = next(c for c in oncall.channels if c.id == notify.channel)
        target = f"channel:{channel.id}"
        return _media(target, target, channel.email, channel.slack_channel)
    if notify.schedule is not None:
        schedule = oncall.schedule(notify.schedule)
        assert schedule is not None  # the loader refuses unknown names
        person_id = on_duty(schedule, covers_of(overrides, schedule), at)[0].person_id
        target = f"schedule:{schedule.name}"
    else:
        assert notify.person is not None
        person_id, target = notify.person, f"person:{notify.person}"
    person = oncall.person(person_id)
    if person is None:  # an override naming someone the file no longer has
        return []
    return _media(target, f"person:{person.id}", person.email, person.slack_user_id)


def _media(target: str, recipient: str, email: str | None, slack: str | None) -> list[Page]:
    pages = [Page(target, recipient, "email", email)] if email else []
    return pages + ([Page(target, recipient, "slack", slack)] if slack else [])


async def escalate_once(database: Database, oncall: OnCallFile, now: datetime) -> int:
    """One pass over the open incidents; how many notifications it wrote."""
    async with transaction(database.reader) as session:
        waiting = await service.open_incidents(session)
        overrides = await in_force(session, now - timedelta(days=1))
    written = 0
    for incident in waiting:
        if not _may_have_work(oncall, incident, now):
            continue
        async with transaction(database.writer) as session:
            written += await _advance(session, oncall, overrides, incident.incident_id, now)
    return written


def _may_have_work(oncall: OnCallFile, incident: Waiting, now: datetime) -> bool:
    escalation = incident.escalation
    if escalation is None or escalation.round < incident.reopen_count:
        return True
    policy = _policy(oncall, escalation.policy)
    if policy is None or escalation.next_step >= len(policy.steps):
        return False
    return due_at(escalation, policy, escalation.next_step) <= now


def _policy(oncall: OnCallFile, name: str | None) -> Policy | None:
    return next((p for p in oncall.policies if p.name == name), None)


async def _advance(
    session: AsyncSession,
    oncall: OnCallFile,
    overrides: list[OnCallOverride],
    incident_id: int,
    now: datetime,
) -> int:
    escalation = await service.lock_escalation(session, incident_id)
    incident = await session.scalar(select(Incident).where(Incident.id == incident_id))
    if incident is None or incident.status is not IncidentStatus.OPEN:
        return 0  # acknowledged (or further) meanwhile: escalation stops
    fits = policy_for(oncall.policies, incident.kind, incident.severity, incident.key)
    if escalation is None:
        start = incident.created_at if incident.reopen_count == 0 else now
        escalation = await service.begin(
            session,
            incident_id,
            policy=fits.name if fits else None,
            round=incident.reopen_count,
            at=start,
        )
        if escalation is None:  # another process began it: it goes on from there
            return 0
    elif escalation.round < incident.reopen_count:  # reopened: the policy starts over
        escalation.round, escalation.started_at, escalation.next_step = (
            incident.reopen_count,
            now,
            0,
        )
        escalation.policy = fits.name if fits else None
    policy = _policy(oncall, escalation.policy)
    written = 0
    while policy is not None and escalation.next_step < len(policy.steps):
        due = due_at(escalation, policy, escalation.next_step)
        if due > now:
            break
        step = policy.steps[escalation.next_step]
        written += await service.write_pages(
            session,
            incident_id=incident_id,
            policy=policy.name,
            round=escalation.round,
            step=escalation.next_step,
            pages=pages_of(oncall, overrides, step, max(due, escalation.started_at)),
            at=now,
        )
        escalation.next_step += 1
    escalation.updated_at = now
    return written
