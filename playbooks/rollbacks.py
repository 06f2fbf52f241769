"""Whether an action can be rolled back: the rollback endpoint's reason for a 400, and every
action's `rollback_available` as the API shows it, by the same rule.

An action can be rolled back when its plan said it could, its type has a rollback, it ran (and
succeeded, or failed after capturing the state a rollback restores), it is not itself a
rollback, and no rollback has undone it or is undoing it (models/services/rollbacks.py: one that
failed, crashed or was cancelled does not count).
"""

from models.action import Action
from models.enums import ActionStatus
from playbooks.catalog import ActionSpec, get_action_spec


def refusal(original: Action, spec: ActionSpec | None) -> str | None:
    """Why `original` has no rollback at all, whatever rollbacks it had; None when it has."""
    if original.dry_run:
        return "it was a dry-run"
    if original.rollback_of is not None:
        return "it is itself a rollback"
    if original.status != ActionStatus.SUCCESS.value and not (
        original.prior_state and original.action_status.is_terminal
    ):  # a run that failed after capturing the prior state may have changed things
        return f"it did not succeed (status {original.status})"
    if spec is None or not spec.rollback_supported:
        return f"{original.action_type} has no rollback"
    return None


def available(action: Action, *, undone: bool) -> bool:
    """`rollback_available`: a rollback would be accepted now (approval aside). `undone`: a
    rollback of it is in flight or succeeded."""
    spec = get_action_spec(action.action_type)
    return action.rollback_available and not undone and refusal(action, spec) is None
