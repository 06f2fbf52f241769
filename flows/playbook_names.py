"""The playbook names a check may suggest: every action type of flows/registry.py and every
alias. Kept apart from the registry so that loading the checks file (in each check run's
process) does not import every action and its clients; tests/flows/test_checks_config.py keeps
the two equal.
"""

ACTION_TYPES = frozenset({
    "rerun_dbt", "rerun_eval", "clear_cache", "refresh_synonyms", "rollback_planner",
    "adjust_canary_split",
})  # fmt: skip
ALIASES = frozenset({"reduce_traffic", "pause_agent"})
PLAYBOOKS = ACTION_TYPES | ALIASES
