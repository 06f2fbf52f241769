"""prefect.yaml declares what the worker serves: each action, and each shipped check."""

from pathlib import Path

import yaml

from flows.checks.flow import ANCHOR, FLOW_NAME
from flows.registry import FLOWS
from models.settings import Settings
from playbooks.catalog import ACTIONS, load_checks

ROOT = Path(__file__).resolve().parents[2]
DECLARED = yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]


def test_every_action_has_its_deployment() -> None:
    actions = [d for d in DECLARED if not d["entrypoint"].endswith(f":{FLOW_NAME}")]
    by_flow = {d["entrypoint"].rsplit(":", 1)[1]: d for d in actions}

    for spec in ACTIONS.values():
        flow = FLOWS[spec.action_type]
        deployment = by_flow[flow.fn.__name__]
        module = flow.fn.__module__.replace(".", "/") + ".py"
        assert deployment["entrypoint"] == f"{module}:{flow.fn.__name__}"
        assert deployment["name"] == spec.action_type
        assert "concurrency_limit" not in deployment  # turns are Intervene's: flows/turns.py
        assert (ROOT / module).exists()
    assert len(actions) == len(ACTIONS) == len(FLOWS)


def test_every_shipped_check_has_its_scheduled_deployment() -> None:
    checks = load_checks(Settings().checks_file)
    declared = {d["name"]: d for d in DECLARED if d["entrypoint"].endswith(f":{FLOW_NAME}")}

    assert set(declared) == set(checks)
    for check_id, spec in checks.items():
        deployment = declared[check_id]
        assert deployment["entrypoint"] == "flows/checks/flow.py:check"
        assert deployment["parameters"] == {"check_id": check_id}
        # the anchor the worker's deployments use too: a redeploy keeps the run times
        assert deployment["schedules"] == [
            {"interval": spec.every, "anchor_date": ANCHOR.isoformat().replace("+00:00", "Z")}
        ]
