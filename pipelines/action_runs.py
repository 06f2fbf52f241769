"""Intervene's own action runs, reported finished by Prefect (its event stream, or an
automation's webhook to POST /api/prefect/flow-runs): the action takes its run's end at once,
as the reconciler would on its next pass. So a run that Prefect's zombie automation marked
Crashed ends the action `crashed` even while no `intervene services` runs.

Only the run the action records (or, for an action that lost track of its run, a run carrying
this installation's tags for it) can end it: a run refused at admission (a Retry or Run from the
Prefect UI) fails without touching the action it named."""

from sqlalchemy.ext.asyncio import AsyncSession

from integrations.prefect_api import FlowRunInfo
from models.action import Action
from models.base import utcnow
from models.enums import ActionStatus
from models.installation import installation_tag
from models.services.actions import advance_action
from models.services.installation import installation_id
from models.services.pipelines import Outcome, Taken

ACTION_TAG = "action:"
ENDS: dict[str, ActionStatus] = {
    "COMPLETED": ActionStatus.SUCCESS,
    "FAILED": ActionStatus.FAILED,
    "CRASHED": ActionStatus.CRASHED,
    "CANCELLED": ActionStatus.CANCELLED,
}


def named_action(tags: list[str]) -> int | None:
    """The action id a run's tags name, if they name one."""
    for tag in tags:
        number = tag.removeprefix(ACTION_TAG)
        if number != tag and number.isdigit():
            return int(number)
    return None


def may_be_an_action_run(info: FlowRunInfo) -> bool:
    """Cheap, before any transaction: only a run tagged with an action can be one."""
    return named_action(info.tags) is not None


async def settle_action_run(session: AsyncSession, info: FlowRunInfo) -> Taken | None:
    """The action's status from its finished run; None when the run is not this installation's
    action run (another installation's, a user's flow tagged `action:` by chance)."""
    action_id = named_action(info.tags)
    if action_id is None or installation_tag(await installation_id(session)) not in info.tags:
        return None
    action = await session.get(Action, action_id)
    if action is None:
        return Taken(Outcome.IGNORED, None, f"action {action_id} does not exist")
    if action.flow_run_id not in (None, info.id):
        reason = f"flow run {info.id} is not the run of action {action_id}"
        return Taken(Outcome.IGNORED, action.incident_id, reason)
    status = ENDS.get(info.state_type)
    if status is None:
        reason = f"flow run {info.id} has not finished ({info.state_name})"
        return Taken(Outcome.IGNORED, action.incident_id, reason)
    if action.action_status.is_terminal:
        reason = f"action {action_id} is already {action.status}"
        return Taken(Outcome.SEEN, action.incident_id, reason)
    await advance_action(
        session,
        action_id=action_id,
        status=status,
        at=utcnow(),
        message=info.message or f"Flow run {info.state_name}",
        flow_run_id=info.id,
        flow_run_url=info.url,
    )
    reason = f"action {action_id} ended {status.value}, as its flow run {info.id} did"
    return Taken(Outcome.SETTLED, action.incident_id, reason)
