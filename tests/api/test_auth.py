"""Who may do what: tokens, roles on every endpoint, approvals bound to people, the audit log."""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import update

from models.access import ApprovalRequest
from models.base import utcnow
from models.db import Database, transaction
from models.enums import ActionStatus, Role
from models.services.actions import advance_action, store_result
from playbooks.catalog import ACTIONS
from tests.auth import bearer
from tests.factories import create_incident
from tests.fakes import RecordingLauncher

RERUN = {"task_id": "task-1", "models": ["inbox_emails"], "full_refresh": False}
NEEDS_APPROVAL = RERUN | {"full_refresh": True}

Client = Callable[..., Awaitable[AsyncClient]]


def url(incident_id: int, path: str = "") -> str:
    return f"/api/playbooks/incidents/{incident_id}/actions{path}"


async def ask(incident_id: int, requester: AsyncClient) -> dict[str, Any]:
    """An approval request for a full refresh (which needs approval)."""
    response = await requester.post(
        url(incident_id, "/approvals"), json={"action_type": "rerun_dbt", "params": NEEDS_APPROVAL}
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


# -- 401: no token, a bad one, a revoked one ----------------------------------------------


async def test_no_token_is_401_with_www_authenticate(strict_app: FastAPI) -> None:
    async with AsyncClient(transport=ASGITransport(app=strict_app), base_url="http://t") as http:
        missing = await http.get("/api/incidents")
        wrong_scheme = await http.get("/api/incidents", headers={"Authorization": "Basic eDp5"})
        unknown = await http.get("/api/incidents", headers=bearer("ivt_not-a-token"))
        health = await http.get("/api/health")

    for response in (missing, wrong_scheme, unknown):
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["error"]["code"] == "unauthorized"
    assert unknown.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert health.status_code == 200  # load balancers probe it without a token


async def test_a_revoked_token_stops_working(
    strict_app: FastAPI, as_role: Callable[[str, Role], Awaitable[AsyncClient]]
) -> None:
    admin = await as_role("admin@x.io", Role.ADMIN)
    viewer = await as_role("viewer@x.io", Role.VIEWER)
    assert (await viewer.get("/api/incidents")).status_code == 200
    tokens = (await admin.get("/api/tokens")).json()["tokens"]
    viewer_id = next(t["id"] for t in tokens if t["name"] == "viewer@x.io")

    revoked = await admin.post(f"/api/tokens/{viewer_id}/revoke")

    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    assert (await viewer.get("/api/incidents")).status_code == 401


async def test_tokens_are_stored_hashed_and_shown_once(
    as_role: Callable[[str, Role], Awaitable[AsyncClient]], db: Database
) -> None:
    admin = await as_role("admin@x.io", Role.ADMIN)

    created = await admin.post("/api/tokens", json={"name": "ci-bot", "role": "responder"})

    assert created.status_code == 201
    secret = created.json()["token"]
    listed = (await admin.get("/api/tokens")).json()["tokens"]
    assert all("token" not in t and "secret_hash" not in t for t in listed)
    assert secret not in str(listed)
    assert any(t["name"] == "ci-bot" and secret.startswith(t["prefix"]) for t in listed)


# -- approvals bound to the principal ----------------------------------------------------


async def test_approved_by_must_name_the_caller(
    as_role: Callable[[str, Role], Awaitable[AsyncClient]],
) -> None:
    approver = await as_role("ann@x.io", Role.APPROVER)
    responder = await as_role("rob@x.io", Role.RESPONDER)
    incident = await create_incident(approver)
    body = {"action_type": "rerun_dbt", "params": RERUN}

    forged = await approver.post(
        url(incident["id"], "/execute"), json=body | {"approved_by": "someone-else@x.io"}
    )
    not_an_approver = await responder.post(
        url(incident["id"], "/execute"), json=body | {"approved_by": "rob@x.io"}
    )

    assert forged.status_code == 403
    assert forged.json()["error"]["details"] == {
        "approved_by": "someone-else@x.io",
        "principal": "ann@x.io",
    }
    assert not_an_approver.status_code == 403
    assert not_an_approver.json()["error"]["details"]["required_role"] == "approver"


async def test_an_approver_alone_is_refused_where_a_second_person_is_required(
    as_role: Callable[[str, Role], Awaitable[AsyncClient]], launcher: RecordingLauncher
) -> None:
    approver = await as_role("ann@x.io", Role.APPROVER)
    incident = await create_incident(approver)

    alone = await approver.post(
        url(incident["id"], "/execute"),
        json={"action_type": "rerun_dbt", "params": NEEDS_APPROVAL, "approved_by": "ann@x.io"},
    )

    assert alone.status_code == 403
    assert alone.json()["error"]["details"]["separation_of_duties"] is True
    assert launcher.launches == []


async def test_a_request_approved_by_another_runs_exactly_its_params_once(
    as_role: Callable[[str, Role], Awaitable[AsyncClient]], launcher: RecordingLauncher
) -> None:
    responder = await as_role("rob@x.io", Role.RESPONDER)
    approver = await as_role("ann@x.io", Role.APPROVER)
    incident = await create_incident(responder)

    asked = await responder.post(
        url(incident["id"], "/approvals"),
        json={"action_type": "rerun_dbt", "params": NEEDS_APPROVAL, "reason": "stale inbox"},
    )
    request = asked.json()
    approve = url(incident["id"], f"/approvals/{request['id']}/approve")
    first, second = await asyncio.gather(
        approver.post(approve, json={"notes": "ok"}), approver.post(approve, json={})
    )
    after = (await responder.get(url(incident["id"], f"/approvals/{request['id']}"))).json()

    assert asked.status_code == 201, asked.text
    assert request["status"] == "pending"
    assert request["requested_by"] == "rob@x.io"
    assert request["plan"]["requires_approval"] is True
    assert request["plan"]["changes"]
    assert sorted([first.status_code, second.status_code]) in ([200, 200], [200, 409])
    winner = first if first.status_code == 200 else second
    action = winner.json()["action"]
    assert action["params"] == request["params"]
    assert action["approved_by"] == "ann@x.io"
    assert action["requested_by"] == "rob@x.io"
    assert len(launcher.launches) == 1  # once, however many approvals raced
    assert after["status"] == "approved"
    assert after["decided_by"] == "ann@x.io"
    assert after["action_id"] == action["id"]
    again = await approver.post(approve, json={})
    assert again.status_code == 409
    assert len(launcher.launches) == 1


async def test_the_requester_cannot_approve_their_own_request(
    as_role: Callable[[str, Role], Awaitable[AsyncClient]], launcher: RecordingLauncher
) -> None:
    approver = await as_role("ann@x.io", Role.APPROVER)
    incident = await create_incident(approver)
    request = await ask(incident["id"], approver)

    own = await approver.post(url(incident["id"], f"/approvals/{request['id']}/approve"))

    assert own.status_code == 403
    assert own.json()["error"]["details"]["separation_of_duties"] is True
    assert launcher.launches == []


async def test_an_expired_request_cannot_be_approved(
    as_role: Callable[[str, Role], Awaitable[AsyncClient]],
    db: Database,
    launcher: RecordingLauncher,
) -> None:
    responder = await as_role("rob@x.io", Role.RESPONDER)
    approver = await as_role("ann@x.io", Role.APPROVER)
    incident = await create_incident(responder)
    request = await ask(incident["id"], responder)
    async with transaction(db.writer) as session:
        await session.execute(
            update(ApprovalRequest)
            .where(ApprovalRequest.id == request["id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )

    shown = (await responder.get(url(incident["id"], f"/approvals/{request['id']}"))).json()
    late = await approver.post(url(incident["id"], f"/approvals/{request['id']}/approve"))

    async with transaction(db.reader) as session:
        stored = await session.get(ApprovalRequest, request["id"])
    assert shown["status"] == "expired"
    assert stored is not None
    assert stored.status == "expired"  # written, not only shown
    assert late.status_code == 409
    assert late.json()["error"]["details"]["status"] == "expired"
    assert launcher.launches == []


async def test_a_rejected_request_never_runs(
    as_role: Callable[[str, Role], Awaitable[AsyncClient]], launcher: RecordingLauncher
) -> None:
    responder = await as_role("rob@x.io", Role.RESPONDER)
    approver = await as_role("ann@x.io", Role.APPROVER)
    incident = await create_incident(responder)
    request = await ask(incident["id"], responder)

    rejected = await approver.post(
        url(incident["id"], f"/approvals/{request['id']}/reject"),
        json={"notes": "not during the freeze"},
    )
    approve = await approver.post(url(incident["id"], f"/approvals/{request['id']}/approve"))

    assert rejected.status_code == 200
    assert rejected.json()["approval"]["status"] == "rejected"
    assert rejected.json()["approval"]["decision_notes"] == "not during the freeze"
    assert approve.status_code == 409
    assert launcher.launches == []


async def test_asking_approval_for_what_needs_none_is_a_bad_request(
    as_role: Callable[[str, Role], Awaitable[AsyncClient]],
) -> None:
    responder = await as_role("rob@x.io", Role.RESPONDER)
    incident = await create_incident(responder)

    plain = await responder.post(
        url(incident["id"], "/approvals"), json={"action_type": "rerun_dbt", "params": RERUN}
    )
    both = await responder.post(
        url(incident["id"], "/approvals"), json={"action_type": "rerun_dbt", "rollback_of": 1}
    )

    assert plain.status_code == 400
    assert plain.json()["error"]["details"]["requires_approval"] is False
    assert both.status_code == 422


# -- the audit log ---------------------------------------------------------------------------


async def test_changes_are_audited_with_who_and_from_where(
    as_role: Callable[[str, Role], Awaitable[AsyncClient]],
) -> None:
    responder = await as_role("rob@x.io", Role.RESPONDER)
    admin = await as_role("admin@x.io", Role.ADMIN)
    incident = await create_incident(responder)
    await responder.post(
        f"/api/incidents/{incident['id']}/acknowledge",
        json={"acknowledged_by": "rob@x.io"},
        headers={"X-Request-ID": "req-1"},
    )
    await responder.get("/api/incidents")  # reads are not audited
    refused = await responder.get("/api/audit")

    entries = (await admin.get("/api/audit", params={"principal": "rob@x.io"})).json()["entries"]

    assert refused.status_code == 403
    assert [(e["method"], e["path"], e["status"]) for e in entries] == [
        ("POST", f"/api/incidents/{incident['id']}/acknowledge", 200),
        ("POST", "/api/incidents", 201),
    ]  # newest first
    assert entries[0]["principal"] == "rob@x.io"
    assert entries[0]["role"] == "responder"
    assert entries[0]["client"] == "127.0.0.1"
    assert entries[0]["request_id"] == "req-1"


async def test_a_rollback_that_needs_approval_goes_through_a_request_too(
    as_role: Callable[[str, Role], Awaitable[AsyncClient]],
    db: Database,
    launcher: RecordingLauncher,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = ACTIONS["rerun_dbt"]  # no rollback of its own; the engine path is the same for all
    monkeypatch.setitem(ACTIONS, "rerun_dbt", replace(spec, rollback_supported=True))
    responder = await as_role("rob@x.io", Role.RESPONDER)
    approver = await as_role("ann@x.io", Role.APPROVER)
    incident = await create_incident(responder)
    request = await ask(incident["id"], responder)
    original = (await approver.post(
        url(incident["id"], f"/approvals/{request['id']}/approve"))).json()["action"]  # fmt: skip
    async with transaction(db.writer) as session:
        await store_result(session, action_id=original["id"], result={"prior_state": {"v": 1}},
                           at=utcnow())  # fmt: skip
        for status in (ActionStatus.RUNNING, ActionStatus.SUCCESS):
            await advance_action(session, action_id=original["id"], status=status, at=utcnow())

    direct = await approver.post(url(incident["id"], f"/{original['id']}/rollback"),
                                 json={"approved_by": "ann@x.io"})  # fmt: skip
    asked = await responder.post(url(incident["id"], "/approvals"),
                                 json={"rollback_of": original["id"]})  # fmt: skip
    approved = await approver.post(url(incident["id"], f"/approvals/{asked.json()['id']}/approve"))

    assert direct.status_code == 403  # the original needed approval: so does its rollback
    assert asked.status_code == 201, asked.text
    assert approved.status_code == 200, approved.text
    rollback = approved.json()["action"]
    assert rollback["rollback_of"] == original["id"]
    assert rollback["approved_by"] == "ann@x.io"
    assert [launch.parameters["rollback"] for launch in launcher.launches] == [False, True]


async def test_a_claimed_request_cannot_be_rejected_and_keys_of_approvals_are_reserved(
    as_role: Callable[[str, Role], Awaitable[AsyncClient]], launcher: RecordingLauncher
) -> None:
    responder = await as_role("rob@x.io", Role.RESPONDER)
    approver = await as_role("ann@x.io", Role.APPROVER)
    incident = await create_incident(responder)
    request = await ask(incident["id"], responder)
    squatted = await responder.post(
        url(incident["id"], "/execute"),
        json={"action_type": "rerun_dbt", "params": RERUN},
        headers={"Idempotency-Key": f"approval-{request['id']}"},
    )

    approved = await approver.post(url(incident["id"], f"/approvals/{request['id']}/approve"))
    rejected = await approver.post(url(incident["id"], f"/approvals/{request['id']}/reject"))

    assert squatted.status_code == 422  # no client may pre-empt an approval's execution
    assert approved.status_code == 200
    assert approved.json()["action"]["params"] == NEEDS_APPROVAL | {"upstream": False, "threads": 4}
    assert rejected.status_code == 409
    assert len(launcher.launches) == 1


async def test_audit_times_without_an_offset_are_utc(
    as_role: Callable[[str, Role], Awaitable[AsyncClient]],
) -> None:
    admin = await as_role("admin@x.io", Role.ADMIN)

    response = await admin.get("/api/audit", params={"since": "2024-01-01T00:00:00"})

    assert response.status_code == 200


async def test_audit_times_are_date_times_not_numbers(
    as_role: Callable[[str, Role], Awaitable[AsyncClient]],
) -> None:
    admin = await as_role("admin@x.io", Role.ADMIN)

    response = await admin.get("/api/audit", params={"until": "0.5", "since": "1700000000"})

    assert response.status_code == 422  # the schema says date-time; no Unix times
    errors = response.json()["error"]["details"]["errors"]
    assert sorted(e["field"] for e in errors) == ["query.since", "query.until"]


async def test_who_did_it_defaults_to_the_caller_not_api(
    as_role: Callable[[str, Role], Awaitable[AsyncClient]],
) -> None:
    rita = await as_role("rita@x.io", Role.RESPONDER)
    body = {"kind": "invariant", "key": "INV_named", "severity": "sev3", "summary": "who"}
    incident = (await rita.post("/api/incidents", json=body)).json()
    await rita.post(f"/api/incidents/{incident['id']}/mitigate")
    await rita.post(f"/api/incidents/{incident['id']}/resolve", json={"actor": "pager-bot"})
    dry_run = await rita.post(url(incident["id"], "/dry-run"),
                              json={"action_type": "rerun_dbt", "params": RERUN})  # fmt: skip

    timeline = (await rita.get(f"/api/incidents/{incident['id']}/timeline")).json()["entries"]
    assert [(e["verb"], e["actor"]) for e in timeline] == [
        ("create", "rita@x.io"), ("mitigate", "rita@x.io"), ("resolve", "pager-bot"),
        ("dry_run", "rita@x.io"),
    ]  # fmt: skip
    history = (await rita.get(url(incident["id"], "/history"))).json()["actions"]
    assert dry_run.status_code == 200
    assert [a["requested_by"] for a in history] == ["rita@x.io"]
