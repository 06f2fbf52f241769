"""What the generated playbooks guide cannot read off the registry: example params and, in a
sentence, when each action needs approval (its plan() decides that from live state).

Every action and alias must have an entry: the generator stops on a missing one, and
tests/test_docs.py validates every example against the action's Params model, so neither can
drift from the code unnoticed. The examples use the demo's names (`make run`): the
`inbox_emails` model, the `inbox.triage` agent, planner versions v1.2.2 (stable) and v1.2.3
(a canary at 20%).
"""

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Example:
    params: dict[str, Any]  # a run that needs no approval, where the action has one
    approval: dict[str, Any] | None = None  # params for which it does need approval
    reason: str = ""  # what an approval request would say


EXAMPLES: dict[str, Example] = {
    "rerun_dbt": Example(
        params={"task_id": "incident-42", "models": ["inbox_emails"]},
        approval={"task_id": "incident-42", "models": ["inbox_emails"], "full_refresh": True},
        reason="incremental state is corrupt: rebuild from scratch",
    ),
    "rerun_eval": Example(params={"agent": "inbox.triage"}),
    "clear_cache": Example(params={"index_name": "emails", "cache_types": ["query", "request"]}),
    "refresh_synonyms": Example(
        params={"index_name": "emails", "synonyms": ["tv, television", "ny => new york"]},
        approval={"index_name": "emails", "synonyms": ["tv, television"], "reindex": True},
        reason="index-time analysis must see the new rules",
    ),
    "rollback_planner": Example(
        params={"from_version": "v1.2.3"},
        approval={"from_version": "v1.2.3", "immediate": True},
        reason="the canary is failing every request",
    ),
    "adjust_canary_split": Example(
        params={"version": "v1.2.3", "target_percent": 10, "gradual": True},
        approval={"version": "v1.2.3", "target_percent": 50},
        reason="the fix is verified: widen the canary",
    ),
    "retry_flow_run": Example(
        params={"flow_run_id": "0b7c4e5a-6f0e-4d8b-9a53-2b1f7c9d8e11", "wait_seconds": 900}
    ),
    "reduce_traffic": Example(params={"version": "v1.2.3"}),
    "pause_agent": Example(
        params={"version": "v1.2.3"},
        approval={"version": "v1.2.3"},
        reason="stop the canary while we look",
    ),
}

APPROVAL_WHEN: dict[str, str] = {
    "rerun_dbt": "Only with `full_refresh: true` (incremental models rebuilt from scratch).",
    "rerun_eval": "Never: it only reads the warehouse.",
    "clear_cache": "Never: caches refill by themselves.",
    "refresh_synonyms": "Only with `reindex: true` (a copy of the index and an alias move).",
    "rollback_planner": "With `immediate: true`, or when `to_version` is not the stable version.",
    "adjust_canary_split": "When it raises the canary's share (`target_percent` above its"
    " current share); lowering it needs none.",
    "retry_flow_run": "Never: it runs the platform's own deployment again, as it ran before.",
}

ROLLBACK_UNDOES: dict[str, str] = {
    "refresh_synonyms": "Restores the synonyms set's rules captured at execute, then reloads"
    " the index's search analyzers. A reindex is not undone: the alias stays on the new index.",
    "rollback_planner": "Restores the traffic split (and stable version) exactly as it was"
    " before the execute.",
    "adjust_canary_split": "Restores the traffic shares exactly as they were before the execute.",
}
