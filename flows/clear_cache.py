"""clear_cache: clear an Elasticsearch index's query, request and/or fielddata caches.

Fixes search latency or memory trouble caused by stale or oversized caches. Touches only the
caches of `index_name` (`POST /{index}/_cache/clear?query=true&...`); data is untouched, so
there is nothing to roll back. Needs INTERVENE_ELASTICSEARCH_URL; without a reachable cluster
and index the dry-run and the execute say so instead of pretending.
"""

from typing import Annotated, Any, Literal

from prefect import flow
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from flows import hooks
from flows.logs import run_logger
from flows.plan import Plan, Preflight
from flows.retries import retrying
from integrations.search import describe, es_client, index_problem
from models.settings import Settings, get_settings

ACTION_TYPE = "clear_cache"
CacheType = Literal["query", "request", "fielddata"]
ALL_CACHES: tuple[CacheType, ...] = ("query", "request", "fielddata")
Index = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"^[a-z0-9_.*,-]+$")]


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    index_name: Index
    cache_types: list[CacheType] = Field(default_factory=lambda: list(ALL_CACHES), min_length=1)

    @field_validator("cache_types")
    @classmethod
    def _unique(cls, value: list[CacheType]) -> list[CacheType]:
        return [c for c in ALL_CACHES if c in value]


PARAMS_DOC = {
    "index_name": "string (required)",
    "cache_types": "array[string] (optional, default: all)",
}
SECONDS = 5  # the default estimate (flows/estimates.py scales it)


class ActionFailed(RuntimeError):
    pass


def estimate() -> tuple[int, float]:
    """Seconds and USD by default, whatever the index."""
    return SECONDS, 0.0


def plan(params: Params) -> Plan:
    caches = ", ".join(params.cache_types)
    flags = "&".join(f"{c}=true" for c in params.cache_types)
    seconds, usd = estimate()
    return Plan(
        message=f"Clear the {caches} cache(s) of {params.index_name}",
        details={
            "index": params.index_name,
            "cache_types": params.cache_types,
            "request": f"POST /{params.index_name}/_cache/clear?{flags}",
        },
        changes=[
            f"Clears the {caches} cache(s) of index {params.index_name}",
            "Searches are slower for a while as the caches warm up again",
            "No data changes; nothing to roll back",
        ],
        estimated_duration=seconds,
        estimated_cost=usd,
        requires_approval=False,
        rollback_available=False,
    )


async def preflight(params: Params, settings: Settings) -> Preflight:
    return Preflight(problem=await index_problem(settings, params.index_name))


@flow(name=ACTION_TYPE, **hooks.ACTION_HOOKS)
async def clear_cache(
    action_id: int,
    params: dict[str, Any],
    dry_run: bool = False,
    rollback: bool = False,
    prior_state: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Clear an index's caches (see the module docstring)."""
    if rollback:
        raise ActionFailed("clear_cache has no rollback: caches refill by themselves")
    if await hooks.is_finished(action_id):
        return dict(hooks.SKIPPED)
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
    result = {"message": f"Cleared {', '.join(parsed.cache_types)} cache(s) of "
              f"{parsed.index_name}", "shards": shards}  # fmt: skip
    run_logger().info("action %s: %s (%s)", action_id, result["message"], shards)
    await hooks.finish(action_id, result)
    return result
