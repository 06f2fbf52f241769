"""The reconciler: repairs actions whose state hooks never reported.

Hooks are best effort. Every few seconds `intervene services` (deployments/services.py)
compares unfinished actions with their flow runs: a run Prefect knows to be finished gives the
action its terminal status (a run Prefect's zombie automation set Crashed, see
deployments/prefect_setup.py, ends the action `crashed` with Prefect's message); a running
action whose own heartbeat stopped (its process was killed) is marked crashed, in Prefect too;
an action the API recorded but never triggered is marked failed. A run still queued in Prefect
is never judged dead, and silence counts from when the run really started. Whatever serves the
flows (a work pool, `intervene worker`), this loop runs apart from it.
"""

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from prefect import get_client
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.exceptions import ObjectNotFound
from prefect.states import Crashed

from models.action import Action
from models.base import utcnow
from models.db import Database, connect, transaction
from models.enums import ActionStatus
from models.installation import installation_tag
from models.services.actions import advance_action, unfinished_actions
from models.services.installation import installation_id
from models.settings import Settings

log = logging.getLogger("intervene.reconciler")

GRACE = timedelta(seconds=10)  # leave fresh actions to their hooks
NEVER_TRIGGERED = timedelta(seconds=60)

FROM_PREFECT: dict[StateType, ActionStatus] = {
    StateType.COMPLETED: ActionStatus.SUCCESS,
    StateType.FAILED: ActionStatus.FAILED,
    StateType.CRASHED: ActionStatus.CRASHED,
    StateType.CANCELLED: ActionStatus.CANCELLED,
    StateType.RUNNING: ActionStatus.RUNNING,
    StateType.CANCELLING: ActionStatus.RUNNING,
}


@dataclass(frozen=True)
class Repair:
    action_id: int
    status: ActionStatus
    reason: str
    flow_run_id: str | None = None  # a run found by its tag, for an action that lost track


def _silence(action: Action, run: FlowRun, now: datetime) -> float:
    """Seconds since the last sign of life of a running action: its heartbeat, or the moment
    its flow run really started, whichever is later. Never the action's own updated_at: an
    execute can wait long in Prefect's queue (behind dbt's one-at-a-time limit, or a worker
    restart) and must not look dead the moment it starts."""
    signs = [at for at in (action.heartbeat_at, run.start_time) if at is not None]
    if run.state is not None and run.state.type is StateType.RUNNING:
        signs.append(run.state.timestamp)
    return (now - max(signs)).total_seconds() if signs else 0.0


async def _decide(
    action: Action, client: PrefectClient, settings: Settings, installation: str
) -> Repair | None:
    now = utcnow()
    if action.flow_run_id is None:
        if now - action.created_at <= NEVER_TRIGGERED:
            return None
        tags = [installation_tag(installation), f"action:{action.id}"]
        tagged = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=tags)), limit=1
        )
        if not tagged:
            reason = "Never started: its flow run was not created (the API stopped before)"
            return Repair(action.id, ActionStatus.FAILED, reason)
        run = tagged[0]
        found = str(run.id)
    else:
        found = None
        try:
            run = await client.read_flow_run(UUID(action.flow_run_id))
        except ObjectNotFound:
            return Repair(action.id, ActionStatus.FAILED, "Its flow run no longer exists")
    status = FROM_PREFECT.get(run.state.type) if run.state else None
    if status is not None and status.is_terminal:
        message = (run.state.message if run.state else None) or f"Flow run ended {status.value}"
        return Repair(action.id, status, message, flow_run_id=found)
    if found is not None:
        found_status = status or ActionStatus.SCHEDULED
        return Repair(action.id, found_status, "Its flow run was found by its tag", found)
    silent = _silence(action, run, now)
    if status is ActionStatus.RUNNING and silent > settings.stale_heartbeat_seconds:
        reason = f"No heartbeat for {silent:.0f} s: the process running it died"
        await client.set_flow_run_state(run.id, Crashed(message=reason), force=True)
        return Repair(action.id, ActionStatus.CRASHED, reason)
    if status is ActionStatus.RUNNING and action.status == ActionStatus.SCHEDULED.value:
        return Repair(action.id, ActionStatus.RUNNING, "Running (reported by the reconciler)")
    return None


async def reconcile_once(
    database: Database, client: PrefectClient, settings: Settings
) -> list[Repair]:
    async with transaction(database.reader) as session:  # the id is made by the migrations
        installation = await installation_id(session)
        candidates = await unfinished_actions(session, older_than=utcnow() - GRACE)
    repairs = []
    for candidate in candidates:
        async with transaction(database.reader) as session:  # fresh: a pass can take a while
            action = await session.get(Action, candidate.id, populate_existing=True)
        if action is None or action.action_status.is_terminal:
            continue
        repair = await _decide(action, client, settings, installation)
        if repair is None:
            continue
        async with transaction(database.writer) as session:
            message = None if repair.status is ActionStatus.RUNNING else repair.reason
            await advance_action(
                session,
                action_id=repair.action_id,
                status=repair.status,
                at=utcnow(),
                message=message,
                flow_run_id=repair.flow_run_id,
            )
        log.warning("action %s repaired to %s: %s", repair.action_id, repair.status, repair.reason)
        repairs.append(repair)
    return repairs


async def reconcile_forever(settings: Settings) -> None:
    database = connect(settings.database_url, pool_size=2, max_overflow=2)
    try:
        async with get_client() as client:
            while True:
                try:
                    await reconcile_once(database, client, settings)
                except Exception:  # keep going: the next pass may succeed
                    log.exception("reconcile pass failed")
                await asyncio.sleep(settings.reconcile_interval_seconds)
    finally:
        await database.dispose()
