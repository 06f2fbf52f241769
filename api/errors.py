"""The one error envelope, `{"error": {"code", "message", "details"}}`, for every failure.

Domain errors map to their status here; request validation is 422 `validation_error` with
`details.errors` naming each offending field, but a body that is not JSON at all (malformed, or
not sent as application/json) is an invalid request format, 400 `bad_request`, as the contract's
error table has it; unknown routes and methods are 404/405 (a 405's `Allow` names every method
of the path: api/methods.py); a database that cannot be reached (`models.db.unreachable`) is 503
`unavailable` with Retry-After, like every 503; anything unexpected is a logged 500
`internal_error` whose body reveals nothing.
"""

import json
import logging
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from asgi_correlation_id import correlation_id
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException

from api.headers import answer_headers, incident_quota_headers
from api.methods import allowed
from models.db import unreachable
from models.errors import (
    BadRequest,
    Conflict,
    DomainError,
    Forbidden,
    InvalidParams,
    NotFound,
    RateLimited,
    Unauthorized,
    Unavailable,
)

log = logging.getLogger("intervene.api")

DOMAIN_ERRORS: dict[type[DomainError], tuple[int, str]] = {
    Unauthorized: (401, "unauthorized"),
    NotFound: (404, "not_found"),
    BadRequest: (400, "bad_request"),
    Forbidden: (403, "forbidden"),
    Conflict: (409, "conflict"),
    RateLimited: (429, "rate_limited"),
    Unavailable: (503, "unavailable"),
}

HTTP_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
    504: "timeout",
}


RETRY_UNAVAILABLE_SECONDS = 5  # Retry-After of every 503: what it waits for is not ours to time


def database_unavailable(dialect: str, error: BaseException) -> JSONResponse:
    """503 for a database that cannot be reached: naming the kind of error, never its text
    (which can hold the host, the user, the path)."""
    cause = getattr(error, "orig", None) or error
    details = {"database": {"status": "error", "dialect": dialect, "error": type(cause).__name__}}
    return error_response(
        503,
        "unavailable",
        "Database unreachable; try again shortly",
        details,
        {"Retry-After": str(RETRY_UNAVAILABLE_SECONDS)},
    )


def rate_limit_headers(exc: RateLimited) -> dict[str, str]:
    headers = {"Retry-After": str(exc.retry_after)}
    if exc.limit == "incident_actions":  # X-RateLimit-* stay the address's (the Gate's)
        headers |= incident_quota_headers(exc.details["limit"], 0, exc.details["reset_at"])
    return headers


def envelope(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def envelope_bytes(code: str, message: str, details: dict[str, Any] | None = None) -> bytes:
    """The envelope as an answer's body, for those sent below FastAPI (the Gate's refusals,
    api/server.py's answer to a request that is not HTTP)."""
    return json.dumps(envelope(code, message, details)).encode()


def error_response(
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(envelope(code, message, details), status_code=status, headers=headers)


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    status, code = next(
        (pair for cls, pair in DOMAIN_ERRORS.items() if isinstance(exc, cls)),
        (400, "bad_request"),
    )
    headers = None
    if isinstance(exc, RateLimited):
        headers = rate_limit_headers(exc)
        if (metrics := getattr(request.app.state, "metrics", None)) is not None:
            metrics.refused(exc.limit)
    elif isinstance(exc, Unavailable):
        headers = {"Retry-After": str(RETRY_UNAVAILABLE_SECONDS)}
    elif isinstance(exc, Unauthorized):
        error = exc.details.get("error")
        headers = {"WWW-Authenticate": f'Bearer error="{error}"' if error else "Bearer"}
    return error_response(status, code, exc.message, exc.details, headers)


NOT_JSON = "Request body must be a JSON object sent with Content-Type: application/json"


def _not_json(exc: RequestValidationError) -> bool:
    """The body could not be read as JSON: malformed, or sent as something else (FastAPI then
    hands the raw bytes to validation)."""
    return isinstance(exc.body, bytes | bytearray) or any(
        error.get("type") == "json_invalid" for error in exc.errors()
    )


def _field_errors(refused: Sequence[Any]) -> list[dict[str, Any]]:
    errors = []
    for error in refused:
        loc = [str(part) for part in error.get("loc", ())]
        if error.get("type") == "json_invalid":
            message = "Request body is not valid JSON"
            loc = loc[:1]
        elif error.get("type") == "model_attributes_type" and loc == ["body"]:
            message = NOT_JSON
        else:
            message = str(error.get("msg", "invalid value"))
        errors.append({"field": ".".join(loc), "message": message, "type": error.get("type")})
    return errors


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = _field_errors(exc.errors())
    if _not_json(exc):
        message = next((e["message"] for e in errors if e["field"] == "body"), NOT_JSON)
        return error_response(400, "bad_request", message, {"errors": errors})
    return _invalid(errors)


async def _invalid_params(_request: Request, exc: Exception) -> JSONResponse:
    """An action's params the playbook service refused: the answer a body that fails its
    schema gets."""
    assert isinstance(exc, InvalidParams)
    return _invalid(_field_errors(exc.errors))


def _invalid(errors: list[dict[str, Any]]) -> JSONResponse:
    fields = ", ".join(e["field"] for e in errors)
    return error_response(422, "validation_error", f"Invalid request: {fields}", {"errors": errors})


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = HTTP_CODES.get(exc.status_code, "http_error")
    if exc.status_code == 404 and exc.detail == HTTPStatus.NOT_FOUND.phrase:
        message = f"No route for {request.method} {request.url.path}"
    elif exc.status_code == 405:
        message = f"Method {request.method} not allowed on {request.url.path}"
    else:
        message = str(exc.detail)
    details = {"method": request.method, "path": request.url.path}
    headers = dict(exc.headers or {})
    if exc.status_code == 405:  # the refusing route named its own methods only
        headers["Allow"] = allowed(request.scope, headers.get("Allow"))
    return error_response(exc.status_code, code, message, details, headers)


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    """503 when the database is gone; any other database error goes on to the last resort."""
    if not unreachable(exc):
        raise exc
    cause = getattr(exc, "orig", None) or exc
    first_line = str(cause).strip().splitlines()[:1]
    log.warning(
        "database unreachable: %s %s answered 503 (%s: %s)",
        request.method,
        request.url.path,
        type(cause).__name__,
        "".join(first_line),
    )
    database = getattr(request.app.state, "db", None)
    return database_unavailable(database.dialect if database else "unknown", exc)


async def _unhandled_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    # answered outside every middleware (Starlette's outermost one): the request id and the
    # headers the Gate adds to every other answer, by hand
    request_id = correlation_id.get()
    headers = {"X-Request-ID": request_id} if request_id else None
    response = error_response(500, "internal_error", "Internal server error", headers=headers)
    response.raw_headers = answer_headers(request.scope, response.raw_headers)
    return response


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(InvalidParams, _invalid_params)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(sa_exc.DBAPIError, _database_error)
    app.add_exception_handler(sa_exc.TimeoutError, _database_error)
    app.add_exception_handler(Exception, _unhandled_error)
