"""Admission: which flow run of an action deployment may act.

Only the run Intervene started for a pending action: the action exists, it has not ended, and
this run is the one recorded for it (its flow run id) or the one its launch asked for (the
idempotency key, when the launch timed out before the id was recorded). Anything else (Run or
Retry from the Prefect UI, `prefect deployment run`, a second run for the same action, another
installation's run) raises RunRefused, so it ends Failed in Prefect saying why, never a green
no-op. The state hooks apply the same rule (`is_the_started_run`) before writing.
"""

from dataclasses import dataclass, field
from typing import Any

from prefect import runtime
from prefect.context import FlowRunContext
from sqlalchemy.ext.asyncio import AsyncSession

from models.action import Action
from models.installation import INSTALLATION_PREFIX, action_run_key, installation_tag
from models.services.installation import installation_id


class RunRefused(RuntimeError):
    """This flow run may not act for its action; the message says why."""


class ForeignRun(RunRefused):
    """A run of another installation reached this one's worker: both serve the same deployment
    names on one Prefect server. It fails, loudly, rather than end Completed: its own
    installation's reconciler must not read a run that did nothing as a success."""


@dataclass(frozen=True)
class ThisRun:
    """The flow run asking: `id` None when a flow body is called outside any run (tests)."""

    id: str | None
    key: str | None = None
    tags: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Admitted:
    """What an admitted run knows of its action (the plan artifact shows it)."""

    action_id: int
    incident_id: int
    action_type: str
    message: str
    changes: list[str]
    params: dict[str, Any]
    estimated_duration: int
    estimated_cost: float
    rollback_of: int | None


def this_run() -> ThisRun:
    context = FlowRunContext.get()
    key = context.flow_run.idempotency_key if context and context.flow_run else None
    run_id = runtime.flow_run.id
    return ThisRun(id=str(run_id) if run_id else None, key=key, tags=list(runtime.flow_run.tags))


async def ours(session: AsyncSession, tags: list[str]) -> bool:
    """Whether a run belongs to this installation: runs of another one that shares the Prefect
    server carry their own installation tag, and their action ids are not ours."""
    theirs = [tag for tag in tags if tag.startswith(INSTALLATION_PREFIX)]
    return not theirs or installation_tag(await installation_id(session)) in theirs


def is_the_started_run(action: Action, run: ThisRun, installation: str) -> bool:
    """The run recorded for the action, or the one its launch's idempotency key names. A body
    called outside any run (tests call `flow.fn`) has no run to compare."""
    if run.id is None:
        return True
    return action.flow_run_id == run.id or run.key == action_run_key(installation, action.id)


def refusal(action_id: int, action: Action | None, run: ThisRun, installation: str) -> str | None:
    """Why this run may not act for action `action_id` (None: it may)."""
    if action is None:
        return f"action {action_id} does not exist"
    if action.action_status.is_terminal:
        return f"action {action_id} is already {action.status}: start it from Intervene"
    if not is_the_started_run(action, run, installation):
        return f"this run is not the one Intervene started for action {action_id}"
    return None


async def admit(session: AsyncSession, action_id: int, run: ThisRun) -> Admitted:
    """The action this run may act for, or RunRefused (ForeignRun for another installation's)."""
    mine = await installation_id(session)
    if not await ours(session, run.tags):
        raise ForeignRun(
            f"this flow run belongs to another installation ({', '.join(run.tags)}); this "
            f"worker serves {installation_tag(mine)}: give each installation its own Prefect "
            "server, deployments or work pool"
        )
    action = await session.get(Action, action_id)
    reason = refusal(action_id, action, run, mine)
    if reason is not None:
        raise RunRefused(reason)
    assert action is not None
    return Admitted(
        action_id=action.id,
        incident_id=action.incident_id,
        action_type=action.action_type,
        message=action.message or "",
        changes=list(action.changes or []),
        params=dict(action.params or {}),
        estimated_duration=action.estimated_duration,
        estimated_cost=action.estimated_cost,
        rollback_of=action.rollback_of,
    )
