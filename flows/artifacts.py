"""What an action's flow run shows on its page in the Prefect UI: two markdown artifacts,
`action-<id>-plan` when the run starts (the steps, parameters and estimate) and
`action-<id>-result` when it ends (the outcome; rerun_dbt's per-model table; a failure's
reason), each naming the action and linking to its incident in the console when
INTERVENE_PUBLIC_URL is set.

An artifact is a courtesy: one that cannot be written is a warning in the run's logs, never
the action's failure, and it waits at most ARTIFACT_SECONDS (Prefect's client retries a server
that is down for a minute or more, which would hold the action's work and its recorded result
back). Outside a flow run (tests call flow bodies directly) nothing is written.
"""

import asyncio
import json
from typing import Any

from prefect.artifacts import MarkdownArtifact
from prefect.client.orchestration import PrefectClient
from prefect.context import FlowRunContext

from flows.admission import Admitted
from flows.logs import run_logger
from models.settings import get_settings
from playbooks.launcher import run_name

ARTIFACT_SECONDS = 10.0


def plan_key(action_id: int) -> str:
    return f"action-{action_id}-plan"  # Prefect keys: lowercase letters, digits and dashes


def result_key(action_id: int) -> str:
    return f"action-{action_id}-result"


def incident_url(public_url: str | None, incident_id: int) -> str | None:
    """The incident's page in the console (its route is `#/incidents/<id>`)."""
    return f"{public_url.rstrip('/')}/#/incidents/{incident_id}" if public_url else None


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text.replace("|", "\\|").replace("\n", " ")


def _heading(action: Admitted, public_url: str | None) -> list[str]:
    name = run_name(
        action.action_type,
        action.incident_id,
        action.rollback_of if action.rollback_of is not None else action.action_id,
        rollback=action.rollback_of is not None,
    )
    url = incident_url(public_url, action.incident_id)
    incident = f"incident {action.incident_id}"
    if url:
        incident = f"[{incident}]({url})"
    about = f"Intervene action {action.action_id} ({action.action_type}) on {incident}."
    return [f"# {name}", "", about]


def plan_markdown(action: Admitted, public_url: str | None) -> str:
    lines = _heading(action, public_url)
    if action.message:
        lines += ["", f"**{action.message}**"]
    lines += ["", "## Steps", ""]
    lines += [f"- {change}" for change in action.changes] or ["- (no steps recorded)"]
    lines += ["", "## Parameters", "", "| parameter | value |", "|---|---|"]
    lines += [f"| {_cell(name)} | {_cell(value)} |" for name, value in action.params.items()]
    lines += [
        "",
        "## Estimate",
        "",
        f"About {action.estimated_duration} s, cost {action.estimated_cost:g}.",
    ]
    return "\n".join(lines) + "\n"


def _models_table(models: list[dict[str, Any]]) -> list[str]:
    lines = ["## Models", "", "| model | status | duration (s) | rows |", "|---|---|---|---|"]
    for model in models:
        rows = model.get("rows_affected")
        lines.append(
            f"| {_cell(model.get('name'))} | {_cell(model.get('status'))} "
            f"| {model.get('execution_time', '')} | {'' if rows is None else rows} |"
        )
    return lines


def result_markdown(
    action: Admitted,
    public_url: str | None,
    *,
    result: dict[str, Any] | None,
    failed: str | None = None,
) -> str:
    lines = _heading(action, public_url)
    outcome = "failed" if failed is not None else "success"
    lines += ["", f"**Outcome: {outcome}**"]
    message = (result or {}).get("message")
    if isinstance(message, str) and message != failed:
        lines += ["", message]
    if failed is not None:
        lines += ["", "## Reason", "", failed]
    models = (result or {}).get("models")
    if isinstance(models, list) and models:
        lines += ["", *_models_table(models)]
    return "\n".join(lines) + "\n"


async def _publish(
    key: str, markdown: str, description: str, client: PrefectClient | None = None
) -> None:
    """Write the artifact on the run's page (through `client`, else the run's own)."""
    if FlowRunContext.get() is None:
        return
    try:
        artifact = MarkdownArtifact(key=key, description=description, markdown=markdown)
        async with asyncio.timeout(ARTIFACT_SECONDS):
            await artifact.acreate(client)
    except TimeoutError:
        run_logger().warning(
            "could not write the artifact %s: Prefect did not answer within %g s",
            key,
            ARTIFACT_SECONDS,
        )
    except Exception as exc:  # a courtesy: never the action's failure
        kind = type(exc).__name__
        run_logger().warning("could not write the artifact %s: %s: %s", key, kind, exc)


async def publish_plan(action: Admitted) -> None:
    markdown = plan_markdown(action, get_settings().public_url)
    await _publish(plan_key(action.action_id), markdown, f"The plan of action {action.action_id}")


async def publish_result(
    action: Admitted, *, result: dict[str, Any] | None, failed: str | None = None
) -> None:
    markdown = result_markdown(action, get_settings().public_url, result=result, failed=failed)
    await _publish(
        result_key(action.action_id), markdown, f"The result of action {action.action_id}"
    )
