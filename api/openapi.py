"""The OpenAPI document tells the truth about errors: every operation lists the error statuses
it can answer, each with the contract's envelope (`api/errors.py`) as its schema, in place of
FastAPI's default 422 `HTTPValidationError` (which no answer of this API ever has).

Which statuses: 400 (a malformed URL or body, a request that cannot be done), 500 and 503 (the
database out of reach; on playbook actions also Prefect or the dbt manifest) everywhere; 401 and
403 where a token is needed; 404 where the path names a resource; 413 where a body may be sent;
422 where there is anything to validate; 429 where the rate limit counts; 409 on the operations
listed below, whose services raise `Conflict`.
"""

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

from api.auth import READ_METHODS
from api.errors import HTTP_CODES
from api.middleware import UNLIMITED_PATHS

_INCIDENT = "/api/incidents/{incident_id}"
_ACTIONS = "/api/playbooks/incidents/{incident_id}/actions"
_APPROVAL = f"{_ACTIONS}/approvals/{{approval_id}}"
_VERBS = ("acknowledge", "mitigate", "resolve", "close", "reopen", "assign")

# 409 `conflict`: another active incident holds the key (models/services/incidents.py), or the
# approval was decided already (playbooks/approvals.py)
CONFLICTS = frozenset(
    ("POST", path)
    for path in (
        "/api/incidents",
        *(f"{_INCIDENT}/{verb}" for verb in _VERBS),
        f"{_APPROVAL}/approve",
        f"{_APPROVAL}/reject",
    )
)
# operations that answer some errors in a shape of their own (PagerDuty's, for its senders): the
# response the route declares for those statuses is kept
OWN_ERRORS = {("POST", "/api/integrations/pagerduty/v2/enqueue"): frozenset({400, 401, 403})}
DESCRIPTIONS = {
    400: "Bad request: a body that is not JSON (malformed, or not sent as application/json), a"
    " malformed URL, or a request that cannot be done as asked",
    401: "No token, or an unknown or revoked one",
    403: "The token's role, or the approval rules, do not allow it",
    404: "The resource in the path does not exist",
    409: "Conflicts with the current state (decided already, key taken)",
    413: "Request body larger than INTERVENE_MAX_BODY_BYTES",
    422: "Validation failed; `details.errors` names each field",
    429: "Rate limited; Retry-After says when to try again",
    500: "Internal error (logged; the body reveals nothing)",
    503: "Something the request needs is unreachable: the database (anywhere), Prefect or the dbt"
    " manifest (playbook actions); Retry-After says when to try again",
}
HEADERS = {
    401: {"WWW-Authenticate": 'Bearer, with error="invalid_token" for a bad token'},
    429: {"Retry-After": "Seconds until the limit frees up"},
    503: {"Retry-After": "Seconds to wait before trying again"},
}


class ErrorBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(description="Machine-readable: not_found, validation_error, forbidden, ...")
    message: str = Field(description="For people")
    details: dict[str, Any] = Field(description="What the error is about; {} when nothing")


class Error(BaseModel):
    """The one error envelope."""

    model_config = ConfigDict(extra="forbid")

    error: ErrorBody


class FieldError(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: str = Field(description="Where, dotted: body.params.models, query.limit")
    message: str
    type: str | None = Field(description="pydantic's error type")


class ValidationDetails(BaseModel):
    model_config = ConfigDict(extra="forbid")

    errors: list[FieldError]


class ValidationErrorBody(ErrorBody):
    details: ValidationDetails  # type: ignore[assignment]


class ValidationFailed(BaseModel):
    """The error envelope of a 422: `details.errors` lists the offending fields."""

    model_config = ConfigDict(extra="forbid")

    error: ValidationErrorBody


def _schemas() -> dict[str, Any]:
    found: dict[str, Any] = {}
    for model in (Error, ValidationFailed):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        found.update(schema.pop("$defs", {}))
        found[model.__name__] = schema
    return found


def _response(status: int, existing: dict[str, Any]) -> dict[str, Any]:
    """The response object of an error `status`; a description the route gave is kept."""
    model = "ValidationFailed" if status == 422 else "Error"
    content: dict[str, Any] = {"schema": {"$ref": f"#/components/schemas/{model}"}}
    if status != 422:  # a 422's details name the fields: no one example fits
        content["example"] = {
            "error": {
                "code": HTTP_CODES[status],
                "message": HTTPStatus(status).phrase,
                "details": {},
            }
        }
    own = existing.get("description") if status != 422 else None  # FastAPI's 422 is not ours
    response: dict[str, Any] = {
        "description": own or DESCRIPTIONS[status],
        "content": {"application/json": content},
    }
    if status in HEADERS:
        response["headers"] = {
            name: {"description": text, "required": True, "schema": {"type": "string"}}
            for name, text in HEADERS[status].items()
        }
    return response


def error_statuses(method: str, path: str, operation: dict[str, Any]) -> list[int]:
    """The error statuses this operation can answer."""
    responses = operation.get("responses", {})
    statuses = {400, 500, 503}
    if operation.get("security"):
        statuses |= {401, 403}
    if "{" in path:
        statuses.add(404)
    if method not in READ_METHODS:
        statuses.add(413)
    if operation.get("parameters") or operation.get("requestBody") or "422" in responses:
        statuses.add(422)
    if path not in UNLIMITED_PATHS:
        statuses.add(429)
    if (method, path) in CONFLICTS:
        statuses.add(409)
    return sorted(statuses)


def with_errors(document: dict[str, Any]) -> dict[str, Any]:
    """`document` with every operation's error responses declared (idempotent)."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)  # FastAPI's, replaced
    schemas.update(_schemas())
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            own = OWN_ERRORS.get((method.upper(), path), frozenset())
            for status in error_statuses(method.upper(), path, operation):
                if status in own and str(status) in responses:
                    continue
                responses[str(status)] = _response(status, responses.get(str(status), {}))
            operation["responses"] = dict(sorted(responses.items()))
    return document


def install_openapi(app: FastAPI) -> None:
    """Serve the document with its errors declared (FastAPI's `app.openapi` hook)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        return with_errors(generate())

    app.openapi = openapi  # type: ignore[method-assign]
