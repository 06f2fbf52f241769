"""Playbook steps on the incident's timeline: a dry-run, an execution or rollback recorded, each
run's outcome, an approval asked and decided. Rows beside the lifecycle's, in the same
transaction as the step; no event of their own (the action's and the approval's say it)."""

from datetime import datetime

from models.access import ApprovalRequest
from models.action import Action
from models.enums import ActionStatus
from models.incident import TimelineEntry

MAX_NOTES = 4000


def recorded(action: Action, at: datetime) -> TimelineEntry:
    """An action just recorded: dry_run, execute or rollback, by whoever asked for it."""
    verb = "dry_run" if action.dry_run else "rollback" if action.rollback_of else "execute"
    notes = f"action #{action.id} {action.action_type} ({action.status})"
    if action.rollback_of:
        notes += f", rolls back action #{action.rollback_of}"
    if action.approved_by:
        notes += f", approved by {action.approved_by}"
    if action.message and ActionStatus(action.status).is_terminal:
        notes += f": {action.message}"
    return _entry(action.incident_id, action.requested_by, verb, notes, at)


def finished(action: Action, at: datetime) -> TimelineEntry:
    """A run's outcome (action_success, action_failed, action_crashed, action_cancelled), with
    its message and the Prefect run."""
    notes = f"action #{action.id} {action.action_type}"
    if action.actual_duration is not None:
        notes += f" after {action.actual_duration:.1f} s"
    if action.message:
        notes += f": {action.message}"
    if action.flow_run_url:
        notes += f"\n{action.flow_run_url}"
    return _entry(action.incident_id, f"action:{action.id}", f"action_{action.status}", notes, at)


def approval(request: ApprovalRequest, verb: str, actor: str, at: datetime) -> TimelineEntry:
    """approval_requested, approval_approved or approval_rejected."""
    what = request.action_type
    if request.rollback_of:
        what = f"rollback of action #{request.rollback_of}"
    notes = f"approval #{request.id}: {what}"
    if request.action_id is not None:
        notes += f" -> action #{request.action_id}"
    reason = request.reason if verb == "approval_requested" else request.decision_notes
    if reason:
        notes += f"\n{reason}"
    return _entry(request.incident_id, actor, verb, notes, at)


def _entry(incident_id: int, actor: str, verb: str, notes: str, at: datetime) -> TimelineEntry:
    return TimelineEntry(
        incident_id=incident_id,
        actor=actor,
        verb=verb,
        from_status=None,
        to_status=None,
        notes=notes[:MAX_NOTES],
        at=at,
    )
