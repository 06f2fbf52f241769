"""An action's status only moves forward, whatever order its reports arrive in."""

from datetime import UTC, datetime, timedelta

import pytest

from models.action import Action
from models.enums import ActionStatus

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def new_action() -> Action:
    return Action(
        id=7, incident_id=3, action_type="rerun_dbt", params={}, dry_run=False,
        status=ActionStatus.PENDING.value, requested_by="api",
    )  # fmt: skip


def test_forward_moves_stamp_times_and_emit_events() -> None:
    action = new_action()

    assert action.advance(ActionStatus.SCHEDULED, at=T0) is None
    running = action.advance(ActionStatus.RUNNING, at=T0 + timedelta(seconds=2))
    done = action.advance(ActionStatus.SUCCESS, at=T0 + timedelta(seconds=12), message="ok")

    assert running is not None
    assert running.payload["status"] == "running"
    assert done is not None
    assert done.payload == {
        "incident_id": 3, "action_id": 7, "action_type": "rerun_dbt", "status": "success",
        "dry_run": False, "rollback_of": None,
    }  # fmt: skip
    assert action.started_at == T0 + timedelta(seconds=2)
    assert action.completed_at == T0 + timedelta(seconds=12)
    assert action.actual_duration == 10.0
    assert action.message == "ok"


@pytest.mark.parametrize(
    "late", [ActionStatus.PENDING, ActionStatus.SCHEDULED, ActionStatus.RUNNING,
             ActionStatus.FAILED, ActionStatus.SUCCESS]
)  # fmt: skip
def test_a_terminal_status_is_never_overwritten(late: ActionStatus) -> None:
    action = new_action()
    action.advance(ActionStatus.RUNNING, at=T0)
    action.advance(ActionStatus.CRASHED, at=T0 + timedelta(seconds=1), message="killed")

    event = action.advance(late, at=T0 + timedelta(seconds=2), message="late report")

    assert event is None
    assert action.status == "crashed"
    assert action.message == "killed"
    assert action.completed_at == T0 + timedelta(seconds=1)


def test_a_late_running_report_does_not_move_back_from_success() -> None:
    action = new_action()
    action.advance(ActionStatus.SUCCESS, at=T0)

    assert action.advance(ActionStatus.RUNNING, at=T0 + timedelta(seconds=1)) is None
    assert action.status == "success"


def test_the_flows_outcome_replaces_a_crash_declared_while_it_worked() -> None:
    """A reconciler that misjudged silence (or a runner that lost its Prefect server) declared
    the run crashed; the flow then finished its work and says how it ended: that stands."""
    action = new_action()
    action.advance(ActionStatus.RUNNING, at=T0)
    action.advance(ActionStatus.CRASHED, at=T0 + timedelta(seconds=40), message="No heartbeat")

    event = action.settle(ActionStatus.SUCCESS, at=T0 + timedelta(seconds=50), message="done")

    assert event is not None
    assert event.payload["status"] == "success"
    assert (action.status, action.message) == ("success", "done")
    assert action.completed_at == T0 + timedelta(seconds=50)
    assert action.actual_duration == 50.0


@pytest.mark.parametrize(
    "final", [ActionStatus.SUCCESS, ActionStatus.FAILED, ActionStatus.CANCELLED]
)
def test_the_flows_outcome_never_replaces_another_final_status(final: ActionStatus) -> None:
    action = new_action()
    action.advance(final, at=T0, message="first")

    assert action.settle(ActionStatus.SUCCESS, at=T0 + timedelta(seconds=5)) is None
    assert action.settle(ActionStatus.FAILED, at=T0 + timedelta(seconds=5)) is None
    assert (action.status, action.message) == (final.value, "first")
