"""The incident state machine without HTTP: every (status, verb) pair against the table."""

from datetime import UTC, datetime
from itertools import product
from typing import Any

import pytest

from models.enums import IncidentKind, IncidentStatus, Severity, Verb
from models.errors import InvalidTransition
from models.incident import TRANSITIONS, Incident

T0 = datetime(2026, 1, 1, tzinfo=UTC)
STAMPED = {
    Verb.ACKNOWLEDGE: "acknowledged_at",
    Verb.MITIGATE: "mitigated_at",
    Verb.RESOLVE: "resolved_at",
    Verb.CLOSE: "closed_at",
}


def incident_in(status: IncidentStatus) -> Incident:
    return Incident(
        id=1,
        kind=IncidentKind.INVARIANT,
        key="INV_unit",
        severity=Severity.SEV2,
        status=status,
        summary="unit",
        details={},
        metadata_={},
        playbooks=[],
        reopen_count=0,
        resolved_at=T0 if status is IncidentStatus.RESOLVED else None,
    )


def state(incident: Incident) -> dict[str, Any]:
    columns = Incident.__table__.columns.keys()
    return {
        name: getattr(
            incident,
            incident.__mapper__.get_property_by_column(Incident.__table__.columns[name]).key,
        )
        for name in columns
    }


@pytest.mark.parametrize(("status", "verb"), list(product(IncidentStatus, Verb)))
def test_every_status_and_verb_follows_the_table(status: IncidentStatus, verb: Verb) -> None:
    incident = incident_in(status)
    before = state(incident)
    allowed, target = TRANSITIONS[verb]
    at = datetime(2026, 1, 2, tzinfo=UTC)

    if status not in allowed:
        with pytest.raises(InvalidTransition) as refused:
            incident.apply(verb, actor="unit", at=at)
        assert refused.value.details["current_status"] == status.value
        assert state(incident) == before  # a refused verb changes nothing
        return

    incident.apply(verb, actor="unit", at=at, notes="why")

    assert incident.status is (target or status)
    assert incident.updated_at == at
    if verb in STAMPED:
        assert getattr(incident, STAMPED[verb]) == at
    if verb is Verb.REOPEN:
        assert (incident.reopen_count, incident.resolved_at) == (1, None)
    changed = {k for k, v in state(incident).items() if v != before[k]}
    assert changed <= {"status", "updated_at", "reopen_count", "resolved_at", *STAMPED.values()}
