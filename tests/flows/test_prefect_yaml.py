"""prefect.yaml declares one deployment per registered action, as the worker serves them."""

from pathlib import Path

import yaml

from flows.registry import ACTIONS, DEPLOYMENT_NAME

ROOT = Path(__file__).resolve().parents[2]


def test_every_action_has_its_deployment() -> None:
    declared = yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]
    by_flow = {d["entrypoint"].rsplit(":", 1)[1]: d for d in declared}

    for spec in ACTIONS.values():
        deployment = by_flow[spec.flow.fn.__name__]
        module = spec.flow.fn.__module__.replace(".", "/") + ".py"
        assert deployment["entrypoint"] == f"{module}:{spec.flow.fn.__name__}"
        assert deployment["name"] == DEPLOYMENT_NAME
        assert deployment.get("concurrency_limit") == spec.concurrency_limit
        assert (ROOT / module).exists()
    assert len(declared) == len(ACTIONS)
