"""The Prefect flow of retry_flow_run.

What it fixes, what it touches and what rollback undoes is said beside its Params and plan,
in playbooks/actions/retry_flow_run.py.
"""

import asyncio
import time
from typing import Any

from prefect import get_client
from prefect.deployments.flow_runs import arun_deployment
from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_KEY, PREFECT_API_URL

from flows import hooks
from flows.action_flow import action_flow
from flows.hooks import ActionFailed
from flows.logs import run_logger
from integrations.prefect_api import NotInPrefect, PrefectReader, PrefectUnreachable
from models.action import Action
from models.db import transaction
from models.settings import get_settings
from playbooks.actions.retry_flow_run import ACTION_TYPE, Params, tags, target

POLL_SECONDS = 1.0


def reader() -> PrefectReader:
    key, auth = PREFECT_API_KEY.value(), PREFECT_API_AUTH_STRING.value()
    return PrefectReader(
        PREFECT_API_URL.value(),
        ui_url=get_settings().prefect_ui_url,
        api_key=key.get_secret_value() if key else None,
        auth_string=auth.get_secret_value() if auth else None,
    )


async def incident_of(action_id: int) -> int:
    async with hooks.app_database() as database, transaction(database.reader) as session:
        action = await session.get(Action, action_id)
        if action is None:
            raise ActionFailed(f"action {action_id} does not exist")
        return action.incident_id


@action_flow(ACTION_TYPE, no_rollback="retry_flow_run has no rollback: a flow run cannot be undone")
async def retry_flow_run(
    action_id: int, params: dict[str, Any], rollback: bool, prior_state: dict[str, Any] | None
) -> dict[str, Any]:
    """Run the failed run's deployment again and wait for it (see the module docstring)."""
    parsed = Params.model_validate(params)
    prefect = reader()
    try:
        found = await target(parsed, prefect)
    except (NotInPrefect, PrefectUnreachable, LookupError) as exc:
        raise ActionFailed(str(exc).strip("'\"")) from exc
    logger = run_logger()
    run = await arun_deployment(
        found.deployment,
        parameters=found.parameters,
        timeout=0,
        idempotency_key=f"intervene-retry-{action_id}",  # a retried action flow: one new run
        tags=tags(await incident_of(action_id)),
        as_subflow=False,
    )
    url = prefect.run_url(str(run.id))
    logger.info("action %s: started %s of %s (%s)", action_id, run.name, found.deployment, url)
    deadline = time.monotonic() + parsed.wait_seconds
    async with get_client() as client:
        while True:
            run = await client.read_flow_run(run.id)
            if run.state is not None and run.state.is_final():
                break
            if time.monotonic() > deadline:
                raise ActionFailed(
                    f"flow run {run.name} ({run.id}) of {found.deployment} is still "
                    f"{run.state_name} after {parsed.wait_seconds} s; it goes on in Prefect"
                )
            await asyncio.sleep(POLL_SECONDS)
    state = run.state
    result = {
        "message": f"Flow run {run.name} of {found.deployment} ended {state.name}",
        "deployment": found.deployment,
        "parameters": found.parameters,
        "retry_of": found.source,
        "flow_run_id": str(run.id),
        "flow_run_url": url,
        "state": state.name,
    }
    if not state.is_completed():
        await hooks.finish(action_id, result, failed=f"{result['message']}: {state.message}")
        raise ActionFailed(f"{result['message']}: {state.message or 'no message'}")
    logger.info("action %s: %s", action_id, result["message"])
    await hooks.finish(action_id, result)
    return result
