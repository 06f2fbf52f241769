"""What started a check's flow run: its schedule (or the worker's start-up kick), or a person.

Prefect's scheduler creates a deployment's runs with `auto_scheduled=True` (and an idempotency
key `scheduled <deployment> <schedule> <time>`); `prefect deployment run`, the Prefect UI's
Run and Intervene's Run now create runs with `auto_scheduled=False`. The worker's start-up kick
(deployments/worker.py `kick_checks`) tags its runs STARTUP_TAGS and counts as the schedule:
nobody asked for it, it is the first run the schedule would otherwise make up to an interval
later, and it proves what a scheduled run proves (the worker serves the check). The remediation
loop's re-runs, which judge a fix, are tagged `verification`.
"""

from prefect.client.schemas.objects import FlowRun

from models.enums import RunTrigger

STARTUP_TAG = "startup"
STARTUP_TAGS = ["intervene", "check", STARTUP_TAG]
VERIFICATION_TAG = "verification"  # the remediation loop's runs (deployments/remediator.py)


def is_scheduled(flow_run: FlowRun) -> bool:
    return flow_run.auto_scheduled or STARTUP_TAG in flow_run.tags


def trigger_of(flow_run: FlowRun | None) -> RunTrigger:
    """SCHEDULE for the scheduler's and the start-up kick's runs; VERIFICATION for the
    remediation loop's (tagged VERIFICATION_TAG); MANUAL for any other."""
    if flow_run is not None and VERIFICATION_TAG in flow_run.tags:
        return RunTrigger.VERIFICATION
    return (
        RunTrigger.SCHEDULE
        if flow_run is not None and is_scheduled(flow_run)
        else RunTrigger.MANUAL
    )
