"""How a check's flow run ends and what started it, without a server."""

from uuid import uuid4

import pytest
from httpx import AsyncClient
from prefect.client.schemas.objects import FlowRun

from checks.config import CheckSpec
from flows.checks.outcome import artifact_key, final_state, incident_url, message
from flows.checks.trigger import STARTUP_TAGS, trigger_of
from models.check_run import CheckRun
from models.enums import RunTrigger
from models.settings import Settings
from playbooks.catalog import load_checks

SPEC: CheckSpec = load_checks(Settings().checks_file)["triage_latency"]


def run(**fields: object) -> CheckRun:
    defaults: dict[str, object] = {"id": 7, "check_id": SPEC.id, "duration_ms": 1.0,
                                   "threshold": SPEC.threshold, "value": 9000.0, "passed": False,
                                   "error": None, "incident_id": 12}  # fmt: skip
    return CheckRun(**(defaults | fields))


@pytest.mark.parametrize(
    ("check_id", "key"),
    [("triage_latency", "check-triage-latency"), ("Data.Fresh_1", "check-data-fresh-1")],
)
def test_the_artifact_key_is_lowercase_digits_and_dashes(check_id: str, key: str) -> None:
    assert artifact_key(check_id) == key


def test_a_violation_ends_failed_with_value_threshold_and_the_incident_link() -> None:
    state = final_state(SPEC, run(), "https://intervene.example.com/")

    assert state.is_failed()
    assert state.message == (
        f"Check triage_latency fails: value 9000 (must be {SPEC.comparison} {SPEC.threshold:g}); "
        "incident 12 https://intervene.example.com/#/incidents/12"
    )


def test_without_a_public_url_the_message_names_the_incident_only() -> None:
    assert message(SPEC, run(), None).endswith("; incident 12")
    assert incident_url(None, 12) is None


def test_a_query_error_ends_failed_with_the_error_and_a_pass_completed() -> None:
    errored = final_state(SPEC, run(value=None, passed=None, error="no such table"), None)
    passed = final_state(SPEC, run(value=1.0, passed=True, incident_id=None), None)

    assert errored.is_failed()
    assert (
        errored.message == "Check triage_latency could not be measured: no such table; incident 12"
    )
    assert passed.is_completed()
    assert passed.message.startswith("Check triage_latency passes: value 1 ")


def flow_run(*, auto_scheduled: bool = False, tags: list[str] | None = None) -> FlowRun:
    return FlowRun(flow_id=uuid4(), auto_scheduled=auto_scheduled, tags=tags or [])


def test_only_the_scheduler_and_the_start_up_kick_count_as_the_schedule() -> None:
    assert trigger_of(flow_run(auto_scheduled=True)) is RunTrigger.SCHEDULE
    assert trigger_of(flow_run(tags=STARTUP_TAGS)) is RunTrigger.SCHEDULE
    # prefect deployment run, the Prefect UI's Run, Intervene's Run now
    assert trigger_of(flow_run(tags=["intervene", "check", "run-now"])) is RunTrigger.MANUAL
    assert trigger_of(flow_run()) is RunTrigger.MANUAL
    assert trigger_of(None) is RunTrigger.MANUAL


async def test_run_now_without_prefect_runs_in_process_with_no_flow_run(
    client: AsyncClient,
) -> None:
    response = await client.post("/api/checks/triage_latency/run")

    body = response.json()
    assert response.status_code == 200, body
    assert body["trigger"] == "manual"
    assert body["flow_run_id"] is None
    assert body["flow_run_url"] is None
