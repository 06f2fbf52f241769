"""Every error the contract names comes back in the one envelope, never as a bare 500."""

import pytest
from httpx import AsyncClient

from tests.factories import create_incident


def assert_envelope(response: object, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return dict(body["error"])


async def test_unknown_route_is_404(client: AsyncClient) -> None:
    error = assert_envelope(await client.get("/api/nothing-here"), 404, "not_found")
    assert error["message"] == "No route for GET /api/nothing-here"


async def test_wrong_method_is_405(client: AsyncClient) -> None:
    response = await client.delete("/api/incidents")
    assert_envelope(response, 405, "method_not_allowed")
    assert "GET" in response.headers["allow"]


async def test_malformed_json_is_400_naming_the_body(client: AsyncClient) -> None:
    """The contract's error table: an invalid request format is 400 `bad_request`."""
    incident = await create_incident(client)

    response = await client.post(
        f"/api/incidents/{incident['id']}/acknowledge",
        content=b'{"acknowledged_by": ',
        headers={"content-type": "application/json"},
    )

    error = assert_envelope(response, 400, "bad_request")
    assert error["details"] == {
        "errors": [
            {"field": "body", "message": "Request body is not valid JSON", "type": "json_invalid"}
        ]
    }
    assert (await client.get(f"/api/incidents/{incident['id']}")).json() == incident


@pytest.mark.parametrize(
    "headers",
    [
        {},  # no Content-Type at all
        {"content-type": "application/x-www-form-urlencoded"},
        {"content-type": "text/plain"},
        {"content-type": "multipart/form-data; boundary=x"},
    ],
)
async def test_a_body_not_sent_as_json_is_400(client: AsyncClient, headers: dict[str, str]) -> None:
    incident = await create_incident(client)

    acknowledged = await client.post(
        f"/api/incidents/{incident['id']}/acknowledge", content=b"acknowledged_by=me",
        headers=headers,
    )  # fmt: skip
    created = await client.post("/api/incidents", content=b'{"kind": "invariant"}', headers=headers)

    for response in (acknowledged, created):
        error = assert_envelope(response, 400, "bad_request")
        assert "application/json" in str(error["message"])
        assert [e["field"] for e in error["details"]["errors"]] == ["body"]  # type: ignore[index]
    assert (await client.get(f"/api/incidents/{incident['id']}")).json() == incident
    assert (await client.get("/api/incidents")).json()["total"] == 1


@pytest.mark.parametrize("body", [b"[]", b'"acknowledged"', b"42", b'{"acknowledged_by": 42}'])
async def test_well_formed_json_of_the_wrong_shape_stays_422(
    client: AsyncClient, body: bytes
) -> None:
    incident = await create_incident(client)

    response = await client.post(
        f"/api/incidents/{incident['id']}/acknowledge", content=body,
        headers={"content-type": "application/json"},
    )  # fmt: skip

    assert_envelope(response, 422, "validation_error")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "query.limit"),
        ({"limit": 101}, "query.limit"),
        ({"limit": "ten"}, "query.limit"),
        ({"offset": -1}, "query.offset"),
        ({"status": "exploded"}, "query.status"),
        ({"severity": "sev9"}, "query.severity"),
        ({"kind": "vibes"}, "query.kind"),
    ],
)
async def test_bad_query_values_are_422_naming_the_field(
    client: AsyncClient, params: dict[str, object], field: str
) -> None:
    error = assert_envelope(
        await client.get("/api/incidents", params=params), 422, "validation_error"
    )
    assert [e["field"] for e in error["details"]["errors"]] == [field]  # type: ignore[index]


@pytest.mark.parametrize("incident_id", ["abc", "0", "-3", str(2**63)])
async def test_bad_incident_ids_are_422(client: AsyncClient, incident_id: str) -> None:
    response = await client.get(f"/api/incidents/{incident_id}")
    error = assert_envelope(response, 422, "validation_error")
    assert error["details"]["errors"][0]["field"] == "path.incident_id"  # type: ignore[index]


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"acknowledged_by": ""}, ["body.acknowledged_by"]),
        ({"acknowledged_by": "   "}, ["body.acknowledged_by"]),
        ({"acknowledged_by": 42}, ["body.acknowledged_by"]),
        ({"acknowledged_by": "a@b.c", "notes": ["x"]}, ["body.notes"]),
        ({"acknowledged_by": "a@b.c", "ackd": True}, ["body.ackd"]),
    ],
)
async def test_bad_acknowledge_bodies_are_422_and_change_nothing(
    client: AsyncClient, body: dict[str, object], fields: list[str]
) -> None:
    incident = await create_incident(client)

    response = await client.post(f"/api/incidents/{incident['id']}/acknowledge", json=body)

    error = assert_envelope(response, 422, "validation_error")
    assert [e["field"] for e in error["details"]["errors"]] == fields  # type: ignore[index]
    assert (await client.get(f"/api/incidents/{incident['id']}")).json() == incident


async def test_unknown_incident_on_a_verb_is_404(client: AsyncClient) -> None:
    response = await client.post(
        "/api/incidents/777777/acknowledge", json={"acknowledged_by": "a@b.c"}
    )
    assert_envelope(response, 404, "not_found")


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"kind": "weather"}, "body.kind"),
        ({"severity": "sev0"}, "body.severity"),
        ({"summary": ""}, "body.summary"),
        ({"key": "has spaces"}, "body.key"),
        ({"key": "x" * 201}, "body.key"),
        ({"details": "not an object"}, "body.details"),
        ({"playbooks": ["rm -rf /"]}, "body.playbooks.0"),
        ({"issue_url": "javascript:alert(1)"}, "body.issue_url"),
    ],
)
async def test_bad_alerts_are_422_and_store_nothing(
    client: AsyncClient, override: dict[str, object], field: str
) -> None:
    body = {"kind": "invariant", "key": "INV_x", "severity": "sev2", "summary": "s"} | override

    response = await client.post("/api/incidents", json=body)

    error = assert_envelope(response, 422, "validation_error")
    assert field in [e["field"] for e in error["details"]["errors"]]  # type: ignore[index]
    assert (await client.get("/api/incidents")).json()["total"] == 0


async def test_unexpected_failure_is_500_and_leaks_nothing(
    failing_client: AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    response = await failing_client.get("/api/explode")

    error = assert_envelope(response, 500, "internal_error")
    assert "hunter2" not in response.text
    assert "Traceback" not in response.text
    assert error == {"code": "internal_error", "message": "Internal server error", "details": {}}
    assert any("unhandled error on GET /api/explode" in r.message for r in caplog.records)
