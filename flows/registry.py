"""The static table of playbook actions: what the API lists, validates, plans and triggers.

Each entry names the action's flow; the worker serves every flow here as a deployment named
`<action_type>/intervene`. Importing this module imports Prefect (the flows) but never dbt.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prefect import Flow
from pydantic import BaseModel

from flows import rerun_dbt
from flows.plan import Plan
from flows.warehouse import DbtProject
from models.enums import IncidentKind
from models.settings import Settings

DEPLOYMENT_NAME = "intervene"


@dataclass(frozen=True)
class PlanContext:
    """What a plan may consult besides its params (read-only, cheap)."""

    settings: Settings

    @property
    def dbt(self) -> DbtProject:
        return DbtProject.from_settings(self.settings)


@dataclass(frozen=True)
class ActionSpec:
    action_type: str
    display_name: str
    description: str
    params_model: type[BaseModel]
    params_doc: dict[str, str]
    estimated_duration: str
    estimated_cost: str
    applies_to: frozenset[IncidentKind]
    rollback_supported: bool
    flow: Flow[..., Any]
    make_plan: Callable[[Any, PlanContext], Plan]
    approval_by_default: bool = False
    concurrency_limit: int | None = None  # runs of this action at once, across all workers

    @property
    def deployment(self) -> str:
        return f"{self.flow.name}/{DEPLOYMENT_NAME}"

    def plan(self, params: BaseModel, context: PlanContext) -> Plan:
        return self.make_plan(params, context)


ALL_KINDS = frozenset(IncidentKind)

ACTIONS: dict[str, ActionSpec] = {
    spec.action_type: spec
    for spec in [
        ActionSpec(
            action_type=rerun_dbt.ACTION_TYPE,
            display_name="Re-run DBT Models",
            description="Re-run specified dbt models to refresh data",
            params_model=rerun_dbt.Params,
            params_doc=rerun_dbt.PARAMS_DOC,
            estimated_duration="10 minutes",
            estimated_cost="$0.10",
            applies_to=frozenset({IncidentKind.INVARIANT, IncidentKind.BUDGET}),
            rollback_supported=False,
            flow=rerun_dbt.rerun_dbt,
            make_plan=lambda params, ctx: rerun_dbt.plan(params, ctx.dbt.manifest()),
            concurrency_limit=1,  # one dbt at a time: dbt-core #9603, one DuckDB writer
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
