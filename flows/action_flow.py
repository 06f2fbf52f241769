"""One declaration for every action flow: its name, the state hooks, the parameters the
deployments and the API's launcher pass, and the start they all share (hooks.begin: admission,
flows/admission.py) with the heartbeat beating around what is left, on one database engine for
the run (hooks.run_database); the plan and result artifacts around the body (flows/artifacts.py);
a run name for runs started without one; a persisted result. A flow module writes only its own
body."""

from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AsyncExitStack
from typing import Any

from prefect import Flow, flow, runtime

from flows import artifacts, hooks, turns
from flows.hooks import ActionFailed
from models.settings import get_settings
from playbooks.catalog import ACTIONS
from playbooks.launcher import run_name

Body = Callable[[int, dict[str, Any], bool, dict[str, Any] | None], Awaitable[dict[str, Any]]]
Preview = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
ActionFlow = Flow[..., Coroutine[Any, Any, dict[str, Any]]]


def action_flow(
    action_type: str, *, no_rollback: str | None = None, preview: Preview | None = None
) -> Callable[[Body], ActionFlow]:
    """`@action_flow(ACTION_TYPE)` on `async def body(action_id, params, rollback, prior_state)`.

    A run admission refuses fails (RunRefused); a rollback of an action that has none
    (`no_rollback` is its reason) fails; a dry run with a `preview` answers it before either
    (it records nothing). A run (rollbacks too) of an action the catalog says runs
    `one_at_a_time` waits for its turn before admission (flows/turns.py)."""

    def declare(body: Body) -> ActionFlow:
        async def run(
            action_id: int,
            params: dict[str, Any],
            dry_run: bool = False,
            rollback: bool = False,
            prior_state: dict[str, Any] | None = None,
        ) -> dict[str, Any]:
            if dry_run and preview is not None:
                return await preview(params)
            async with hooks.run_database() as database, AsyncExitStack() as turn:
                if ACTIONS[action_type].one_at_a_time:
                    url = get_settings().database_url
                    await turn.enter_async_context(turns.one_at_a_time(database, url, action_type))
                admitted = await hooks.begin(action_id)
                await artifacts.publish_plan(admitted)
                try:
                    if rollback and no_rollback is not None:
                        raise ActionFailed(no_rollback)
                    async with hooks.heartbeat(action_id):
                        result = await body(action_id, params, rollback, prior_state)
                except ActionFailed as exc:
                    await artifacts.publish_result(admitted, result=exc.result, failed=str(exc))
                    raise
                except Exception as exc:
                    failed = f"{type(exc).__name__}: {exc}"
                    await artifacts.publish_result(admitted, result=None, failed=failed)
                    raise
                await artifacts.publish_result(admitted, result=result)
                return result

        # the deployments name the flow by module path: `<body's module>.<action_type>`
        # (not functools.wraps: its __wrapped__ would give the flow the body's signature)
        run.__module__, run.__doc__ = body.__module__, body.__doc__
        run.__name__ = run.__qualname__ = action_type
        return flow(
            name=action_type,
            flow_run_name=fallback_name(action_type),
            persist_result=True,  # state.data: the result is kept, small JSON
            result_serializer="json",
            **hooks.ACTION_HOOKS,
        )(run)

    return declare


def fallback_name(action_type: str) -> Callable[[], str]:
    """The run's name: the one Intervene's launch gave it (`rerun_dbt · incident 12 ·
    action 34`), or for a run started without one (the Prefect UI) one from its parameters."""

    def name() -> str:
        given = runtime.flow_run.name or ""
        if given.startswith(f"{action_type} · "):
            return given
        parameters = runtime.flow_run.parameters or {}
        action_id = parameters.get("action_id", "?")
        if parameters.get("rollback"):
            return f"{action_type} · rollback by action {action_id}"
        return run_name(action_type, None, action_id, dry_run=bool(parameters.get("dry_run")))

    return name
