"""SLA timers as a pure function of the incident's times, the targets and an explicit `now`."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from models.enums import Severity, SlaState, SlaTimer
from models.incident import Incident
from models.settings import Settings
from models.sla import DEFAULT_SLA_TARGETS, SlaTargets, done_at, sla_status, timer_status

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)

RUNBOOK = {  # severity -> (acknowledge, mitigate, resolve) in seconds, as the runbook says
    Severity.SEV1: (5 * 60, 30 * 60, 4 * 3600),
    Severity.SEV2: (15 * 60, 4 * 3600, 24 * 3600),
    Severity.SEV3: (3600, 24 * 3600, 7 * 24 * 3600),
}
OWN_STAMP = {
    SlaTimer.ACKNOWLEDGE: "acknowledged_at",
    SlaTimer.MITIGATE: "mitigated_at",
    SlaTimer.RESOLVE: "resolved_at",
}
TIMED = [
    pytest.param(severity, timer, seconds, id=f"{severity}-{timer}")
    for severity, targets in RUNBOOK.items()
    for timer, seconds in zip(SlaTimer, targets, strict=True)
]


def incident(severity: Severity = Severity.SEV1, **stamps: Any) -> Incident:
    return Incident(severity=severity, created_at=T0, **stamps)


def test_the_defaults_are_the_runbook_and_the_settings_use_them() -> None:
    for severity, (ack, mitigate, resolve) in RUNBOOK.items():
        expected = SlaTargets(acknowledge=ack, mitigate=mitigate, resolve=resolve)
        assert DEFAULT_SLA_TARGETS[severity] == expected
    assert DEFAULT_SLA_TARGETS[Severity.SEV4] == SlaTargets()
    assert Settings(_env_file=None).sla_targets == DEFAULT_SLA_TARGETS


def test_a_configured_table_keeps_the_defaults_of_the_severities_it_leaves_out() -> None:
    configured = Settings(sla_targets={"sev4": {"resolve": 60}}, _env_file=None)

    assert configured.sla_targets[Severity.SEV4] == SlaTargets(resolve=60)
    assert configured.sla_targets[Severity.SEV1] == DEFAULT_SLA_TARGETS[Severity.SEV1]


@pytest.mark.parametrize(("severity", "timer", "seconds"), TIMED)
def test_pending_until_due(severity: Severity, timer: SlaTimer, seconds: int) -> None:
    due = T0 + timedelta(seconds=seconds)

    status = timer_status(incident(severity), timer, targets=DEFAULT_SLA_TARGETS, now=due)

    assert status is not None
    assert (status.target_seconds, status.due_at, status.state) == (seconds, due, SlaState.PENDING)
    assert status.done_at is None
    assert status.breached_at is None


@pytest.mark.parametrize(("severity", "timer", "seconds"), TIMED)
def test_breached_while_still_not_done(severity: Severity, timer: SlaTimer, seconds: int) -> None:
    due = T0 + timedelta(seconds=seconds)

    status = timer_status(incident(severity), timer, targets=DEFAULT_SLA_TARGETS, now=due + SECOND)

    assert status is not None
    assert status.state is SlaState.BREACHED
    assert status.breached_at == due
    assert status.done_at is None


@pytest.mark.parametrize(("severity", "timer", "seconds"), TIMED)
def test_met_when_done_by_the_due_time_whenever_asked(
    severity: Severity, timer: SlaTimer, seconds: int
) -> None:
    due = T0 + timedelta(seconds=seconds)
    done = incident(severity, **{OWN_STAMP[timer]: due})

    for now in (due, due + timedelta(days=400)):
        status = timer_status(done, timer, targets=DEFAULT_SLA_TARGETS, now=now)
        assert status is not None
        assert (status.state, status.done_at, status.breached_at) == (SlaState.MET, due, None)


@pytest.mark.parametrize(("severity", "timer", "seconds"), TIMED)
def test_done_late_is_breached(severity: Severity, timer: SlaTimer, seconds: int) -> None:
    due = T0 + timedelta(seconds=seconds)
    late = incident(severity, **{OWN_STAMP[timer]: due + SECOND})

    status = timer_status(late, timer, targets=DEFAULT_SLA_TARGETS, now=due + timedelta(days=1))

    assert status is not None
    assert (status.state, status.done_at, status.breached_at) == (
        SlaState.BREACHED,
        due + SECOND,
        due,
    )


@pytest.mark.parametrize("now", [T0, T0 + timedelta(days=3650)])
def test_sev4_has_no_timers(now: datetime) -> None:
    assert sla_status(
        incident(Severity.SEV4), targets=DEFAULT_SLA_TARGETS, now=now
    ) == dict.fromkeys(SlaTimer)


def test_a_later_stage_marks_the_earlier_ones_done() -> None:
    """Mitigated straight from open: acknowledged then too. Closed: resolved by then."""
    mitigated = incident(mitigated_at=T0 + timedelta(minutes=3))
    closed = incident(closed_at=T0 + timedelta(hours=1))

    assert done_at(mitigated, SlaTimer.ACKNOWLEDGE) == T0 + timedelta(minutes=3)
    assert done_at(mitigated, SlaTimer.RESOLVE) is None
    timers = sla_status(closed, targets=DEFAULT_SLA_TARGETS, now=T0 + timedelta(days=1))
    assert {timer: s.state for timer, s in timers.items() if s} == dict.fromkeys(
        SlaTimer, SlaState.BREACHED
    ) | {SlaTimer.RESOLVE: SlaState.MET}


def test_the_earliest_stamp_counts() -> None:
    """Acknowledged again after a reopen: the first response (an early mitigation) counts."""
    again = incident(
        acknowledged_at=T0 + timedelta(hours=2), mitigated_at=T0 + timedelta(minutes=2)
    )

    status = timer_status(
        again, SlaTimer.ACKNOWLEDGE, targets=DEFAULT_SLA_TARGETS, now=T0 + timedelta(hours=3)
    )

    assert status is not None
    assert (status.state, status.done_at) == (SlaState.MET, T0 + timedelta(minutes=2))


def test_the_targets_passed_are_the_ones_used() -> None:
    targets = {Severity.SEV1: SlaTargets(acknowledge=10)}

    timers = sla_status(incident(), targets=targets, now=T0 + timedelta(seconds=11))

    assert timers[SlaTimer.MITIGATE] is None
    assert timers[SlaTimer.RESOLVE] is None
    ack = timers[SlaTimer.ACKNOWLEDGE]
    assert ack is not None
    assert (ack.target_seconds, ack.state) == (10, SlaState.BREACHED)
    assert sla_status(incident(Severity.SEV2), targets=targets, now=T0) == dict.fromkeys(SlaTimer)
