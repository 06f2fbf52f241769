"""The console's server side: the page and its files, who am I, and the board's counts.
What the page does in a browser is tests/console (Playwright)."""

from collections.abc import Awaitable, Callable

import pytest
from httpx import AsyncClient

from models.enums import (
    ACTIVE_STATUSES,
    ActionStatus,
    IncidentKind,
    IncidentStatus,
    Role,
    Severity,
    SlaTimer,
)
from models.incident import TRANSITIONS
from tests.auth import TESTER
from tests.factories import create_incident, create_incident_in

AsRole = Callable[[str, Role], Awaitable[AsyncClient]]


async def test_the_page_and_its_files_are_served_with_a_strict_policy(client: AsyncClient) -> None:
    page = await client.get("/", headers={"Authorization": ""})  # the page itself is open
    script = await client.get("/console/console.js")
    style = await client.get("/console/console.css")
    missing = await client.get("/console/nothing.js")

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<script src="/console/console.js"' in page.text
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert "EventSource" in script.text
    assert style.status_code == 200
    assert style.headers["content-type"].startswith("text/css")
    assert missing.status_code == 404
    assert "x-ratelimit-limit" not in page.headers  # static files are not counted


async def test_the_console_is_not_in_the_api_schema(client: AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]

    assert "/" not in paths
    assert "/api/me" in paths
    assert "/api/incidents/counts" in paths


@pytest.mark.parametrize(
    ("role", "may"),
    [
        (Role.VIEWER, (False, False, False)),
        (Role.RESPONDER, (True, False, False)),
        (Role.APPROVER, (True, True, False)),
        (Role.ADMIN, (True, True, True)),
    ],
)
async def test_me_names_the_caller_and_what_its_role_may_do(
    role: Role, may: tuple[bool, bool, bool], as_role: AsRole
) -> None:
    caller = await as_role(f"{role}@x.io", role)

    me = (await caller.get("/api/me")).json()

    assert (me["name"], me["role"]) == (f"{role}@x.io", role.value)
    assert (me["may_transition"], me["may_approve"], me["may_admin"]) == may


async def test_me_sends_the_state_machine_and_vocabularies_the_console_uses(
    as_role: AsRole,
) -> None:
    viewer = await as_role("viewer@x.io", Role.VIEWER)  # the least role reads them too

    me = (await viewer.get("/api/me")).json()

    assert me["transitions"] == {
        verb.value: {
            "from": [s.value for s in IncidentStatus if s in sources],
            "to": to.value if to is not None else None,
        }
        for verb, (sources, to) in TRANSITIONS.items()
    }
    assert me["statuses"] == [s.value for s in IncidentStatus]
    assert me["severities"] == ["sev1", "sev2", "sev3", "sev4"] == [s.value for s in Severity]
    assert me["active_statuses"] == ["open", "acknowledged", "mitigated"] == list(ACTIVE_STATUSES)
    assert me["kinds"] == [k.value for k in IncidentKind]
    assert me["sla_timers"] == ["acknowledge", "mitigate", "resolve"] == list(SlaTimer)
    assert set(me["final_action_statuses"]) == {s.value for s in ActionStatus if s.is_terminal}


async def test_me_without_a_token_is_401(client: AsyncClient) -> None:
    response = await client.get("/api/me", headers={"Authorization": ""})

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


async def test_counts_cover_every_status_and_follow_the_filters(client: AsyncClient) -> None:
    await create_incident(client, key="INV_c1", severity="sev1")
    await create_incident(client, key="INV_c2", severity="sev2")
    await create_incident_in(client, "acknowledged", key="INV_c3", severity="sev1")
    await create_incident_in(client, "closed", key="BUDGET_c4", kind="budget", severity="sev1")

    everything = (await client.get("/api/incidents/counts")).json()
    sev1 = (await client.get("/api/incidents/counts", params={"severity": "sev1"})).json()
    budget = (await client.get("/api/incidents/counts", params={"kind": "budget"})).json()
    bad = await client.get("/api/incidents/counts", params={"severity": "sev9"})

    assert everything == {
        "by_status": {"open": 2, "acknowledged": 1, "mitigated": 0, "resolved": 0, "closed": 1},
        "total": 4,
    }
    assert sev1["by_status"] | {} == {
        "open": 1, "acknowledged": 1, "mitigated": 0, "resolved": 0, "closed": 1,
    }  # fmt: skip
    assert budget["total"] == 1
    assert budget["by_status"]["closed"] == 1
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "validation_error"


async def test_the_default_client_is_the_tester(client: AsyncClient) -> None:
    assert (await client.get("/api/me")).json()["name"] == TESTER
