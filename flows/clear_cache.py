"""The Prefect flow of clear_cache.

What it fixes, what it touches and what rollback undoes is said beside its Params and plan,
in playbooks/actions/clear_cache.py.
"""

from typing import Any

from flows import hooks
from flows.action_flow import action_flow
from flows.hooks import ActionFailed
from flows.logs import run_logger
from flows.retries import retrying
from integrations.search import describe, es_client
from models.settings import get_settings
from playbooks.actions.clear_cache import (
    ACTION_TYPE,
    Params,
)


@action_flow(ACTION_TYPE, no_rollback="clear_cache has no rollback: caches refill by themselves")
async def clear_cache(
    action_id: int, params: dict[str, Any], rollback: bool, prior_state: dict[str, Any] | None
) -> dict[str, Any]:
    """Clear an index's caches (see the module docstring)."""
    parsed = Params.model_validate(params)
    es = es_client(get_settings())
    try:
        wanted = set(parsed.cache_types)
        answer = await retrying(
            f"clearing the caches of {parsed.index_name}",
            lambda: es.indices.clear_cache(
                index=parsed.index_name,
                query="query" in wanted,
                request="request" in wanted,
                fielddata="fielddata" in wanted,
            ),
        )
    except Exception as exc:
        raise ActionFailed(describe(exc)) from exc
    finally:
        await es.close()
    shards = dict(answer.body.get("_shards", {}))
    result = {
        "message": f"Cleared {', '.join(parsed.cache_types)} cache(s) of {parsed.index_name}",
        "shards": shards,
    }
    run_logger().info("action %s: %s (%s)", action_id, result["message"], shards)
    await hooks.finish(action_id, result)
    return result
