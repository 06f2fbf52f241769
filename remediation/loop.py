"""The remediation loop: detect -> plan -> act (only where allowed) -> verify -> resolve, or roll
back and escalate.

`Remediator.tick()` is one pass, run by `intervene services` every
INTERVENE_REMEDIATION_POLL_SECONDS. It is driven by what the database says, never by an event
it was handed, so a duplicate delivery, a retry or a second services process changes nothing:

1. every attempt in flight is moved along by whoever leases it (steps.py);
2. unless automation is paused, each active incident of an `auto` check whose newest violation
   came after its last attempt (or of an alert routed by a rule with an `auto` policy that fired
   again after it: alerts/rules.py) gets a new attempt, if its round has attempts left and it is not
   held by a give-up that no person has released. The unique index on attempts in flight lets
   one opener win; the others find it taken.
"""

import json
import logging
import os
import socket
from dataclasses import dataclass
from datetime import datetime

from alerts.rules import AlertRules
from checks.config import CheckSpec
from checks.remediation import RemediationPolicy
from models.base import utcnow
from models.db import Database, transaction
from models.enums import RemediationStep
from models.remediation import Remediation
from models.services import remediations as store
from models.services.incidents import get_incident
from models.settings import Settings
from playbooks.approvals import Approvals
from playbooks.service import Playbooks
from remediation import journal
from remediation.steps import Steps, Verifier

log = logging.getLogger("intervene.remediation")


@dataclass(frozen=True)
class Started:
    remediation_id: int
    incident_id: int


def owner_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:100]


def current_round(history: list[Remediation]) -> list[Remediation]:
    """The attempts since the last give-up a person released (a release starts a new round)."""
    released = [i for i, a in enumerate(history) if a.gave_up and a.released_at is not None]
    return history[released[-1] + 1 :] if released else history


def seen_until(attempt: Remediation) -> datetime | None:
    """Violations found after this time call for another attempt: an ineffective fix's own
    verification run counts (it ran after the action), a finished one's earlier runs do not."""
    if attempt.step == RemediationStep.INEFFECTIVE and attempt.executed_at is not None:
        return attempt.executed_at
    return attempt.finished_at


class Remediator:
    def __init__(
        self,
        database: Database,
        settings: Settings,
        playbooks: Playbooks,
        specs: dict[str, CheckSpec],
        verifier: Verifier,
        owner: str | None = None,
        rules: AlertRules | None = None,
    ) -> None:
        self.database = database
        self.settings = settings
        self.specs = specs
        self.rules = rules or AlertRules()
        self.busy = False  # the last pass found attempts in flight (or started one)
        self.steps = Steps(
            database,
            settings,
            playbooks,
            Approvals(database, playbooks),
            specs,
            verifier,
            owner or owner_name(),
        )

    @property
    def auto(self) -> dict[str, CheckSpec]:
        return {
            check_id: spec
            for check_id, spec in self.specs.items()
            if spec.remediation is not None and spec.remediation.mode == "auto"
        }

    async def tick(self) -> list[Started]:
        """One pass: move what is in flight, then start what is due; the attempts it started."""
        async with transaction(self.database.reader) as session:
            paused = (await store.automation(session)).paused
            moving = await store.in_flight(session)
        for attempt in moving:
            await self.steps.advance(attempt.id, paused=paused)
        self.busy = bool(moving)
        if paused:
            return []
        started = await self.start_due()
        for item in started:
            await self.steps.advance(item.remediation_id, paused=False)
        self.busy = self.busy or bool(started)
        return started

    async def start_due(self) -> list[Started]:
        auto = self.auto
        routed = self.rules.policies(mode="auto")
        async with transaction(self.database.reader) as session:
            failing = await store.failing(session, auto)
            failing += await store.alerting(session, routed)
            history = await store.of_incidents(session, [f.incident.id for f in failing])
        started = []
        for found in failing:
            attempts = history[found.incident.id]
            if any(a.in_flight for a in attempts):
                continue
            began = await self._start(found, attempts)
            if began is not None:
                started.append(began)
        return started

    def _policy(self, found: store.Failing) -> tuple[RemediationPolicy, dict[str, object]]:
        """The policy that fixes `found` and the params its action runs with."""
        if found.rule is not None:
            rule = self.rules.rule(found.rule)
            assert rule is not None
            assert rule.remediation is not None
            return rule.remediation, rule.remediation.run_params(rule.params)
        assert found.check_id is not None
        spec = self.specs[found.check_id]
        assert spec.remediation is not None
        return spec.remediation, spec.remediation_params()

    async def _start(self, found: store.Failing, history: list[Remediation]) -> Started | None:
        policy, params = self._policy(found)
        incident = found.incident
        held = [a for a in history if a.blocks]
        now = utcnow()
        if held:
            acknowledged = incident.acknowledged_at
            if acknowledged is None or acknowledged <= (held[-1].finished_at or now):
                return None  # never a loop: it waits for a person
        round_ = [] if held else current_round(history)
        boundaries = [b for b in map(seen_until, history) if b is not None]
        if boundaries and found.run_started_at <= max(boundaries):
            return None  # no violation since the last attempt (a released one's included)
        if len(round_) >= policy.max_attempts:
            return None
        async with transaction(self.database.writer) as session:
            if held:  # acknowledged since it gave up: a person has it, a new round may start
                await store.release(
                    session, incident.id, by=incident.acknowledged_by or "acknowledge", at=now
                )
            attempt = await store.start(
                session,
                {
                    "incident_id": incident.id,
                    "key": f"{incident.kind.value}:{incident.key}",
                    "check_id": found.check_id,
                    "rule": found.rule,
                    "attempt": len(round_) + 1,
                    "step": RemediationStep.PLANNED.value,
                    "action_type": policy.action,
                    "params": params,
                    "policy": policy.model_dump(mode="json"),
                    "trigger_run_id": found.run_id,
                    "detected_at": found.run_started_at,
                    "created_at": now,
                    "updated_at": now,
                    "step_started_at": now,
                },
            )
            if attempt is None:
                return None  # another opener has this key's attempt in flight
            locked = await get_incident(session, incident.id, for_update=True)
            journal.note(
                locked,
                attempt,
                "planned",
                f"{policy.action} {json.dumps(attempt.params)} for {_violation(found)},"
                f" attempt {attempt.attempt} of {policy.max_attempts}",
                now,
            )
        log.info(
            "incident %s: remediation %s started (%s, attempt %s)",
            incident.id,
            attempt.id,
            policy.action,
            attempt.attempt,
        )
        return Started(attempt.id, incident.id)


def _violation(found: store.Failing) -> str:
    if found.run_id is not None:
        return f"check run {found.run_id}"
    return f"the alert (rule {found.rule}) that fired at {found.run_started_at.isoformat()}"
