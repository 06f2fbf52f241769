"""Start an action's flow run once its row is committed, and wait a while for it to end.

Only ids and parameters cross to the Launcher. If it cannot start the run the action is kept,
marked failed to start (Unavailable: 503); if the request may have reached Prefect, the action
stays pending for the reconciler, which finds the run by its tag or fails it.
"""

import asyncio
import time

from models.action import Action
from models.base import utcnow
from models.db import transaction
from models.enums import ActionStatus
from models.errors import NotFound, Unavailable
from models.installation import action_run_key, action_run_tags
from models.services import actions as service
from playbooks.catalog import ActionSpec
from playbooks.engine import Engine
from playbooks.launcher import LaunchError, run_name

WAIT_POLL_SECONDS = 0.2
REMEDIATION_KEY_PREFIX = "remediation-"  # an automatic remediation's execute: its run says so


async def launch(engine: Engine, spec: ActionSpec, action: Action, *, rollback: bool) -> Action:
    parameters = {
        "action_id": action.id,
        "params": action.params,
        "dry_run": False,
        "rollback": rollback,
        "prior_state": action.prior_state,
    }
    installation = await engine.installation()
    tags = action_run_tags(installation, action.id, action.incident_id)
    key_of_request = action.idempotency_key or ""
    if key_of_request.startswith(REMEDIATION_KEY_PREFIX):  # the loop's (remediation/steps.py)
        tags.append(f"remediation:{key_of_request.removeprefix(REMEDIATION_KEY_PREFIX)}")
    key = action_run_key(installation, action.id)
    undone = action.rollback_of if rollback and action.rollback_of is not None else action.id
    name = run_name(action.action_type, action.incident_id, undone, rollback=rollback)
    try:
        launched = await engine.launcher.launch(
            spec.deployment, parameters, key=key, tags=tags, name=name
        )
    except LaunchError as exc:
        raise await _not_started(engine, action, exc) from exc
    async with transaction(engine.database.writer) as session:
        updated = await service.advance_action(
            session,
            action_id=action.id,
            status=ActionStatus.SCHEDULED,
            at=utcnow(),
            flow_run_id=launched.flow_run_id,
            flow_run_url=launched.url,
        )
    if updated is None:
        raise NotFound(f"Action {action.id} disappeared", details={"action_id": action.id})
    return updated


async def _not_started(engine: Engine, action: Action, exc: LaunchError) -> Unavailable:
    """The 503 for a run Prefect did not start: the action fails to start, unless a run may
    exist (the reconciler finds it by its tag, or fails it)."""
    if exc.maybe_started:
        return Unavailable(
            f"Action {action.id} was recorded; Prefect did not confirm its start: {exc}",
            details={"action_id": action.id, "status": ActionStatus.PENDING.value},
        )
    async with transaction(engine.database.writer) as session:
        await service.advance_action(
            session,
            action_id=action.id,
            status=ActionStatus.FAILED,
            at=utcnow(),
            message=f"Failed to start: {exc}",
        )
    return Unavailable(
        f"Action {action.id} was recorded but could not be started: {exc}",
        details={"action_id": action.id, "status": ActionStatus.FAILED.value},
    )


async def wait_for(engine: Engine, action: Action, seconds: float) -> Action:
    """The action as it is when it ends, or after `seconds`, whichever comes first."""
    deadline = time.monotonic() + seconds
    while not action.action_status.is_terminal and time.monotonic() < deadline:
        await asyncio.sleep(WAIT_POLL_SECONDS)
        async with transaction(engine.database.reader) as session:
            fresh = await session.get(Action, action.id, populate_existing=True)
        if fresh is not None:
            action = fresh
    return action
