"""Each action's Prefect flow, by action type: what the worker serves as the deployment the
catalog names (`<action_type>/<action_type>`, playbooks/catalog.py)."""

from typing import Any

from prefect import Flow

from flows import (
    adjust_canary_split,
    clear_cache,
    refresh_synonyms,
    rerun_dbt,
    rerun_eval,
    retry_flow_run,
    rollback_planner,
)

FLOWS: dict[str, Flow[..., Any]] = {
    flow.name: flow
    for flow in [
        rerun_dbt.rerun_dbt,
        rerun_eval.rerun_eval,
        clear_cache.clear_cache,
        refresh_synonyms.refresh_synonyms,
        rollback_planner.rollback_planner,
        adjust_canary_split.adjust_canary_split,
        retry_flow_run.retry_flow_run,
    ]
}
