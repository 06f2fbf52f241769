"""How a check's flow run ends, as the Prefect UI shows it.

A violation ends the run Failed (value, comparison, threshold, the incident and its console
link in the state's message), a query error too (with the error); a pass ends it Completed.
Either way a table artifact `check-<id>` holds the numbers. The state is returned by the flow,
not raised: nothing is retried, the check is measured and recorded exactly once per run, and
no hook or reconciler touches a check run (they follow actions only).
"""

import re
from typing import Any

from prefect.artifacts import acreate_table_artifact
from prefect.client.schemas.objects import State
from prefect.states import Completed, Failed

from checks.config import CheckSpec
from models.check_run import CheckRun

SKIPPED_AS_LATE = "Skipped as late"


def artifact_key(check_id: str) -> str:
    """Prefect's artifact keys allow lowercase letters, digits and dashes only."""
    return "check-" + re.sub(r"[^a-z0-9-]", "-", check_id.lower().replace("_", "-"))


def incident_url(public_url: str | None, incident_id: int | None) -> str | None:
    if not public_url or incident_id is None:
        return None
    return f"{public_url.rstrip('/')}/#/incidents/{incident_id}"


def summary(run: CheckRun) -> dict[str, Any]:
    return {
        "run_id": run.id,
        "passed": run.passed,
        "value": run.value,
        "threshold": run.threshold,
        "error": run.error,
        "incident_id": run.incident_id,
    }


def message(spec: CheckSpec, run: CheckRun, public_url: str | None) -> str:
    if run.error is not None:
        text = f"Check {spec.id} could not be measured: {run.error}"
    else:
        verdict = "passes" if run.passed else "fails"
        text = (
            f"Check {spec.id} {verdict}: value {_number(run.value)} "
            f"(must be {spec.comparison} {run.threshold:g})"
        )
    if run.incident_id is not None:
        text += f"; incident {run.incident_id}"
        if url := incident_url(public_url, run.incident_id):
            text += f" {url}"
    return text


def final_state(spec: CheckSpec, run: CheckRun, public_url: str | None) -> State[Any]:
    """Completed only when the check ran and passed."""
    text = message(spec, run, public_url)
    if run.error is None and run.passed:
        return Completed(message=text, data=summary(run))
    return Failed(message=text, data=summary(run))


async def publish(spec: CheckSpec, run: CheckRun, public_url: str | None) -> None:
    """The run's table artifact: what was measured against what, and what it led to."""
    incident: str | None = None
    if run.incident_id is not None:
        incident = incident_url(public_url, run.incident_id) or str(run.incident_id)
    row = {
        "check": spec.id,
        "value": run.value,
        "comparison": spec.comparison,
        "threshold": run.threshold,
        "passed": run.passed,
        "error": run.error,
        "incident": incident,
        "check_run": run.id,
    }
    await acreate_table_artifact(
        table=[row],
        key=artifact_key(spec.id),
        description=message(spec, run, public_url),
    )


def _number(value: float | None) -> str:
    return "none" if value is None else f"{value:g}"
