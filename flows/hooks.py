"""Prefect state hooks: a flow run's state changes become the action's status and events.

Hooks run client side and are best effort (in the flow's process, or for crashes and
cancellations in the runner's), so every write here is idempotent and only moves an action
forward; the reconciler repairs what no hook reported. A running action also beats a heartbeat
so that the reconciler can tell a live run from one whose process died.
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any

from prefect import Flow
from prefect.client.schemas.objects import FlowRun, State
from sqlalchemy.ext.asyncio import AsyncSession

from flows.admission import Admitted, ThisRun, admit, is_the_started_run, ours, this_run
from flows.retries import retrying
from models.action import Action
from models.base import utcnow
from models.db import Database, connect, transaction
from models.enums import ActionStatus
from models.incident import Incident
from models.services import actions as service
from models.services.installation import installation_id
from models.settings import get_settings

Hook = Callable[[Flow[Any, Any], FlowRun, State[Any]], Coroutine[Any, Any, None]]
log = logging.getLogger("intervene.hooks")


class ActionFailed(RuntimeError):
    """An action's run failed on purpose (nothing to roll back, dbt failed, the cluster
    refused): the flow run fails, and its message is what the action's history shows.
    `result`: what the run produced before it failed (the result artifact shows it)."""

    def __init__(self, message: str, *, result: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.result = result


_run_database: ContextVar[Database | None] = ContextVar("intervene_run_database", default=None)


@asynccontextmanager
async def run_database() -> AsyncIterator[Database]:
    """One engine for a whole flow run: begin, the heartbeat, store_result and finish share it
    (the heartbeat's task inherits it with the context). Disposed when the run ends."""
    # two connections: a beat may run while the flow writes
    database = connect(get_settings().database_url, pool_size=2, max_overflow=1)
    token = _run_database.set(database)
    try:
        yield database
    finally:
        _run_database.reset(token)
        await database.dispose()


@asynccontextmanager
async def app_database() -> AsyncIterator[Database]:
    """The run's engine; outside a run (the state hooks, which may run in the runner's process
    after the run is gone) an engine of the call's own."""
    shared = _run_database.get()
    if shared is not None:
        yield shared
        return
    database = connect(get_settings().database_url, pool_size=1, max_overflow=1)
    try:
        yield database
    finally:
        await database.dispose()


async def _write(what: str, change: Callable[[AsyncSession], Awaitable[object]]) -> None:
    """One transaction on the app database, retried while the database blips."""

    async def attempt() -> None:
        async with app_database() as database, transaction(database.writer) as session:
            await change(session)

    await retrying(what, attempt)


async def record_state(
    action_id: int,
    status: ActionStatus,
    *,
    message: str | None = None,
    flow_run_id: str | None = None,
    run_key: str | None = None,
    tags: list[str] | None = None,
) -> None:
    """A state a hook saw. A run admission would refuse (another installation's, or not the
    run Intervene started for the action) changes nothing: its failure is its own."""
    run = ThisRun(id=flow_run_id, key=run_key, tags=tags or [])

    async def change(session: AsyncSession) -> None:
        if not await ours(session, run.tags):
            log.warning("flow run %s belongs to another installation: ignored", flow_run_id)
            return
        action = await session.get(Action, action_id)
        if action is None:
            return
        if not is_the_started_run(action, run, await installation_id(session)):
            log.warning("flow run %s is not action %s's run: ignored", flow_run_id, action_id)
            return
        await service.advance_action(
            session,
            action_id=action_id,
            status=status,
            at=utcnow(),
            message=message,
            flow_run_id=flow_run_id,
        )

    await _write(f"recording action {action_id} {status.value}", change)


async def store_result(action_id: int, result: dict[str, Any]) -> None:
    async def change(session: AsyncSession) -> None:
        await service.store_result(session, action_id=action_id, result=result, at=utcnow())

    await _write(f"storing the result of action {action_id}", change)


async def finish(action_id: int, result: dict[str, Any], *, failed: str | None = None) -> None:
    """The run's result and its final status (success, or failed with `failed` as the reason),
    written together as soon as the work is done: what the flow recorded is what happened, and
    the hooks or a crash report that come after it change nothing."""
    status = ActionStatus.FAILED if failed is not None else ActionStatus.SUCCESS

    async def change(session: AsyncSession) -> None:
        await service.finish(
            session,
            action_id=action_id,
            result=result,
            status=status,
            at=utcnow(),
            message=failed,
        )

    await _write(f"recording action {action_id} {status.value}", change)


@asynccontextmanager
async def heartbeat(action_id: int) -> AsyncIterator[None]:
    """Beat every INTERVENE_HEARTBEAT_SECONDS while the body runs."""
    interval = get_settings().heartbeat_seconds

    async def beat_forever() -> None:
        async with app_database() as database:
            while True:
                await asyncio.sleep(interval)
                try:
                    async with transaction(database.writer) as session:
                        await service.beat(session, action_id=action_id, at=utcnow())
                except Exception:  # a blip must not silence the run: the next beat retries
                    log.warning("heartbeat of action %s failed", action_id, exc_info=True)

    task = asyncio.create_task(beat_forever())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def begin(action_id: int) -> Admitted:
    """The start every action flow shares: admission (flows/admission.py) on the run's
    database; a run that may not act raises RunRefused and ends Failed."""
    async with app_database() as database, transaction(database.reader) as session:
        return await admit(session, action_id, this_run())


async def note_on_incident(action_id: int, *, verb: str, notes: str) -> None:
    """A timeline entry on the action's incident, by the action."""
    async with app_database() as database, transaction(database.writer) as session:
        action = await session.get(Action, action_id)
        if action is None:
            return
        incident = await session.get(Incident, action.incident_id, with_for_update=True)
        if incident is not None:
            incident.note(actor=f"action:{action_id}", verb=verb, notes=notes, at=utcnow())


def _hook(status: ActionStatus) -> Hook:
    async def hook(flow: Flow[Any, Any], flow_run: FlowRun, state: State[Any]) -> None:
        action_id = flow_run.parameters.get("action_id")
        if action_id is None:
            return
        # success keeps the message the flow stored with its result
        failed = status in (ActionStatus.FAILED, ActionStatus.CRASHED, ActionStatus.CANCELLED)
        message = state.message if failed else None
        await record_state(
            int(action_id),
            status,
            message=message,
            flow_run_id=str(flow_run.id),
            run_key=flow_run.idempotency_key,
            tags=list(flow_run.tags),
        )

    hook.__name__ = f"record_{status.value}"
    return hook


ACTION_HOOKS: dict[str, Any] = {
    "on_running": [_hook(ActionStatus.RUNNING)],
    "on_completion": [_hook(ActionStatus.SUCCESS)],
    "on_failure": [_hook(ActionStatus.FAILED)],
    "on_crashed": [_hook(ActionStatus.CRASHED)],
    "on_cancellation": [_hook(ActionStatus.CANCELLED)],
}
