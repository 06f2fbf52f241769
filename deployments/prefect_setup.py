"""`intervene prefect setup`: what Intervene needs on a Prefect server, created or brought up to
date, idempotently (a second run changes nothing and says so).

- the work pool `intervene` (a process pool unless it exists with another type), whose job
  variables set Prefect's flow-run heartbeats (deployments/prefect_env.py) in every flow run;
- the automation "intervene: crash zombie flow runs", Prefect's documented zombie detection
  (docs.prefect.io, "detect zombie flows"): a run that sent a heartbeat and then neither another
  one nor a final state within the threshold is set Crashed, by Prefect itself, whether or not
  any Intervene process is running. Scoped to runs tagged `intervene` unless `all_runs`;
- with `intervene_url` and a token: a Webhook block and the automation "intervene: finished
  flow runs", which posts `{"flow_run_id": ...}` to Intervene's `POST /api/prefect/flow-runs`
  whenever a flow run ends Failed, Crashed or Completed (which resolves): the recipe of
  docs/prefect-pipelines.md (pipeline incidents where Intervene cannot follow Prefect's
  events). The endpoint ignores Intervene's own runs; the reconciler follows those.
"""

from datetime import timedelta
from typing import Any
from uuid import UUID

from prefect import get_client
from prefect.blocks.webhook import Webhook
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
from prefect.client.schemas.objects import StateType
from prefect.events.actions import CallWebhook, ChangeFlowRunState
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
from prefect.events.schemas.events import ResourceSpecification
from prefect.exceptions import ObjectNotFound

from deployments.prefect_env import flow_run_env

POOL = "intervene"
TAG = "intervene"
ZOMBIE_AUTOMATION = "intervene: crash zombie flow runs"
REPORT_AUTOMATION = "intervene: finished flow runs"  # the name docs/prefect-pipelines.md uses
WEBHOOK_BLOCK = "intervene-flow-runs"
FLOW_RUNS_PATH = "/api/prefect/flow-runs"
REPORT_PAYLOAD = '{"flow_run_id": "{{ flow_run.id }}"}'
FINAL_EVENTS = [
    "prefect.flow-run.Completed",
    "prefect.flow-run.Failed",
    "prefect.flow-run.Cancelled",
    "prefect.flow-run.Crashed",
]


COMPARED = {
    "name", "description", "enabled", "trigger", "actions", "actions_on_trigger",
    "actions_on_resolve",
}  # fmt: skip


class SetupError(Exception):
    pass


def _tagged(all_runs: bool) -> ResourceSpecification:
    if all_runs:
        return ResourceSpecification({})
    return ResourceSpecification(
        {"prefect.resource.role": "tag", "prefect.resource.id": f"prefect.tag.{TAG}"}
    )


def zombie_automation(threshold: int, *, all_runs: bool = False) -> AutomationCore:
    scope = "every flow run" if all_runs else f"flow runs tagged {TAG}"
    return AutomationCore(
        name=ZOMBIE_AUTOMATION,
        description=(
            f"Marks Crashed any of {scope} that sent a heartbeat and then nothing for "
            f"{threshold} s (its process died). Made by `intervene prefect setup`."
        ),
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={"prefect.flow-run.heartbeat", *FINAL_EVENTS},
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            match_related=_tagged(all_runs),
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=threshold),
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.CRASHED,
                message=(
                    f"No heartbeat for {threshold} s: the process running this flow run died "
                    f"(Prefect automation '{ZOMBIE_AUTOMATION}')"
                ),
            )
        ],
    )


def report_automation(block_document_id: UUID) -> AutomationCore:
    return AutomationCore(
        name=REPORT_AUTOMATION,
        description=(
            f"Posts each finished flow run to Intervene ({FLOW_RUNS_PATH}), which opens, counts "
            "and resolves pipeline incidents. Made by `intervene prefect setup`."
        ),
        trigger=EventTrigger(
            expect={
                "prefect.flow-run.Failed",
                "prefect.flow-run.Crashed",
                "prefect.flow-run.Completed",
            },
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            for_each={"prefect.resource.id"},
            posture=Posture.Reactive,
            threshold=1,
            within=timedelta(0),
        ),
        actions=[CallWebhook(block_document_id=block_document_id, payload=REPORT_PAYLOAD)],
    )


def _comparable(automation: AutomationCore) -> dict[str, Any]:
    """What setup decides, without the ids the server or the model make up."""
    dumped = automation.model_dump(
        mode="json",
        include=COMPARED,
    )
    dumped["trigger"].pop("id", None)
    return _sorted_sets(dumped)


def _sorted_sets(value: Any) -> Any:
    """Sets (the trigger's events) dump as lists in an order that differs between processes."""
    if isinstance(value, dict):
        return {key: _sorted_sets(item) for key, item in value.items()}
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return sorted(value)
    if isinstance(value, list):
        return [_sorted_sets(item) for item in value]
    return value


async def ensure_automation(client: PrefectClient, wanted: AutomationCore) -> str:
    existing = await client.read_automations_by_name(wanted.name)
    if not existing:
        await client.create_automation(wanted)
        return f"automation '{wanted.name}': created"
    first, *duplicates = existing
    for duplicate in duplicates:  # one automation per name, or it would act twice
        await client.delete_automation(duplicate.id)
    if _comparable(first) == _comparable(wanted) and not duplicates:
        return f"automation '{wanted.name}': unchanged"
    await client.update_automation(first.id, wanted)
    return f"automation '{wanted.name}': updated"


def with_heartbeat_env(template: dict[str, Any]) -> dict[str, Any]:
    """The base job template with the heartbeat settings added to the `env` variable's
    default (any value already there for the same name is the operator's and stays)."""
    updated: dict[str, Any] = {**template, "variables": dict(template.get("variables") or {})}
    properties = dict(updated["variables"].get("properties") or {})
    if "env" not in properties:
        raise SetupError("the work pool's job template has no `env` variable to set")
    env_variable = dict(properties["env"])
    env_variable["default"] = flow_run_env() | dict(env_variable.get("default") or {})
    properties["env"] = env_variable
    updated["variables"]["properties"] = properties
    return updated


async def ensure_pool(client: PrefectClient, name: str) -> str:
    try:
        pool = await client.read_work_pool(name)
    except ObjectNotFound:
        from prefect.workers.process import ProcessWorker

        template = with_heartbeat_env(ProcessWorker.get_default_base_job_template())
        await client.create_work_pool(
            WorkPoolCreate(name=name, type="process", base_job_template=template)
        )
        return f"work pool '{name}' (process): created"
    template = with_heartbeat_env(pool.base_job_template)
    if template == pool.base_job_template:
        return f"work pool '{name}' ({pool.type}): unchanged"
    await client.update_work_pool(name, WorkPoolUpdate(base_job_template=template))
    return f"work pool '{name}' ({pool.type}): heartbeat env added"


async def ensure_webhook_block(intervene_url: str, token: str) -> tuple[UUID, str]:
    url = intervene_url.rstrip("/") + FLOW_RUNS_PATH
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    try:
        block = await Webhook.aload(WEBHOOK_BLOCK)
    except ValueError:  # no block by that name
        block = None
    if (
        block is not None
        and block.method == "POST"
        and block.url.get_secret_value() == url
        and block.headers.get_secret_value() == headers
    ):
        assert block._block_document_id is not None
        return block._block_document_id, f"webhook block '{WEBHOOK_BLOCK}': unchanged"
    made = Webhook(method="POST", url=url, headers=headers)  # type: ignore[arg-type]
    block_id = await made.asave(WEBHOOK_BLOCK, overwrite=True)
    verb = "created" if block is None else "updated"
    return block_id, f"webhook block '{WEBHOOK_BLOCK}' -> {url}: {verb}"


async def setup(
    *,
    pool: str = POOL,
    zombie_threshold: int = 90,
    all_runs: bool = False,
    intervene_url: str | None = None,
    token: str | None = None,
) -> list[str]:
    """Bring the server up to date; one line per object saying what was done."""
    changes = []
    async with get_client() as client:
        changes.append(await ensure_pool(client, pool))
        wanted = zombie_automation(zombie_threshold, all_runs=all_runs)
        changes.append(await ensure_automation(client, wanted))
        if intervene_url is not None and token is not None:
            block_id, change = await ensure_webhook_block(intervene_url, token)
            changes.append(change)
            changes.append(await ensure_automation(client, report_automation(block_id)))
    return changes
