"""Who may approve: `approved_by` names the caller, an approver; and, unless the action's policy
lets an approver act alone (INTERVENE_SELF_APPROVAL), the approval comes from a second person
through an approval request (playbooks/approvals.py)."""

from models.access import Principal
from models.enums import Role
from models.errors import Forbidden
from models.settings import Settings


def approver_may_act_alone(action_type: str, settings: Settings) -> bool:
    return "*" in settings.self_approval or action_type in settings.self_approval


def check_approved_by(approved_by: str | None, principal: Principal) -> None:
    """An `approved_by` that is given must be the caller, and the caller an approver."""
    if approved_by is None:
        return
    if approved_by != principal.name:
        raise Forbidden(
            f"approved_by must name the caller ({principal.name}), not {approved_by}",
            details={"approved_by": approved_by, "principal": principal.name},
        )
    if not principal.allows(Role.APPROVER):
        raise Forbidden(
            f"Approving needs the approver role; {principal.name} is a {principal.role}",
            details={"role": principal.role.value, "required_role": Role.APPROVER.value},
        )


def gate_direct(
    what: str,
    action_type: str,
    *,
    requires_approval: bool,
    approved_by: str | None,
    principal: Principal,
    settings: Settings,
    details: dict[str, object],
) -> None:
    """The approval rules of an execute or rollback sent directly (not from a request)."""
    check_approved_by(approved_by, principal)
    if not requires_approval:
        return
    if approved_by is None:
        raise Forbidden(
            f"{what} requires approval: an approver sets approved_by to themselves where the"
            " action allows it, or request an approval (POST .../actions/approvals)",
            details=details | {"requires_approval": True},
        )
    if not approver_may_act_alone(action_type, settings):
        raise Forbidden(
            f"{what} needs a second person: request an approval (POST .../actions/approvals)"
            " and have another approver approve it",
            details=details | {"requires_approval": True, "separation_of_duties": True},
        )
