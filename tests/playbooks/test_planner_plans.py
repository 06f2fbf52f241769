"""The planner playbooks' plans (pure): which steps, and when they need approval."""

from typing import Any

import pytest

from models.errors import ParamsError
from models.services.planner import PlannerSnapshot
from playbooks.actions import adjust_canary_split, rollback_planner

PLANNER = PlannerSnapshot(
    traffic={"v1.2.2": 80, "v1.2.3": 20}, stable_version="v1.2.2", canary_version="v1.2.3"
)


def rollback_params(**overrides: Any) -> rollback_planner.Params:
    return rollback_planner.Params.model_validate({"from_version": "v1.2.3"} | overrides)


def split_params(**overrides: Any) -> adjust_canary_split.Params:
    return adjust_canary_split.Params.model_validate(
        {"version": "v1.2.3", "target_percent": 5} | overrides
    )


def test_gradual_rollback_halves_then_empties_the_old_version() -> None:
    plan = rollback_planner.plan(rollback_params(), PLANNER, step_seconds=30)

    assert plan.details["steps"] == [{"v1.2.2": 90, "v1.2.3": 10}, {"v1.2.2": 100}]
    assert plan.details["to_version"] == "v1.2.2"
    assert "v1.2.3: 20% -> 10% -> 0%" in plan.changes
    assert plan.requires_approval is False
    assert plan.rollback_available is True
    assert plan.estimated_duration == 35


def test_a_full_version_goes_100_50_0_and_immediate_needs_approval() -> None:
    full = PlannerSnapshot(traffic={"v2": 100}, stable_version="v1")

    gradual = rollback_planner.plan(rollback_params(from_version="v2"), full, step_seconds=10)
    immediate = rollback_planner.plan(
        rollback_params(from_version="v2", immediate=True), full, step_seconds=10
    )

    assert "v2: 100% -> 50% -> 0%" in gradual.changes
    assert immediate.details["steps"] == [{"v1": 100}]
    assert immediate.requires_approval is True


@pytest.mark.parametrize(
    ("params", "field"),
    [({"from_version": "v9"}, "params.from_version"),
     ({"to_version": "v1.2.3"}, "params.to_version")],
)  # fmt: skip
def test_rollback_refuses_what_cannot_be(params: dict[str, Any], field: str) -> None:
    with pytest.raises(ParamsError) as raised:
        rollback_planner.plan(rollback_params(**params), PLANNER, step_seconds=0)
    assert raised.value.field == field


def test_raising_a_canary_needs_approval_lowering_does_not() -> None:
    lower = adjust_canary_split.plan(split_params(target_percent=5), PLANNER, step_seconds=0)
    raise_ = adjust_canary_split.plan(
        split_params(target_percent=50, gradual=True), PLANNER, step_seconds=0
    )

    assert lower.details["steps"] == [{"v1.2.2": 95, "v1.2.3": 5}]
    assert lower.requires_approval is False
    assert raise_.requires_approval is True
    assert raise_.details["steps"] == [{"v1.2.2": 65, "v1.2.3": 35}, {"v1.2.2": 50, "v1.2.3": 50}]


def test_the_stable_version_is_not_a_canary() -> None:
    with pytest.raises(ParamsError):
        adjust_canary_split.plan(split_params(version="v1.2.2"), PLANNER, step_seconds=0)


def test_rollback_to_an_unknown_or_unstable_version() -> None:
    three = PlannerSnapshot(traffic={"v1": 70, "v2": 20, "v3": 10}, stable_version="v1")

    with pytest.raises(ParamsError, match="unknown planner version v9"):
        rollback_planner.plan(rollback_params(from_version="v3", to_version="v9"), three, 0)
    sideways = rollback_planner.plan(rollback_params(from_version="v3", to_version="v2"), three, 0)

    assert sideways.requires_approval is True  # onto a version that is not the stable one
