"""`intervene prefect setup`'s decisions without a server (tests/deployments/test_pool_path.py
runs it against a real one, twice)."""

from uuid import uuid4

import pytest
from prefect.workers.process import ProcessWorker

from deployments.prefect_setup import (
    SetupError,
    _comparable,
    report_automation,
    with_heartbeat_env,
    zombie_automation,
)


def test_the_heartbeat_joins_the_pools_env_and_an_operators_value_wins() -> None:
    template = ProcessWorker.get_default_base_job_template()
    template["variables"]["properties"]["env"]["default"] = {
        "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "60", "INTERVENE_DATABASE_URL": "postgresql://x",
    }  # fmt: skip

    updated = with_heartbeat_env(template)

    env = updated["variables"]["properties"]["env"]["default"]
    assert env == {
        "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "60", "INTERVENE_DATABASE_URL": "postgresql://x",
    }  # fmt: skip
    assert with_heartbeat_env(updated) == updated  # a second setup changes nothing
    fresh = with_heartbeat_env(ProcessWorker.get_default_base_job_template())
    assert fresh["variables"]["properties"]["env"]["default"] == {
        "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30"
    }


def test_a_pool_template_without_env_is_refused() -> None:
    with pytest.raises(SetupError, match="no `env` variable"):
        with_heartbeat_env({"job_configuration": {}, "variables": {"properties": {}}})


def test_the_zombie_automation_is_scoped_by_tag_unless_all_runs() -> None:
    scoped = zombie_automation(90).model_dump(mode="json")["trigger"]
    everything = zombie_automation(90, all_runs=True).model_dump(mode="json")["trigger"]

    assert scoped["match_related"] == {
        "prefect.resource.role": "tag", "prefect.resource.id": "prefect.tag.intervene",
    }  # fmt: skip
    assert everything["match_related"] == {}
    assert zombie_automation(90).actions[0].state.value == "CRASHED"  # type: ignore[union-attr]


def test_automations_compare_equal_whatever_their_ids_and_set_order() -> None:
    block = uuid4()
    # two builds get two trigger ids; the events' sets may dump in any order
    assert _comparable(report_automation(block)) == _comparable(report_automation(block))
    assert _comparable(zombie_automation(90)) == _comparable(zombie_automation(90))
    assert _comparable(zombie_automation(90)) != _comparable(zombie_automation(120))
    assert _comparable(report_automation(block)) != _comparable(report_automation(uuid4()))
