"""rerun_eval on the real demo warehouse (DuckDB) and the real app database."""

from typing import Any

import pytest
from httpx import AsyncClient

from flows.rerun_eval import rerun_eval as rerun_eval_flow
from models.errors import ParamsError
from models.settings import Settings
from playbooks.actions import rerun_eval
from playbooks.catalog import load_checks
from tests.factories import create_incident
from tests.fakes import RecordingLauncher

DECLARED = load_checks(Settings().checks_file)


def test_plan_lists_the_agents_checks() -> None:
    plan = rerun_eval.plan(rerun_eval.Params(agent="inbox.triage"), DECLARED)

    assert plan.details["checks"] == [
        "data_freshness_inbox", "triage_cost", "triage_latency", "triage_quality",
    ]  # fmt: skip
    assert plan.requires_approval is False


@pytest.mark.parametrize(
    ("params", "field"),
    [({"agent": "nobody"}, "params.agent"),
     ({"agent": "inbox.triage", "checks": ["planner_canary"]}, "params.checks")],
)  # fmt: skip
def test_unknown_agents_and_checks_are_params_errors(params: dict[str, Any], field: str) -> None:
    with pytest.raises(ParamsError) as raised:
        rerun_eval.plan(rerun_eval.Params.model_validate(params), DECLARED)
    assert raised.value.field == field


async def run_eval(client: AsyncClient, launcher: RecordingLauncher, incident: dict[str, Any],
                   params: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    response = await client.post(
        f"/api/playbooks/incidents/{incident['id']}/actions/execute",
        json={"action_type": "rerun_eval", "params": params},
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = await rerun_eval_flow.fn(**launcher.launches[-1].parameters)
    return result


async def test_all_passing_says_so_on_the_incident(
    client: AsyncClient, launcher: RecordingLauncher, flow_env: None
) -> None:
    incident = await create_incident(client, kind="budget", playbooks=["rerun_eval"])

    params = {"agent": "inbox.triage", "checks": ["triage_quality", "triage_cost"]}
    result = await run_eval(client, launcher, incident, params)

    assert result["message"] == "2/2 check(s) of inbox.triage pass"
    assert [c["passed"] for c in result["checks"]] == [True, True]
    timeline = (await client.get(f"/api/incidents/{incident['id']}/timeline")).json()["entries"]
    [passed] = [e for e in timeline if e["verb"] == "eval_passed"]  # beside the action's own
    assert "all 2 check(s) pass" in passed["notes"]


async def test_a_failing_check_is_reported_and_opens_its_incident(
    client: AsyncClient, launcher: RecordingLauncher, flow_env: None
) -> None:
    incident = await create_incident(client, kind="budget", playbooks=["rerun_eval"])

    params = {"agent": "inbox.triage", "checks": ["triage_latency", "triage_cost"]}
    result = await run_eval(client, launcher, incident, params)

    assert result["message"] == "1/2 check(s) of inbox.triage pass"
    latency = next(c for c in result["checks"] if c["check_id"] == "triage_latency")
    assert latency["passed"] is False
    opened = (await client.get(f"/api/incidents/{latency['incident_id']}")).json()
    assert opened["key"] == "BUDGET_inbox.triage_latency_p95_ms"
    timeline = (await client.get(f"/api/incidents/{incident['id']}/timeline")).json()["entries"]
    assert "eval_passed" not in [e["verb"] for e in timeline]
