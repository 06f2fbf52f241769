"""The static table of playbook actions: what the API lists, validates, plans and triggers.

Each entry names the action's deployment as a string, `<action_type>/intervene`: the worker
serves the flow of each action (flows/registry.py) under that name. Importing this module
imports neither Prefect nor dbt.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from checks import config
from checks.config import CheckSpec
from integrations.warehouse import DbtProject
from models.enums import IncidentKind
from models.services.planner import PlannerSnapshot
from models.settings import Settings
from playbooks.actions import (
    adjust_canary_split,
    clear_cache,
    planner_steps,
    refresh_synonyms,
    rerun_dbt,
    rerun_eval,
    retry_flow_run,
    rollback_planner,
)
from playbooks.estimates import Typical
from playbooks.plan import Plan, Preflight


@dataclass(frozen=True)
class PlanContext:
    """What a plan may consult besides its params (read-only, cheap)."""

    settings: Settings
    planner: PlannerSnapshot = field(default_factory=PlannerSnapshot)
    facts: dict[str, Any] = field(default_factory=dict)  # what the preflight found out

    @property
    def dbt(self) -> DbtProject:
        return DbtProject.from_settings(self.settings)

    @property
    def checks(self) -> dict[str, CheckSpec]:
        return load_checks(self.settings.checks_file)


@dataclass(frozen=True)
class ActionSpec:
    action_type: str
    display_name: str
    description: str
    params_model: type[BaseModel]
    params_doc: dict[str, str]
    typical: Typical  # what the catalog quotes (playbooks/estimates.py)
    applies_to: frozenset[IncidentKind]
    rollback_supported: bool
    make_plan: Callable[[Any, PlanContext], Plan]
    approval_by_default: bool = False
    # one run at a time across all workers, rollbacks included (flows/turns.py: a lock in
    # Intervene's database, not Prefect's deployment concurrency limit)
    one_at_a_time: bool = False
    # Asked before a dry-run or execute records: why it cannot run now (no cluster, no
    # index) and what the plan should know (an index's size, its synonyms set...).
    preflight: Callable[[Any, Settings], Awaitable[Preflight]] | None = None
    # Whether undoing it needs approval even if doing it did not (given what it captured).
    rollback_needs_approval: Callable[[dict[str, Any], PlannerSnapshot], bool] | None = None

    @property
    def deployment(self) -> str:
        """`<flow>/<deployment>`: each action's deployment is named for the action, as each
        check's is for the check (`check/<id>`), so the Prefect UI's list tells them apart."""
        return f"{self.action_type}/{self.action_type}"

    def plan(self, params: BaseModel, context: PlanContext) -> Plan:
        return self.make_plan(params, context)


# What checks open: an agent's evaluation says nothing about a Prefect pipeline's run, nor about
# an alert from another tool (whose suggested playbooks the alert or its routing rule names).
CHECK_KINDS = frozenset(IncidentKind) - {IncidentKind.PIPELINE, IncidentKind.ALERT}


def restore_raises_a_canary(prior: dict[str, Any], planner: PlannerSnapshot) -> bool:
    """Undoing a planner change that would give a non-stable version more traffic than it has
    now (back to a regressed canary, say) follows the rule for raising a share: approval."""
    stable = prior.get("stable_version")
    return any(
        int(share) > planner.share(version)
        for version, share in prior.get("traffic", {}).items()
        if version != stable
    )


ACTIONS: dict[str, ActionSpec] = {
    spec.action_type: spec
    for spec in [
        ActionSpec(
            action_type=rerun_dbt.ACTION_TYPE,
            display_name="Re-run DBT Models",
            description="Re-run specified dbt models to refresh data",
            params_model=rerun_dbt.Params,
            params_doc=rerun_dbt.PARAMS_DOC,
            typical=Typical(
                "for one model, incremental", lambda _: rerun_dbt.estimate(1, full_refresh=False)
            ),
            applies_to=frozenset({IncidentKind.INVARIANT, IncidentKind.BUDGET}),
            rollback_supported=False,
            make_plan=lambda params, ctx: rerun_dbt.plan(params, ctx.dbt.manifest()),
            one_at_a_time=True,  # one dbt at a time: dbt-core #9603, one DuckDB writer
        ),
        ActionSpec(
            action_type=rerun_eval.ACTION_TYPE,
            display_name="Re-run Evaluation",
            description="Run an agent's declared checks now and report each result",
            params_model=rerun_eval.Params,
            params_doc=rerun_eval.PARAMS_DOC,
            typical=Typical("for one check", lambda _: rerun_eval.estimate(1)),
            applies_to=CHECK_KINDS,
            rollback_supported=False,
            make_plan=lambda params, ctx: rerun_eval.plan(params, ctx.checks),
        ),
        ActionSpec(
            action_type=clear_cache.ACTION_TYPE,
            display_name="Clear Elasticsearch Cache",
            description="Clear query/request/fielddata caches",
            params_model=clear_cache.Params,
            params_doc=clear_cache.PARAMS_DOC,
            typical=Typical("for any index", lambda _: clear_cache.estimate()),
            applies_to=frozenset({IncidentKind.BUDGET, IncidentKind.INVARIANT}),
            rollback_supported=False,
            make_plan=lambda params, ctx: clear_cache.plan(params),
            preflight=clear_cache.preflight,
        ),
        ActionSpec(
            action_type=refresh_synonyms.ACTION_TYPE,
            display_name="Refresh Search Synonyms",
            description="Replace a synonyms set's rules, reload analyzers, optionally reindex",
            params_model=refresh_synonyms.Params,
            params_doc=refresh_synonyms.PARAMS_DOC,
            typical=Typical(
                "without a reindex (one grows with the index)",
                lambda _: refresh_synonyms.estimate(0, reindex=False),
            ),
            applies_to=frozenset({IncidentKind.BUDGET, IncidentKind.INVARIANT}),
            rollback_supported=True,
            make_plan=lambda params, ctx: refresh_synonyms.plan(params, ctx.facts),
            preflight=refresh_synonyms.preflight,
            one_at_a_time=True,
        ),
        ActionSpec(
            action_type=rollback_planner.ACTION_TYPE,
            display_name="Roll Back Planner Version",
            description="Move traffic off a planner version that regressed, to the stable one",
            params_model=rollback_planner.Params,
            params_doc=rollback_planner.PARAMS_DOC,
            typical=Typical(
                "for two traffic steps, INTERVENE_PLANNER_STEP_SECONDS apart",
                lambda settings: planner_steps.estimate(2, settings.planner_step_seconds),
            ),
            applies_to=frozenset({IncidentKind.PLANNER}),
            rollback_supported=True,
            make_plan=lambda params, ctx: rollback_planner.plan(
                params, ctx.planner, ctx.settings.planner_step_seconds
            ),
            one_at_a_time=True,
            rollback_needs_approval=restore_raises_a_canary,
        ),
        ActionSpec(
            action_type=adjust_canary_split.ACTION_TYPE,
            display_name="Adjust Canary Traffic Split",
            description="Set the share of traffic a canary planner version serves",
            params_model=adjust_canary_split.Params,
            params_doc=adjust_canary_split.PARAMS_DOC,
            typical=Typical(
                "for one traffic step (not gradual)",
                lambda settings: planner_steps.estimate(1, settings.planner_step_seconds),
            ),
            applies_to=frozenset({IncidentKind.PLANNER}),
            rollback_supported=True,
            make_plan=lambda params, ctx: adjust_canary_split.plan(
                params, ctx.planner, ctx.settings.planner_step_seconds
            ),
            one_at_a_time=True,
            rollback_needs_approval=restore_raises_a_canary,
        ),
        ActionSpec(
            action_type=retry_flow_run.ACTION_TYPE,
            display_name="Retry Prefect Flow Run",
            description="Run a failed flow run's deployment again with the same parameters",
            params_model=retry_flow_run.Params,
            params_doc=retry_flow_run.PARAMS_DOC,
            typical=Typical("for one pipeline run", lambda _: retry_flow_run.estimate()),
            applies_to=frozenset({IncidentKind.PIPELINE}),
            rollback_supported=False,
            make_plan=lambda params, ctx: retry_flow_run.plan(params, ctx.facts),
            preflight=retry_flow_run.preflight,
        ),
    ]
}


def get_action_spec(action_type: str) -> ActionSpec | None:
    return ACTIONS.get(action_type)


def actions_for(kind: IncidentKind, suggested: list[str]) -> list[ActionSpec]:
    """The incident's suggested playbooks first (in its order), then the rest for its kind."""
    first = [ACTIONS[name] for name in suggested if name in ACTIONS]
    rest = [spec for name, spec in ACTIONS.items() if kind in spec.applies_to and spec not in first]
    return first + rest


@dataclass(frozen=True)
class Alias:
    """A playbook name incidents suggest that is an action with some params fixed."""

    name: str
    action_type: str
    display_name: str
    description: str
    fixed: dict[str, Any]
    requires_approval: bool = False


ALIASES: dict[str, Alias] = {
    alias.name: alias
    for alias in [
        Alias(
            "reduce_traffic",
            adjust_canary_split.ACTION_TYPE,
            "Reduce Canary Traffic",
            "Send 5% of traffic to the canary planner version",
            {"target_percent": 5},
        ),
        Alias(
            "pause_agent",
            adjust_canary_split.ACTION_TYPE,
            "Pause Canary",
            "Send no traffic to the canary planner version",
            {"target_percent": 0},
            requires_approval=True,
        ),
    ]
}


def presets(
    action_type: str,
    *,
    incident_id: int,
    key: str,
    details: dict[str, Any],
    metadata: dict[str, Any],
) -> dict[str, Any]:
    """Params drawn from the incident, for the user to keep or override."""
    planner = details.get("planner") if isinstance(details.get("planner"), dict) else {}
    version = (planner or {}).get("version") or (
        key.removeprefix("PLANNER_") if key.startswith("PLANNER_") else None
    )
    agent = metadata.get("agent")
    drawn: dict[str, Any] = {}
    if action_type == rerun_dbt.ACTION_TYPE:
        drawn["task_id"] = f"incident-{incident_id}"
    elif action_type == rerun_eval.ACTION_TYPE and agent:
        drawn["agent"] = agent
    elif action_type == rollback_planner.ACTION_TYPE and version:
        drawn["from_version"] = version
    elif action_type == adjust_canary_split.ACTION_TYPE and version:
        drawn["version"] = version
    elif action_type == retry_flow_run.ACTION_TYPE:
        failed = details.get("pipeline")
        if isinstance(failed, dict) and failed.get("flow_run_id"):
            drawn["flow_run_id"] = failed["flow_run_id"]  # its deployment, parameters: read back
    declared = metadata.get("playbook_params")  # a check's `params` for this action
    if isinstance(declared, dict) and isinstance(declared.get(action_type), dict):
        drawn |= declared[action_type]
    return drawn


SUGGESTABLE = config.Suggestable(
    actions={name: spec.params_model for name, spec in ACTIONS.items()},
    aliases=frozenset(ALIASES),  # playbooks a check may suggest, never a remediation's action
    applies_to={name: spec.applies_to for name, spec in ACTIONS.items()},
    rollback=frozenset(name for name, spec in ACTIONS.items() if spec.rollback_supported),
)


def load_checks(path: Path) -> dict[str, CheckSpec]:
    """The checks file, each check's playbooks and presets judged against this catalog."""
    return config.load_checks(path, SUGGESTABLE)
