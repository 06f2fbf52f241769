"""Closed vocabularies shared by the tables, the API schemas and the flows."""

from enum import StrEnum


class IncidentStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    MITIGATED = "mitigated"
    RESOLVED = "resolved"
    CLOSED = "closed"


ACTIVE_STATUSES = (IncidentStatus.OPEN, IncidentStatus.ACKNOWLEDGED, IncidentStatus.MITIGATED)


class Severity(StrEnum):
    SEV1 = "sev1"
    SEV2 = "sev2"
    SEV3 = "sev3"
    SEV4 = "sev4"

    @property
    def rank(self) -> int:
        """1 is the most severe."""
        return int(self.value[-1])


class IncidentKind(StrEnum):
    INVARIANT = "invariant"
    BUDGET = "budget"
    PLANNER = "planner"
    PIPELINE = "pipeline"  # a failed or crashed run of one of the platform's Prefect flows
    ALERT = "alert"  # from a tool the platform runs: Alertmanager, Grafana, PagerDuty events


class RunTrigger(StrEnum):
    """What started a check run: only the schedule's runs prove the schedule works (staleness,
    the next run); a manual run or a playbook's re-run says only that the query does."""

    SCHEDULE = "schedule"
    MANUAL = "manual"
    PLAYBOOK = "playbook"
    VERIFICATION = "verification"  # remediation's re-run, judging whether its fix worked


class Verb(StrEnum):
    """What can be done to an incident; each is one row of the transition table."""

    ACKNOWLEDGE = "acknowledge"
    MITIGATE = "mitigate"
    RESOLVE = "resolve"
    CLOSE = "close"
    REOPEN = "reopen"
    ASSIGN = "assign"


class SlaTimer(StrEnum):
    """The stages an incident's severity gives a deadline (see models/sla.py)."""

    ACKNOWLEDGE = "acknowledge"
    MITIGATE = "mitigate"
    RESOLVE = "resolve"


class SlaState(StrEnum):
    PENDING = "pending"  # not done, not due yet
    MET = "met"  # done by its due time
    BREACHED = "breached"  # done late, or not done and past due


class EventType(StrEnum):
    INCIDENT_CREATED = "incident_created"
    INCIDENT_UPDATED = "incident_updated"
    ACTION_EXECUTED = "action_executed"
    REMEDIATION_FAILED = "remediation_failed"  # automation gave up on an incident


class RemediationStep(StrEnum):
    """Where an automatic remediation attempt is (models/remediation.py)."""

    PLANNED = "planned"
    AWAITING_APPROVAL = "awaiting_approval"
    EXECUTING = "executing"
    VERIFYING = "verifying"
    VERIFIED = "verified"  # the check passed again after the action
    DONE = "done"  # the action succeeded; no verification was asked for
    INEFFECTIVE = "ineffective"  # the action succeeded, the check still fails
    FAILED = "failed"  # the action failed, or could not run (refused, rejected, expired)
    CANCELLED = "cancelled"  # the incident ended (or automation was switched off) meanwhile

    @property
    def in_flight(self) -> bool:
        return self in IN_FLIGHT_STEPS


IN_FLIGHT_STEPS = frozenset(
    {
        RemediationStep.PLANNED,
        RemediationStep.AWAITING_APPROVAL,
        RemediationStep.EXECUTING,
        RemediationStep.VERIFYING,
    }
)


class ActionStatus(StrEnum):
    """An action's status; it only moves forward (see `ActionStatus.rank`)."""

    DRY_RUN_SUCCESS = "dry_run_success"
    DRY_RUN_FAILED = "dry_run_failed"  # the preview found it cannot run (e.g. no cluster)
    PENDING = "pending"  # recorded, flow run not created yet
    SCHEDULED = "scheduled"  # flow run created, waiting for a worker
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    CRASHED = "crashed"
    CANCELLED = "cancelled"

    @property
    def rank(self) -> int:
        return _ACTION_RANK[self]

    @property
    def is_terminal(self) -> bool:
        return self.rank == _TERMINAL_RANK


_TERMINAL_RANK = 3
_ACTION_RANK = {
    ActionStatus.PENDING: 0,
    ActionStatus.SCHEDULED: 1,
    ActionStatus.RUNNING: 2,
    **{
        s: _TERMINAL_RANK
        for s in (
            ActionStatus.DRY_RUN_SUCCESS,
            ActionStatus.DRY_RUN_FAILED,
            ActionStatus.SUCCESS,
            ActionStatus.FAILED,
            ActionStatus.CRASHED,
            ActionStatus.CANCELLED,
        )
    },
}


class Role(StrEnum):
    """What a token may do; each role may do everything the ones before it may."""

    VIEWER = "viewer"  # reads
    RESPONDER = "responder"  # + transitions incidents, dry-runs, executes what needs no approval
    APPROVER = "approver"  # + approves
    ADMIN = "admin"  # + manages tokens, reads the audit log

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def allows(self, needed: "Role") -> bool:
        return self.rank >= needed.rank


class ApprovalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"  # and executed, exactly once
    REJECTED = "rejected"
    EXPIRED = "expired"


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # waiting for its turn or for its next attempt
    SUCCEEDED = "succeeded"  # the target answered 2xx
    FAILED = "failed"  # refused (4xx), blocked, or still failing when its retry time ran out
