"""The OpenAPI document declares the errors the API answers, with the envelope as their schema
(so schemathesis, tests/api/test_fuzz.py, checks every error body too)."""

import json
from typing import Any

from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from api.openapi import CONFLICTS, OWN_ERRORS, Error, ValidationFailed


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m.upper(), p, op) for p, ops in document["paths"].items() for m, op in ops.items()]


async def test_every_operation_declares_its_errors_in_the_envelope(client: AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()

    assert "HTTPValidationError" not in json.dumps(document)  # FastAPI's, never answered
    for method, path, operation in operations(document):
        errors = {int(s): r for s, r in operation["responses"].items() if int(s) >= 400}
        expected = {400, 500, 503} | ({401, 403} if operation.get("security") else set())
        expected |= {404} if "{" in path else set()
        expected |= {413} if method != "GET" else set()
        assert expected <= set(errors), (method, path, sorted(errors))
        own = OWN_ERRORS.get((method, path), frozenset())
        for status, response in errors.items():
            schema = response["content"]["application/json"]["schema"]["$ref"]
            name = "ValidationFailed" if status == 422 else "Error"
            if status in own:  # PagerDuty's own shape, for its senders
                name = "PagerDutyRefused"
            assert schema == f"#/components/schemas/{name}", (method, path, status)
    unauthorized = document["paths"]["/api/incidents"]["get"]["responses"]["401"]
    assert unauthorized["headers"]["WWW-Authenticate"]["required"] is True
    unavailable = document["paths"]["/api/incidents"]["get"]["responses"]["503"]
    assert unavailable["headers"]["Retry-After"]["required"] is True


async def test_what_errors_look_like_is_what_the_document_declares(
    app: FastAPI, client: AsyncClient
) -> None:
    missing = await client.get("/api/incidents/999999")
    invalid = await client.get("/api/incidents", params={"limit": 0, "severity": "sev9"})
    malformed = await client.post("/api/incidents", content=b"{",
                                  headers={"Content-Type": "application/json"})  # fmt: skip
    document = (await client.get("/openapi.json")).json()
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as anonymous:
        unsigned = await anonymous.get("/api/incidents")

    assert Error.model_validate(missing.json()).error.code == "not_found"
    assert Error.model_validate(unsigned.json()).error.code == "unauthorized"
    assert Error.model_validate(malformed.json()).error.code == "bad_request"
    assert "400" in document["paths"]["/api/incidents"]["post"]["responses"]
    fields = ValidationFailed.model_validate(invalid.json()).error.details.errors
    assert sorted(f.field for f in fields) == ["query.limit", "query.severity"]


def test_the_conflict_list_names_operations_that_exist(app: FastAPI) -> None:
    served = {(method, path) for method, path, _ in operations(app.openapi())}

    assert CONFLICTS - served == set()
