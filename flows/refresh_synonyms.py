"""The Prefect flow of refresh_synonyms.

What it fixes, what it touches and what rollback undoes is said beside its Params and plan,
in playbooks/actions/refresh_synonyms.py.
"""

from datetime import UTC, datetime
from typing import Any

from flows import hooks
from flows.action_flow import action_flow
from flows.hooks import ActionFailed
from flows.logs import run_logger
from flows.retries import retrying
from integrations.search import describe, es_client
from models.settings import get_settings
from playbooks.actions.refresh_synonyms import (
    ACTION_TYPE,
    REINDEX_TIMEOUT_SECONDS,
    Params,
    plan,
    preflight,
)


def _rules(rules: list[str]) -> list[dict[str, str]]:
    return [{"id": f"r{n}", "synonyms": rule} for n, rule in enumerate(rules, start=1)]


@action_flow(ACTION_TYPE)
async def refresh_synonyms(
    action_id: int, params: dict[str, Any], rollback: bool, prior_state: dict[str, Any] | None
) -> dict[str, Any]:
    """Replace a synonyms set's rules and reload analyzers (see the module docstring)."""
    settings = get_settings()
    parsed = Params.model_validate(params)
    check = await preflight(parsed, settings)
    if check.problem:
        raise ActionFailed(check.problem)
    steps = plan(parsed, check.facts)
    synonyms_set = str(steps.details["synonyms_set"])
    es = es_client(settings)
    try:
        if rollback:
            assert prior_state is not None, "a rollback needs the rules captured at execute"
            await retrying(
                f"restoring {synonyms_set}",
                lambda: es.synonyms.put_synonym(
                    id=prior_state["synonyms_set"], synonyms_set=prior_state["rules"]
                ),
            )
            await retrying(
                "reloading the analyzers",
                lambda: es.indices.reload_search_analyzers(index=parsed.index_name),
            )
            result: dict[str, Any] = {
                "message": f"Restored {len(prior_state['rules'])} rule(s) of {synonyms_set}",
                "restored": prior_state,
            }
        else:
            current = (
                await retrying(
                    f"reading {synonyms_set}",
                    lambda: es.synonyms.get_synonym(id=synonyms_set, size=10_000),
                )
            ).body
            prior = {"synonyms_set": synonyms_set, "rules": current.get("synonyms_set", [])}
            await hooks.store_result(action_id, {"prior_state": prior})  # before any change
            await retrying(
                f"replacing {synonyms_set}",
                lambda: es.synonyms.put_synonym(
                    id=synonyms_set, synonyms_set=_rules(parsed.synonyms)
                ),
            )
            await retrying(
                "reloading the analyzers",
                lambda: es.indices.reload_search_analyzers(index=parsed.index_name),
            )
            result = {
                "message": f"Replaced {len(prior['rules'])} rule(s) of {synonyms_set} "
                f"with {len(parsed.synonyms)}",
                "prior_state": prior,
            }
            if parsed.reindex:
                concrete = str(steps.details["concrete_index"])
                result["reindexed_into"] = await _reindex(es, parsed.index_name, concrete)
    except ActionFailed:
        raise
    except Exception as exc:
        raise ActionFailed(describe(exc)) from exc
    finally:
        await es.close()
    run_logger().info("action %s: %s", action_id, result["message"])
    await hooks.finish(action_id, result)
    return result


async def _reindex(es: Any, alias: str, concrete: str) -> str:
    """Copy `concrete` into a new index with its settings and mappings; move `alias` to it."""
    target = f"{concrete.split('--')[0]}--{datetime.now(UTC):%Y%m%d%H%M%S}"
    source = (await es.indices.get(index=concrete)).body[concrete]
    index_settings = {
        k: v
        for k, v in source["settings"]["index"].items()
        if k in ("analysis", "number_of_shards", "number_of_replicas")
    }
    await es.indices.create(index=target, settings=index_settings, mappings=source["mappings"])
    copied = await es.options(request_timeout=REINDEX_TIMEOUT_SECONDS).reindex(
        source={"index": concrete}, dest={"index": target}, wait_for_completion=True
    )
    if copied.body.get("failures"):  # never move the alias onto an incomplete copy
        raise ActionFailed(
            f"reindex into {target} had {len(copied.body['failures'])} failure(s); "
            f"the alias still points at {concrete}"
        )
    await es.indices.update_aliases(
        actions=[
            {"remove": {"index": concrete, "alias": alias}},
            {"add": {"index": target, "alias": alias}},
        ]
    )
    return target
