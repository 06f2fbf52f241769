"""The approval request's state machine, without HTTP: every (status, verb) pair from a table."""

from datetime import UTC, datetime, timedelta
from typing import get_args

import pytest

from models.access import APPROVAL_TRANSITIONS, ApprovalRequest, ApprovalVerb
from models.enums import ApprovalStatus
from models.errors import Conflict

AT = datetime(2026, 1, 1, tzinfo=UTC)
S = ApprovalStatus
EXPECTED: dict[tuple[ApprovalStatus, str], ApprovalStatus | None] = {
    (S.PENDING, "approve"): S.APPROVED,
    (S.PENDING, "reject"): S.REJECTED,
    (S.PENDING, "expire"): S.EXPIRED,
    (S.PENDING, "release"): None,
    (S.APPROVED, "approve"): None,
    (S.APPROVED, "reject"): None,
    (S.APPROVED, "expire"): None,
    (S.APPROVED, "release"): S.PENDING,
    **{
        (status, verb): None
        for status in (S.REJECTED, S.EXPIRED)
        for verb in get_args(ApprovalVerb)
    },
}


def request(status: ApprovalStatus) -> ApprovalRequest:
    made = ApprovalRequest(
        id=7, incident_id=1, action_type="rerun_dbt", params={}, plan={},
        requested_by="alice", requested_at=AT, expires_at=AT + timedelta(hours=1),
        status=status.value,
    )  # fmt: skip
    if status is not S.PENDING:
        made.decided_by, made.decided_at, made.decision_notes = "bob", AT, "ok"
    return made


def test_the_table_covers_every_verb() -> None:
    assert set(APPROVAL_TRANSITIONS) == set(get_args(ApprovalVerb))
    assert {pair[0] for pair in EXPECTED} == set(ApprovalStatus)


@pytest.mark.parametrize(("status", "verb"), sorted(EXPECTED))
def test_each_status_and_verb(status: ApprovalStatus, verb: ApprovalVerb) -> None:
    subject = request(status)
    before = (subject.status, subject.decided_by, subject.decided_at, subject.decision_notes)
    target = EXPECTED[(status, verb)]

    if target is None:
        with pytest.raises(Conflict) as refused:
            subject.apply(verb, by="carol", at=AT, notes="n")
        assert refused.value.details == {
            "approval_id": 7,
            "status": status.value,
            "action_id": None,
        }
        assert (subject.status, subject.decided_by, subject.decided_at, subject.decision_notes) == (
            before
        )
        return
    subject.apply(verb, by="carol", at=AT, notes="n")
    assert subject.status == target.value
    decided = (subject.decided_by, subject.decided_at, subject.decision_notes)
    if verb in ("approve", "reject"):
        assert decided == ("carol", AT, "n")
    elif verb == "release":
        assert decided == (None, None, None)
    else:  # an expiry is nobody's decision
        assert decided == before[1:]
