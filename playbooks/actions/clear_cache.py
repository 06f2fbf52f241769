"""clear_cache: clear an Elasticsearch index's query, request and/or fielddata caches.

Fixes search latency or memory trouble caused by stale or oversized caches. Touches only the
caches of `index_name` (`POST /{index}/_cache/clear?query=true&...`); data is untouched, so
there is nothing to roll back. Needs INTERVENE_ELASTICSEARCH_URL; without a reachable cluster
and index the dry-run and the execute say so instead of pretending.
"""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from integrations.search import index_problem
from models.settings import Settings
from playbooks.plan import Plan, Preflight

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
SECONDS = 5  # the default estimate (playbooks/estimates.py scales it)


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
