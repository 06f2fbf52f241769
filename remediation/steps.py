"""Moving one attempt along, one step at a time, under its lease.

planned: dry-run (recorded in the action history); a plan that needs approval becomes an
    approval request (a person approves it; automation never does), otherwise the action is
    executed through the playbook service, as `POST .../actions/execute` does (same quota,
    history and events, requested by `automation:<check id>`, the idempotency key
    `remediation-<id>`), once the hourly budgets allow it. Paused: it waits here.
awaiting_approval: the request's decision: approved -> executing; rejected or expired -> failed.
executing: the action's end: success -> verifying (the check's flow run, trigger
    `verification`), or done without verification; anything else -> failed.
verifying: the verification run's verdict: passes -> verified (the incident mitigated, and
    resolved with `resolve_on_verify`); fails -> ineffective.
An ineffective attempt at `max_attempts`, or a failed one, gives up: rolled back where the
policy asks and the action allows, and escalated (journal.escalate).
"""

import logging
import time
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from checks.config import CheckSpec
from models.access import Principal
from models.action import Action
from models.base import utcnow
from models.db import Database, transaction
from models.enums import ACTIVE_STATUSES, ActionStatus, ApprovalStatus, RemediationStep, Role
from models.errors import DomainError, Forbidden
from models.remediation import Remediation
from models.services import remediations as store
from models.services.checks import run_of_flow_run
from models.services.incidents import get_incident
from models.settings import Settings
from playbooks.approvals import Approvals, shown_status
from playbooks.requests import Execution, Rollback
from playbooks.runs import REMEDIATION_KEY_PREFIX
from playbooks.service import Playbooks
from remediation import journal

log = logging.getLogger("intervene.remediation")

LEASE_SECONDS = 120  # longer than any one step takes (a dry-run, an execute's launch)
# How long one attempt's step may keep failing unexpectedly (Prefect or the database out of
# reach, say) before the attempt gives up and a person is told.
GIVE_UP_AFTER_ERRORS_SECONDS = 300.0
Step = RemediationStep


class Verifier(Protocol):
    async def start(self, check_id: str, *, remediation_id: int, incident_id: int) -> str:
        """Start a run of the check that records trigger `verification`; its flow run id."""
        ...


class Ask:
    """An approval request's body, as the loop asks it: an execution, or a rollback."""

    def __init__(
        self,
        action_type: str | None,
        params: dict[str, Any],
        reason: str,
        *,
        rollback_of: int | None = None,
    ) -> None:
        self.action_type = action_type
        self.params = params
        self.rollback_of = rollback_of
        self.reason: str | None = reason


class Steps:
    def __init__(
        self,
        database: Database,
        settings: Settings,
        playbooks: Playbooks,
        approvals: Approvals,
        specs: dict[str, CheckSpec],
        verifier: Verifier,
        owner: str,
    ) -> None:
        self.database = database
        self.settings = settings
        self.playbooks = playbooks
        self.approvals = approvals
        self.specs = specs
        self.verifier = verifier
        self.owner = owner
        self.errors: dict[int, tuple[float, int]] = {}  # attempt -> (first failure, failures)

    def principal(self, attempt: Remediation) -> Principal:
        """Automation acts as a responder: it may run what needs no approval, and approve
        nothing."""
        return Principal(name=journal.actor_of(attempt.origin), role=Role.RESPONDER)

    async def advance(self, remediation_id: int, *, paused: bool) -> None:
        async with transaction(self.database.writer) as session:
            attempt = await store.lease(
                session, remediation_id, owner=self.owner, now=utcnow(), seconds=LEASE_SECONDS
            )
        if attempt is None:
            return
        try:
            await self._advance(attempt, paused=paused)
            self.errors.pop(remediation_id, None)
        except Exception as exc:
            now = time.monotonic()
            since, count = self.errors.get(remediation_id, (now, 0))
            self.errors[remediation_id] = (since, count + 1)
            if count % 100 == 0:  # the first, then now and then: an outage is not a log flood
                log.exception("remediation %s: step %s failed", attempt.id, attempt.step)
            if now - since >= GIVE_UP_AFTER_ERRORS_SECONDS:  # not a passing outage
                self.errors.pop(remediation_id, None)
                await self._give_up(
                    attempt,
                    f"step {attempt.step} kept failing for {now - since:.0f} s:"
                    f" {type(exc).__name__}: {exc}",
                    step=Step.FAILED,
                )
        finally:
            async with transaction(self.database.writer) as session:
                await store.give_back(session, remediation_id, owner=self.owner)

    async def _advance(self, attempt: Remediation, *, paused: bool) -> None:
        step = Step(attempt.step)
        if step is Step.PLANNED:
            await self.planned(attempt, paused=paused)
        elif step is Step.AWAITING_APPROVAL:
            await self.awaiting_approval(attempt)
        elif step is Step.EXECUTING:
            await self.executing(attempt)
        elif step is Step.VERIFYING:
            await self.verifying(attempt)

    # -- the steps -------------------------------------------------------------------------

    async def planned(self, attempt: Remediation, *, paused: bool) -> None:
        if not await self._incident_active(attempt):
            await self._finish(attempt, Step.CANCELLED, "the incident was resolved meanwhile")
            return
        dry_run = await self._dry_run(attempt)
        if dry_run is None:
            return
        if dry_run.status == ActionStatus.DRY_RUN_FAILED:
            await self._give_up(
                attempt,
                f"its dry-run {dry_run.id} found it cannot run: {dry_run.message}",
                step=Step.FAILED,
            )
            return
        if paused:
            return  # nothing new starts while automation is paused
        if dry_run.requires_approval:
            await self._ask_approval(attempt, dry_run)
            return
        if not await self._spend_budget(attempt):
            return
        await self._execute(attempt)

    async def awaiting_approval(self, attempt: Remediation) -> None:
        assert attempt.approval_id is not None
        request = await self.approvals.get(attempt.incident_id, attempt.approval_id)
        status = shown_status(request)
        if status == ApprovalStatus.APPROVED.value and request.action_id is not None:
            await self._record(
                attempt,
                step=Step.EXECUTING,
                say=(
                    "executing",
                    f"{request.decided_by} approved request {request.id}: action"
                    f" {request.action_id} runs",
                ),
                action_id=request.action_id,
                executed_at=utcnow(),
            )
        elif status in (ApprovalStatus.REJECTED.value, ApprovalStatus.EXPIRED.value):
            who = f" by {request.decided_by}" if request.decided_by else ""
            await self._give_up(
                attempt, f"approval request {request.id} was {status}{who}", step=Step.FAILED
            )

    async def executing(self, attempt: Remediation) -> None:
        if attempt.action_id is None:  # stopped between spending the budget and executing
            await self._execute(attempt)
            return
        action = await self._action(attempt.action_id)
        status = ActionStatus(action.status)
        if not status.is_terminal:
            return
        if status is not ActionStatus.SUCCESS:
            await self._give_up(
                attempt, f"action {action.id} ended {status.value}", step=Step.FAILED
            )
            return
        policy = attempt.policy
        if not policy.get("verify", True):
            async with transaction(self.database.writer) as session:
                row = await self._row(session, attempt)
                moved = await journal.settle_incident(
                    session,
                    row,
                    resolve=False,
                    notes=f"action {action.id} succeeded (not verified)",
                    at=utcnow(),
                )
                await journal.record(
                    session,
                    row,
                    at=utcnow(),
                    step=Step.DONE,
                    say=("done", f"action {action.id} succeeded; not verified: {moved}"),
                    outcome=f"action {action.id} succeeded",
                )
            return
        if attempt.check_id is None:  # a routed alert's: its source says whether it worked
            within = int(policy.get("verify_within_seconds", 900))
            await self._record(
                attempt,
                step=Step.VERIFYING,
                say=(
                    "verifying",
                    f"action {action.id} succeeded; its source has {within} s to resolve the alert",
                ),
            )
            return
        flow_run_id = await self.verifier.start(
            attempt.check_id, remediation_id=attempt.id, incident_id=attempt.incident_id
        )
        await self._record(
            attempt,
            step=Step.VERIFYING,
            say=(
                "verifying",
                f"action {action.id} succeeded; check {attempt.check_id} runs again"
                f" (flow run {flow_run_id})",
            ),
            verify_flow_run_id=flow_run_id,
        )

    async def verifying(self, attempt: Remediation) -> None:
        if attempt.check_id is None:
            await self.alert_verifying(attempt)
            return
        assert attempt.verify_flow_run_id is not None
        async with transaction(self.database.reader) as session:
            run = await run_of_flow_run(session, attempt.verify_flow_run_id)
        if run is None:
            waited = (utcnow() - attempt.step_started_at).total_seconds()
            if waited > self.settings.remediation_verify_timeout_seconds:
                await self._give_up(
                    attempt,
                    f"its verification run {attempt.verify_flow_run_id} recorded nothing in"
                    f" {waited:.0f} s",
                    step=Step.FAILED,
                )
            return
        if run.passed:
            async with transaction(self.database.writer) as session:
                row = await self._row(session, attempt)
                notes = (
                    f"action {attempt.action_id} fixed it: check run {run.id} of"
                    f" {attempt.check_id} passes (value {run.value:g})"
                    if run.value is not None
                    else f"action {attempt.action_id} fixed it: check run {run.id} passes"
                )
                moved = await journal.settle_incident(
                    session,
                    row,
                    resolve=bool(attempt.policy.get("resolve_on_verify", True)),
                    notes=notes,
                    at=utcnow(),
                )
                await journal.record(
                    session,
                    row,
                    at=utcnow(),
                    step=Step.VERIFIED,
                    say=("verified", f"{notes}; incident {moved}"),
                    verify_check_run_id=run.id,
                    verified_at=utcnow(),
                    outcome=notes,
                )
            return
        why = run.error or (
            f"value {run.value:g} still fails" if run.value is not None else "fails"
        )
        reason = f"check run {run.id} after action {attempt.action_id}: {why}"
        if attempt.attempt >= int(attempt.policy.get("max_attempts", 1)):
            await self._give_up(
                attempt, f"ineffective: {reason}", step=Step.INEFFECTIVE, verify_run=run.id
            )
            return
        await self._record(
            attempt,
            step=Step.INEFFECTIVE,
            say=("ineffective", f"{reason}; attempts left"),
            verify_check_run_id=run.id,
            outcome=f"ineffective: {reason}",
        )

    async def alert_verifying(self, attempt: Remediation) -> None:
        """A routed alert's fix works when the alert's source resolves it in time; a person
        resolving it meanwhile ends the attempt unjudged."""
        executed = attempt.executed_at or attempt.step_started_at
        async with transaction(self.database.reader) as session:
            incident = await get_incident(session, attempt.incident_id)
            resolved = await store.resolution(session, attempt.incident_id, executed)
        source = str((incident.metadata_ or {}).get("source", ""))
        if resolved is not None and incident.status not in ACTIVE_STATUSES:
            if resolved.actor != source:
                await self._finish(
                    attempt, Step.CANCELLED, f"{resolved.actor} resolved the incident meanwhile"
                )
                return
            notes = (
                f"action {attempt.action_id} fixed it: {source} resolved the alert at"
                f" {resolved.at.isoformat()}"
            )
            await self._record(
                attempt,
                step=Step.VERIFIED,
                say=("verified", f"{notes}; incident {incident.status.value}"),
                verified_at=utcnow(),
                outcome=notes,
            )
            return
        if incident.status not in ACTIVE_STATUSES:  # closed by a person without a resolve
            await self._finish(attempt, Step.CANCELLED, f"incident {incident.status.value}")
            return
        within = int(attempt.policy.get("verify_within_seconds", 900))
        waited = (utcnow() - attempt.step_started_at).total_seconds()
        if waited <= within:
            return
        reason = f"{source or 'its source'} did not resolve the alert within {within} s of action"
        reason += f" {attempt.action_id}"
        if attempt.attempt >= int(attempt.policy.get("max_attempts", 1)):
            await self._give_up(attempt, f"ineffective: {reason}", step=Step.INEFFECTIVE)
            return
        await self._record(
            attempt,
            step=Step.INEFFECTIVE,
            say=("ineffective", f"{reason}; attempts left"),
            outcome=f"ineffective: {reason}",
        )

    # -- the parts ---------------------------------------------------------------------------

    async def _dry_run(self, attempt: Remediation) -> Action | None:
        if attempt.dry_run_action_id is not None:
            return await self._action(attempt.dry_run_action_id)
        try:
            recorded = await self.playbooks.dry_run(attempt.incident_id, self._ask(attempt))
        except DomainError as exc:
            await self._give_up(
                attempt, f"its dry-run was refused: {exc.message}", step=Step.FAILED
            )
            return None
        await self._record(
            attempt,
            say=(
                "dry_run",
                f"dry-run {recorded.action.id}: {recorded.action.message}"
                + (" (needs approval)" if recorded.action.requires_approval else ""),
            ),
            dry_run_action_id=recorded.action.id,
        )
        return recorded.action

    async def _ask_approval(self, attempt: Remediation, dry_run: Action) -> None:
        try:
            request = await self.approvals.request(
                attempt.incident_id,
                Ask(
                    attempt.action_type,
                    attempt.params,
                    f"automatic remediation {attempt.id} of {attempt.origin_words}",
                ),
                self.principal(attempt),
            )
        except DomainError as exc:
            await self._give_up(
                attempt, f"its approval request was refused: {exc.message}", step=Step.FAILED
            )
            return
        await self._record(
            attempt,
            step=Step.AWAITING_APPROVAL,
            say=(
                "awaiting_approval",
                f"dry-run {dry_run.id} needs approval: approval request {request.id} waits"
                " for an approver; nothing runs until one approves it",
            ),
            approval_id=request.id,
        )

    async def _spend_budget(self, attempt: Remediation) -> bool:
        """Take one of the hour's automatic executions (under the automation row's lock), and
        move to executing; False (noted once) while a budget is spent."""
        now = utcnow()
        async with transaction(self.database.writer) as session:
            state = await store.automation(session, lock=True)
            row = await self._row(session, attempt)
            if state.paused:
                return False
            budget = await store.budget(
                session,
                attempt.action_type,
                action_limit=self.settings.remediation_action_budget(attempt.action_type),
                total_limit=self.settings.remediation_budget_per_hour,
                now=now,
            )
            if not budget.allows:
                which = (
                    f"{attempt.action_type}'s hourly budget"
                    if budget.action_left <= 0
                    else "the hourly budget of automatic executions"
                )
                waiting = f"waiting: {which} is spent"
                if row.outcome != waiting:
                    await journal.record(
                        session, row, at=now, say=("waiting", waiting), outcome=waiting
                    )
                return False
            await journal.record(session, row, at=now, step=Step.EXECUTING, executed_at=now)
        return True

    async def _execute(self, attempt: Remediation) -> None:
        ask = self._ask(attempt)
        try:
            recorded = await self.playbooks.execute(
                attempt.incident_id,
                ask,
                principal=self.principal(attempt),
                idempotency_key=f"{REMEDIATION_KEY_PREFIX}{attempt.id}",
                wait=0,
            )
        except DomainError as exc:
            await self._give_up(attempt, f"execute was refused: {exc.message}", step=Step.FAILED)
            return
        await self._record(
            attempt,
            say=(
                "executing",
                f"action {recorded.action.id} ({attempt.action_type}) runs"
                + (
                    f", flow run {recorded.action.flow_run_id}"
                    if recorded.action.flow_run_id
                    else ""
                ),
            ),
            action_id=recorded.action.id,
        )

    async def _give_up(
        self,
        attempt: Remediation,
        reason: str,
        *,
        step: RemediationStep,
        verify_run: int | None = None,
    ) -> None:
        """End the round: roll back where asked and possible, escalate, hold automation off."""
        rollback = await self._roll_back(attempt) if step is Step.INEFFECTIVE else None
        if rollback is not None:
            reason += f"; {rollback[1]}"
        async with transaction(self.database.writer) as session:
            row = await self._row(session, attempt)
            at = utcnow()
            incident = await journal.record(
                session,
                row,
                at=at,
                step=step,
                verify_check_run_id=verify_run or row.verify_check_run_id,
                rollback_action_id=rollback[0] if rollback else None,
                outcome=reason,
                gave_up=True,
            )
            if rollback is not None:  # undone, or asked of an approver, or why not
                verb = "rolled_back" if rollback[0] is not None else "rollback_not_done"
                journal.note(incident, row, verb, rollback[1], at)
            journal.escalate(incident, row, reason, row.attempt, at)
        log.warning(
            "remediation %s gave up on incident %s: %s", attempt.id, attempt.incident_id, reason
        )

    async def _roll_back(self, attempt: Remediation) -> tuple[int | None, str] | None:
        if not attempt.policy.get("rollback_on_failed_verification") or attempt.action_id is None:
            return None
        try:
            action = await self.playbooks.rollback(
                attempt.incident_id,
                attempt.action_id,
                Rollback(approved_by=None, requested_by=journal.actor_of(attempt.origin)),
                principal=self.principal(attempt),
                wait=0,
            )
        except Forbidden as exc:  # undoing it needs approval: a person's call, asked for
            return None, await self._ask_rollback(attempt, attempt.action_id, exc)
        except DomainError as exc:
            return None, f"not rolled back: {exc.message}"
        return action.id, f"rolled back by action {action.id}"

    async def _ask_rollback(self, attempt: Remediation, action_id: int, refused: Forbidden) -> str:
        ask = Ask(None, {}, f"roll back automatic remediation {attempt.id}", rollback_of=action_id)
        try:
            request = await self.approvals.request(
                attempt.incident_id, ask, self.principal(attempt)
            )
        except DomainError as exc:
            return f"not rolled back: {refused.message}; no approval request: {exc.message}"
        return (
            f"rolling action {action_id} back needs approval: approval request {request.id}"
            " waits for an approver"
        )

    async def _finish(self, attempt: Remediation, step: RemediationStep, why: str) -> None:
        async with transaction(self.database.writer) as session:
            row = await self._row(session, attempt)
            await journal.record(
                session, row, at=utcnow(), step=step, say=(step.value, why), outcome=why
            )

    def _ask(self, attempt: Remediation) -> Execution:
        return Execution(
            action_type=attempt.action_type,
            params=dict(attempt.params),
            requested_by=journal.actor_of(attempt.origin),
            approved_by=None,
        )

    async def _incident_active(self, attempt: Remediation) -> bool:
        async with transaction(self.database.reader) as session:
            incident = await get_incident(session, attempt.incident_id)
        return incident.status in ACTIVE_STATUSES

    async def _action(self, action_id: int) -> Action:
        async with transaction(self.database.reader) as session:
            action = await session.get(Action, action_id)
        assert action is not None
        return action

    async def _record(self, attempt: Remediation, **fields: Any) -> None:
        """journal.record on the attempt's locked row, in a transaction of its own."""
        async with transaction(self.database.writer) as session:
            await journal.record(session, await self._row(session, attempt), at=utcnow(), **fields)

    async def _row(self, session: AsyncSession, attempt: Remediation) -> Remediation:
        row = await session.get(Remediation, attempt.id, with_for_update=True)
        assert row is not None
        return row
