"""An approval claims its request before it runs it; a claim whose process stopped before the
run was recorded must not leave the request stuck (approved, no action) forever."""

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from httpx import AsyncClient
from sqlalchemy import update

from models.access import ApprovalRequest
from models.base import utcnow
from models.db import Database, transaction
from models.enums import Role
from playbooks.approvals import CLAIM_SECONDS
from tests.factories import create_incident
from tests.fakes import RecordingLauncher

AsRole = Callable[[str, Role], Awaitable[AsyncClient]]
FULL_REFRESH = {"task_id": "task-1", "models": ["inbox_emails"], "full_refresh": True}


def url(incident_id: int, path: str = "") -> str:
    return f"/api/playbooks/incidents/{incident_id}/actions/approvals{path}"


async def asked(as_role: AsRole) -> tuple[AsyncClient, dict[str, Any]]:
    """An approver's client and a responder's pending request (a full refresh needs approval)."""
    responder = await as_role("rob@x.io", Role.RESPONDER)
    approver = await as_role("ann@x.io", Role.APPROVER)
    incident = await create_incident(responder)
    response = await responder.post(
        url(incident["id"]), json={"action_type": "rerun_dbt", "params": FULL_REFRESH}
    )
    assert response.status_code == 201, response.text
    return approver, response.json()


async def claim(db: Database, request_id: int, *, seconds_ago: float) -> None:
    """What an approval's first transaction leaves when its process stops right after it."""
    async with transaction(db.writer) as session:
        await session.execute(
            update(ApprovalRequest)
            .where(ApprovalRequest.id == request_id)
            .values(status="approved", decided_by="amy@x.io", action_id=None,
                    decided_at=utcnow() - timedelta(seconds=seconds_ago))
        )  # fmt: skip


async def test_a_claim_abandoned_before_its_run_was_recorded_can_be_approved_again(
    as_role: AsRole, db: Database, launcher: RecordingLauncher
) -> None:
    approver, request = await asked(as_role)
    await claim(db, request["id"], seconds_ago=CLAIM_SECONDS + 1)

    approved = await approver.post(url(request["incident_id"], f"/{request['id']}/approve"))

    assert approved.status_code == 200, approved.text
    body = approved.json()
    assert body["approval"]["decided_by"] == "ann@x.io"
    assert body["approval"]["action_id"] == body["action"]["id"]
    assert body["action"]["params"] == request["params"]
    assert len(launcher.launches) == 1


async def test_a_claim_still_within_its_time_is_in_progress(
    as_role: AsRole, db: Database, launcher: RecordingLauncher
) -> None:
    approver, request = await asked(as_role)
    await claim(db, request["id"], seconds_ago=5)

    approved = await approver.post(url(request["incident_id"], f"/{request['id']}/approve"))
    rejected = await approver.post(url(request["incident_id"], f"/{request['id']}/reject"))

    assert approved.status_code == 409
    assert approved.json()["error"]["details"]["status"] == "approved"
    assert rejected.status_code == 409
    assert launcher.launches == []


async def test_a_claim_whose_run_was_recorded_is_linked_to_it_not_run_again(
    as_role: AsRole, db: Database, launcher: RecordingLauncher
) -> None:
    approver, request = await asked(as_role)
    path = url(request["incident_id"], f"/{request['id']}")
    first = (await approver.post(f"{path}/approve")).json()
    # the run was recorded, then the process stopped before linking it to the request
    async with transaction(db.writer) as session:
        await session.execute(
            update(ApprovalRequest)
            .where(ApprovalRequest.id == request["id"])
            .values(action_id=None, decided_at=utcnow() - timedelta(seconds=CLAIM_SECONDS + 1))
        )

    again = await approver.post(f"{path}/approve")
    shown = (await approver.get(path)).json()

    assert again.status_code == 409
    assert again.json()["error"]["details"]["action_id"] == first["action"]["id"]
    assert shown["action_id"] == first["action"]["id"]
    assert len(launcher.launches) == 1
