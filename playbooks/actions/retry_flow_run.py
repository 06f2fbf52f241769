"""retry_flow_run: run a failed Prefect flow run's deployment again, with the same parameters.

Fixes a `pipeline` incident whose cause was transient (a source late, a node lost): a new flow
run of the failed run's deployment, with that run's parameters (or the ones given), tagged
`intervene-retry` and `incident:<id>`, waited on (at most `wait_seconds`); it succeeds when that
run ends Completed, which also resolves the incident. The failed run is read back from Prefect
(the incident's `details.pipeline.flow_run_id` by default): the dry-run names the deployment and
the parameters exactly. A flow run cannot be undone: no rollback.
"""

import json
from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from integrations.prefect_api import NotInPrefect, PrefectReader, PrefectUnreachable
from models.settings import Settings
from playbooks.plan import Plan, Preflight

ACTION_TYPE = "retry_flow_run"
SECONDS = 60  # the default estimate (playbooks/estimates.py scales it): a pipeline's run
RETRY_TAG = "intervene-retry"
DeploymentName = Annotated[
    str, StringConstraints(min_length=3, max_length=300, pattern=r"^[^/\s]+/[^/\s]+$")
]


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    flow_run_id: UUID | None = None
    deployment: DeploymentName | None = None
    parameters: dict[str, Any] | None = None
    wait_seconds: int = Field(default=600, ge=0, le=3600)


PARAMS_DOC = {
    "flow_run_id": "string (optional, default: the incident's failed flow run)",
    "deployment": "string `<flow>/<deployment>` (optional, default: the failed run's)",
    "parameters": "object (optional, default: the failed run's parameters)",
    "wait_seconds": "integer (optional, default: 600): how long to wait for the new run",
}


@dataclass(frozen=True)
class Target:
    deployment: str
    parameters: dict[str, Any]
    source: str | None  # the flow run retried


def estimate() -> tuple[int, float]:
    """Seconds and USD by default (the pipeline's own cost is not Intervene's to count)."""
    return SECONDS, 0.0


def tags(incident_id: int) -> list[str]:
    """The new run's tags: not `intervene` (that would make it one of Intervene's own runs,
    whose completion resolves nothing)."""
    return [RETRY_TAG, f"incident:{incident_id}"]


async def target(params: Params, reader: PrefectReader) -> Target:
    """What will run: the given deployment and parameters, else the failed run's (read from
    Prefect). Raises NotInPrefect, PrefectUnreachable, or LookupError when nothing names one."""
    deployment, parameters = params.deployment, params.parameters
    source = str(params.flow_run_id) if params.flow_run_id else None
    if source and (deployment is None or parameters is None):
        run = await reader.flow_run(source)
        deployment = deployment or run.deployment
        parameters = run.parameters if parameters is None else parameters
    if deployment is None:
        raise LookupError("no deployment to run: give `deployment` or a `flow_run_id` of one")
    await reader.deployment(deployment)  # it must exist now
    return Target(deployment, parameters or {}, source)


async def preflight(params: Params, settings: Settings) -> Preflight:
    reader = PrefectReader(ui_url=settings.prefect_ui_url)
    try:
        found = await target(params, reader)
    except (NotInPrefect, PrefectUnreachable, LookupError) as exc:
        return Preflight(problem=str(exc).strip("'\""))
    return Preflight(
        facts={
            "deployment": found.deployment,
            "parameters": found.parameters,
            "source": found.source,
        }
    )


def plan(params: Params, facts: dict[str, Any]) -> Plan:
    deployment = facts.get("deployment") or params.deployment or "(unknown deployment)"
    parameters = facts.get("parameters", params.parameters or {})
    source = facts.get("source") or (str(params.flow_run_id) if params.flow_run_id else None)
    shown = json.dumps(parameters, sort_keys=True, default=str)
    seconds, usd = estimate()
    return Plan(
        message=f"Run deployment {deployment} again with parameters {shown}",
        details={
            "deployment": deployment,
            "parameters": parameters,
            "retry_of": source,
            "tags": [RETRY_TAG, "incident:<id>"],
            "wait_seconds": params.wait_seconds,
        },
        changes=[
            f"Creates a new flow run of {deployment} with parameters {shown}"
            + (f" (those of flow run {source})" if source else ""),
            f"Waits up to {params.wait_seconds} s for it; success when it ends Completed",
            "Its completion resolves the pipeline incident; a flow run cannot be undone",
        ],
        estimated_duration=seconds,
        estimated_cost=usd,
        requires_approval=False,
        rollback_available=False,
    )
