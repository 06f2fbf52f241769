"""The Incidents API, endpoint by endpoint, as the contract documents it."""

from datetime import datetime

import pytest
from httpx import AsyncClient
from sqlalchemy import select

from api.schemas.incidents import IncidentList, IncidentRead
from models.db import Database
from models.event import Event
from tests.auth import TESTER
from tests.factories import create_incident, create_incident_in, incident_body

CONTRACT_FIELDS = [
    "id", "kind", "key", "severity", "status", "summary", "details", "playbooks", "issue_url",
    "metadata", "assigned_to", "acknowledged_by", "acknowledged_at", "mitigated_at",
    "resolved_at", "closed_at", "created_at", "updated_at",
]  # fmt: skip


def assert_utc_iso(value: str) -> None:
    assert value.endswith("Z") or value.endswith("+00:00"), value
    assert datetime.fromisoformat(value).utcoffset() is not None


async def test_create_returns_201_with_every_contract_field(client: AsyncClient) -> None:
    body = incident_body(key="INV_data_freshness_inbox", severity="sev1",
                         issue_url="https://github.com/org/repo/issues/456")  # fmt: skip
    response = await client.post("/api/incidents", json=body)

    assert response.status_code == 201
    incident = response.json()
    assert list(incident)[: len(CONTRACT_FIELDS)] == CONTRACT_FIELDS
    assert incident["status"] == "open"
    assert incident["key"] == "INV_data_freshness_inbox"
    assert incident["details"] == body["details"]
    assert incident["playbooks"] == ["rerun_eval", "rerun_dbt"]
    assert incident["metadata"] == {"agent": "inbox.triage"}
    assert incident["issue_url"] == "https://github.com/org/repo/issues/456"
    assert incident["occurrence_count"] == 1
    assert incident["acknowledged_at"] is None
    assert_utc_iso(incident["created_at"])
    assert incident["created_at"] == incident["updated_at"]


async def test_get_returns_the_stored_incident(client: AsyncClient) -> None:
    created = await create_incident(client)

    response = await client.get(f"/api/incidents/{created['id']}")

    assert response.status_code == 200
    assert response.json() == created


async def test_get_unknown_incident_is_404_in_the_envelope(client: AsyncClient) -> None:
    response = await client.get("/api/incidents/999999")

    assert response.status_code == 404
    assert response.json() == {
        "error": {
            "code": "not_found",
            "message": "Incident 999999 not found",
            "details": {"incident_id": 999999},
        }
    }


async def test_list_is_newest_first_with_total_and_paging(client: AsyncClient) -> None:
    ids = [(await create_incident(client))["id"] for _ in range(5)]

    page = (await client.get("/api/incidents", params={"limit": 2, "offset": 1})).json()

    assert page["total"] == 5
    assert page["limit"] == 2
    assert page["offset"] == 1
    assert [i["id"] for i in page["incidents"]] == list(reversed(ids))[1:3]


DETAILS = {"invariant": {"id": "x", "threshold": 1, "actual": 2}}
METADATA = {"agent": "a", "nested": {"n": [1, 2.5, None]}}


async def test_a_listed_incident_is_exactly_what_reading_it_returns(client: AsyncClient) -> None:
    # the list writes its JSON straight from rows (api/schemas/incidents.incident_list_json):
    # it must say what the model says, field for field, in every status and with every timer
    for status, severity in [("open", "sev1"), ("acknowledged", "sev2"), ("mitigated", "sev3"),
                             ("resolved", "sev4"), ("closed", "sev1")]:  # fmt: skip
        await create_incident_in(client, status, severity=severity, details=DETAILS,
                                 metadata=METADATA)  # fmt: skip
    listed = await client.get("/api/incidents")

    assert listed.headers["content-type"] == "application/json"
    assert list(listed.json()) == list(IncidentList.model_fields)
    assert len(listed.json()["incidents"]) == 5
    for incident in listed.json()["incidents"]:
        assert list(incident) == list(IncidentRead.model_fields)
        assert incident == (await client.get(f"/api/incidents/{incident['id']}")).json()


async def test_list_defaults_to_limit_50(client: AsyncClient) -> None:
    await create_incident(client)

    page = (await client.get("/api/incidents")).json()

    assert (page["total"], page["limit"], page["offset"]) == (1, 50, 0)


async def test_list_filters_by_status_severity_and_kind(client: AsyncClient) -> None:
    target = await create_incident_in(client, "acknowledged", severity="sev1", kind="budget")
    await create_incident_in(client, "acknowledged", severity="sev2", kind="budget")
    await create_incident_in(client, "open", severity="sev1", kind="budget")
    await create_incident_in(client, "acknowledged", severity="sev1", kind="planner")

    response = await client.get(
        "/api/incidents", params={"status": "acknowledged", "severity": "sev1", "kind": "budget"}
    )

    page = response.json()
    assert page["total"] == 1
    assert [i["id"] for i in page["incidents"]] == [target["id"]]


async def test_list_offset_past_the_end_is_an_empty_page(client: AsyncClient) -> None:
    await create_incident(client)

    page = (await client.get("/api/incidents", params={"offset": 10})).json()

    assert page["incidents"] == []
    assert page["total"] == 1


async def test_acknowledge_returns_the_contract_shape(client: AsyncClient) -> None:
    incident = await create_incident(client)

    response = await client.post(
        f"/api/incidents/{incident['id']}/acknowledge",
        json={"acknowledged_by": "engineer@example.com", "notes": "Investigating root cause"},
    )

    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["id", "status", "acknowledged_by", "acknowledged_at", "updated_at"]
    assert body["status"] == "acknowledged"
    assert body["acknowledged_by"] == "engineer@example.com"
    assert_utc_iso(body["acknowledged_at"])
    assert body["updated_at"] == body["acknowledged_at"]


async def test_an_acknowledge_without_a_name_names_the_callers_token(
    client: AsyncClient,
) -> None:
    incident = await create_incident(client)

    empty = await client.post(f"/api/incidents/{incident['id']}/acknowledge", json={})
    other = await create_incident(client, key="ACK_WITHOUT_BODY")
    bodiless = await client.post(f"/api/incidents/{other['id']}/acknowledge")

    assert empty.json()["acknowledged_by"] == TESTER
    assert bodiless.json()["acknowledged_by"] == TESTER
    timeline = (await client.get(f"/api/incidents/{incident['id']}/timeline")).json()["entries"]
    assert timeline[-1]["actor"] == TESTER


@pytest.mark.parametrize(
    ("verb", "start", "status", "stamp"),
    [
        ("mitigate", "acknowledged", "mitigated", "mitigated_at"),
        ("resolve", "mitigated", "resolved", "resolved_at"),
        ("close", "resolved", "closed", "closed_at"),
    ],
)
async def test_lifecycle_verbs_return_the_updated_incident(
    client: AsyncClient, verb: str, start: str, status: str, stamp: str
) -> None:
    incident = await create_incident_in(client, start)

    response = await client.post(
        f"/api/incidents/{incident['id']}/{verb}", json={"notes": "Executed rerun_dbt playbook"}
    )

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == status
    assert body[stamp] is not None
    assert body["updated_at"] == body[stamp]
    assert body == (await client.get(f"/api/incidents/{incident['id']}")).json()


async def test_lifecycle_verbs_accept_an_empty_body(client: AsyncClient) -> None:
    incident = await create_incident(client)

    response = await client.post(f"/api/incidents/{incident['id']}/resolve")

    assert response.status_code == 200
    assert response.json()["status"] == "resolved"


async def test_assign_and_unassign(client: AsyncClient) -> None:
    incident = await create_incident(client)
    url = f"/api/incidents/{incident['id']}/assign"

    assigned = await client.post(url, json={"assigned_to": "engineer@example.com"})
    unassigned = await client.post(url, json={"assigned_to": None})

    assert assigned.status_code == 200
    assert assigned.json()["assigned_to"] == "engineer@example.com"
    assert assigned.json()["status"] == "open"
    assert unassigned.json()["assigned_to"] is None


async def test_reopen_counts_and_clears_resolution(client: AsyncClient) -> None:
    incident = await create_incident_in(client, "resolved")

    response = await client.post(f"/api/incidents/{incident['id']}/reopen", json={"notes": "back"})

    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "open"
    assert body["reopen_count"] == 1
    assert body["resolved_at"] is None


async def test_reopen_is_refused_while_another_incident_holds_the_key(
    client: AsyncClient,
) -> None:
    old = await create_incident_in(client, "resolved", key="INV_same")
    newer = await create_incident(client, key="INV_same")

    response = await client.post(f"/api/incidents/{old['id']}/reopen")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"
    assert (await client.get(f"/api/incidents/{old['id']}")).json()["status"] == "resolved"
    assert (await client.get(f"/api/incidents/{newer['id']}")).json()["status"] == "open"


async def test_repeat_alert_returns_200_and_counts_an_occurrence(client: AsyncClient) -> None:
    first = await create_incident(client, key="INV_flappy", severity="sev3")

    repeat = await client.post(
        "/api/incidents", json=incident_body(key="INV_flappy", severity="sev3")
    )

    assert repeat.status_code == 200
    body = repeat.json()
    assert body["id"] == first["id"]
    assert body["occurrence_count"] == 2
    assert body["severity"] == "sev3"
    assert body["last_seen_at"] > first["last_seen_at"]


async def test_repeat_with_higher_severity_escalates(client: AsyncClient) -> None:
    first = await create_incident(client, key="INV_worse", severity="sev3")

    repeat = await client.post(
        "/api/incidents", json=incident_body(key="INV_worse", severity="sev1")
    )

    assert repeat.json()["id"] == first["id"]
    assert repeat.json()["severity"] == "sev1"


async def test_same_key_after_resolution_opens_a_new_incident(client: AsyncClient) -> None:
    old = await create_incident_in(client, "resolved", key="INV_again")

    response = await client.post("/api/incidents", json=incident_body(key="INV_again"))

    assert response.status_code == 201
    assert response.json()["id"] != old["id"]


async def test_same_key_different_kind_is_a_different_incident(client: AsyncClient) -> None:
    a = await create_incident(client, key="SHARED", kind="invariant")
    b = await create_incident(client, key="SHARED", kind="budget")

    assert a["id"] != b["id"]


async def test_per_key_cap_refuses_the_fourth_incident_within_the_hour(
    client: AsyncClient,
) -> None:
    for _ in range(3):
        await create_incident_in(client, "resolved", key="INV_flood")

    response = await client.post("/api/incidents", json=incident_body(key="INV_flood"))

    assert response.status_code == 429
    error = response.json()["error"]
    assert error["code"] == "rate_limited"
    assert error["details"]["limit"] == 3
    assert 3500 < int(response.headers["Retry-After"]) <= 3600
    page = (await client.get("/api/incidents")).json()
    assert page["total"] == 3


async def test_timeline_records_every_change_in_order(client: AsyncClient) -> None:
    incident = await create_incident_in(client, "closed")

    response = await client.get(f"/api/incidents/{incident['id']}/timeline")

    entries = response.json()["entries"]
    assert [(e["verb"], e["from_status"], e["to_status"]) for e in entries] == [
        ("create", None, "open"),
        ("acknowledge", "open", "acknowledged"),
        ("mitigate", "acknowledged", "mitigated"),
        ("resolve", "mitigated", "resolved"),
        ("close", "resolved", "closed"),
    ]
    assert entries[1]["actor"] == "engineer@example.com"
    assert entries[1]["notes"] == "Investigating"


async def test_timeline_of_unknown_incident_is_404(client: AsyncClient) -> None:
    response = await client.get("/api/incidents/424242/timeline")

    assert response.status_code == 404


async def test_every_change_writes_one_event_in_the_contract_shape(
    client: AsyncClient, db: Database
) -> None:
    incident = await create_incident(client, severity="sev1")
    await client.post(
        f"/api/incidents/{incident['id']}/acknowledge",
        json={"acknowledged_by": "engineer@example.com"},
    )
    await client.post("/api/incidents", json=incident_body(key=incident["key"]))

    async with db.reader() as session:
        events = list(await session.scalars(select(Event).order_by(Event.id)))

    assert [e.type for e in events] == ["incident_created", "incident_updated", "incident_updated"]
    assert all(e.incident_id == incident["id"] for e in events)
    created, acknowledged, recurred = (e.payload for e in events)
    assert created == {
        "id": incident["id"],
        "kind": "invariant",
        "key": incident["key"],
        "severity": "sev1",
        "status": "open",
        "summary": incident["summary"],
        "created_at": incident["created_at"],
    }
    assert acknowledged["change"] == "acknowledged"
    assert acknowledged["status"] == "acknowledged"
    assert acknowledged["acknowledged_by"] == "engineer@example.com"
    assert recurred["change"] == "recurred"
    assert recurred["occurrence_count"] == 2


async def test_a_refused_change_writes_nothing(client: AsyncClient, db: Database) -> None:
    incident = await create_incident(client)
    before = (await client.get(f"/api/incidents/{incident['id']}/timeline")).json()

    refused = await client.post(f"/api/incidents/{incident['id']}/close")

    assert refused.status_code == 400
    after = (await client.get(f"/api/incidents/{incident['id']}/timeline")).json()
    assert after == before
    assert (await client.get(f"/api/incidents/{incident['id']}")).json() == incident
    async with db.reader() as session:
        assert len(list(await session.scalars(select(Event)))) == 1
