"""One declaration for every action flow: its name, the state hooks, the parameters the
deployments and the API's launcher pass, and the start they all share (hooks.begin) with the
heartbeat beating around what is left, on one database engine for the run (hooks.run_database).
A flow module writes only its own body."""

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from prefect import Flow, flow

from flows import hooks

Body = Callable[[int, dict[str, Any], bool, dict[str, Any] | None], Awaitable[dict[str, Any]]]
Preview = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
ActionFlow = Flow[..., Coroutine[Any, Any, dict[str, Any]]]


def action_flow(
    action_type: str, *, no_rollback: str | None = None, preview: Preview | None = None
) -> Callable[[Body], ActionFlow]:
    """`@action_flow(ACTION_TYPE)` on `async def body(action_id, params, rollback, prior_state)`.

    A rollback of an action that has none (`no_rollback` is its reason) fails; a run whose
    action is already final answers hooks.SKIPPED; a dry run with a `preview` answers it before
    either (it records nothing)."""

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
            async with hooks.run_database():
                skipped = await hooks.begin(action_id, rollback=rollback, no_rollback=no_rollback)
                if skipped is not None:
                    return skipped
                async with hooks.heartbeat(action_id):
                    return await body(action_id, params, rollback, prior_state)

        # the deployments name the flow by module path: `<body's module>.<action_type>`
        # (not functools.wraps: its __wrapped__ would give the flow the body's signature)
        run.__module__, run.__doc__ = body.__module__, body.__doc__
        run.__name__ = run.__qualname__ = action_type
        return flow(name=action_type, **hooks.ACTION_HOOKS)(run)

    return declare
