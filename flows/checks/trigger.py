"""What started a check's flow run: its schedule (or the worker's start-up kick), or a person.

Prefect's scheduler creates a deployment's runs with `auto_scheduled=True` (and an idempotency
key `scheduled <deployment> <schedule> <time>`); `prefect deployment run`, the Prefect UI's
Run and Intervene's Run now create runs with `auto_scheduled=False`. The worker's start-up kick
(deployments/worker.py `kick_checks`) tags its runs STARTUP_TAGS and counts as the schedule:
nobody asked for it, it is the first run the schedule would otherwise make up to an interval
later, and it proves what a scheduled run proves (the worker serves the check).
"""

from prefect.client.schemas.objects import FlowRun

from models.enums import RunTrigger

STARTUP_TAG = "startup"
STARTUP_TAGS = ["intervene", "check", STARTUP_TAG]


def is_scheduled(flow_run: FlowRun) -> bool:
    return flow_run.auto_scheduled or STARTUP_TAG in flow_run.tags


def trigger_of(flow_run: FlowRun | None) -> RunTrigger:
    """SCHEDULE for the scheduler's and the start-up kick's runs; MANUAL for any other."""
    return (
        RunTrigger.SCHEDULE
        if flow_run is not None and is_scheduled(flow_run)
        else RunTrigger.MANUAL
    )
