"""refresh_synonyms: replace the rules of an Elasticsearch synonyms set and reload analyzers.

Fixes search quality lost to missing or wrong synonyms. Touches the synonyms set (named, or
found in the index's synonym filter) and reloads `index_name`'s search analyzers; with
`reindex` (needs approval; `index_name` must be an alias) it copies the data into a new index
and moves the alias to it, so index-time analysis uses the new rules too. Rollback restores the
rules captured at execute and reloads the analyzers.
"""

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from integrations.search import describe, es_client, index_problem
from models.errors import ParamsError
from models.settings import Settings
from playbooks.plan import Plan, Preflight

ACTION_TYPE = "refresh_synonyms"
# the default estimate (playbooks/estimates.py scales it)
BASE_SECONDS = 5
REINDEX_DOCS_PER_SECOND = 2000
USD_PER_SECOND = 0.0001
REINDEX_TIMEOUT_SECONDS = 6 * 3600  # the request waits for the whole copy
Index = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"^[a-z0-9_.-]+$")]
Rule = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    index_name: Index
    synonyms_set: Index | None = None
    synonyms: list[Rule] = Field(min_length=1, max_length=10_000)
    reindex: bool = False


PARAMS_DOC = {
    "index_name": "string (required)",
    "synonyms_set": "string (optional, default: the index's synonym filter's set)",
    "synonyms": "array[string] (required; rules such as 'tv, television' or 'ny => new york')",
    "reindex": "boolean (optional, default: false)",
}


def _set_in_settings(settings_answer: dict[str, Any]) -> str | None:
    for index in settings_answer.values():
        filters = index.get("settings", {}).get("index", {}).get("analysis", {}).get("filter", {})
        for definition in filters.values():
            if isinstance(definition, dict) and definition.get("synonyms_set"):
                return str(definition["synonyms_set"])
    return None


async def preflight(params: Params, settings: Settings) -> Preflight:
    problem = await index_problem(settings, params.index_name)
    if problem:
        return Preflight(problem=problem)
    es = es_client(settings)
    try:
        facts: dict[str, Any] = {}
        facts["synonyms_set"] = params.synonyms_set or _set_in_settings(
            (await es.indices.get_settings(index=params.index_name)).body
        )
        stats = (await es.indices.stats(index=params.index_name, metric="docs,store")).body
        primaries = stats.get("_all", {}).get("primaries", {})
        facts["docs"] = int(primaries.get("docs", {}).get("count", 0))
        facts["store_bytes"] = int(primaries.get("store", {}).get("size_in_bytes", 0))
        if params.reindex:
            if not await es.indices.exists_alias(name=params.index_name):
                return Preflight(problem=f"reindex needs {params.index_name!r} to be an alias")
            aliases = (await es.indices.get_alias(name=params.index_name)).body
            facts["concrete_index"] = sorted(aliases)[0]
        return Preflight(facts=facts)
    except Exception as exc:  # unreachable, refused
        return Preflight(problem=describe(exc))
    finally:
        await es.close()


def estimate(docs: int, *, reindex: bool) -> tuple[int, float]:
    """Seconds and USD by default: a reindex grows with the index."""
    seconds = BASE_SECONDS + (docs // REINDEX_DOCS_PER_SECOND if reindex else 0)
    return seconds, round(seconds * USD_PER_SECOND, 4)


def plan(params: Params, facts: dict[str, Any]) -> Plan:
    synonyms_set = facts.get("synonyms_set") or params.synonyms_set
    if not synonyms_set:
        message = f"{params.index_name} has no synonym filter with a synonyms set: name one"
        raise ParamsError("params.synonyms_set", message)
    docs, size_mb = int(facts.get("docs", 0)), facts.get("store_bytes", 0) / 1e6
    seconds, usd = estimate(docs, reindex=params.reindex)
    changes = [
        f"Replace the rules of synonyms set {synonyms_set} with {len(params.synonyms)} rule(s)",
        f"Reload the search analyzers of {params.index_name}",
    ]
    if params.reindex:
        changes.append(
            f"Reindex {docs} document(s) ({size_mb:.1f} MB) of {facts.get('concrete_index')} "
            f"into a new index and move the alias {params.index_name} to it"
        )
    changes.append("Rollback restores the current rules and reloads the analyzers")
    return Plan(
        message=f"Refresh synonyms set {synonyms_set} for {params.index_name}",
        details={
            "synonyms_set": synonyms_set,
            "rules": params.synonyms,
            "docs": docs,
            "reindex": params.reindex,
            "concrete_index": facts.get("concrete_index"),
        },
        changes=changes,
        estimated_duration=seconds,
        estimated_cost=usd,
        requires_approval=params.reindex,
        rollback_available=True,
    )
