"""Limits on what clients can send and how often: rate limits (in memory and shared through
Redis by two API processes), the body cap, bounded JSON, security headers."""

import asyncio
import json
import os
import socket
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

import httpx
import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from api.main import create_app
from deployments.stack import free_port
from models.settings import Settings
from tests.api.conftest import LiveServer
from tests.auth import bearer, issue
from tests.databases import REQUIRED
from tests.factories import incident_body
from tests.fakes import RecordingLauncher

REDIS_URL = os.environ.get("INTERVENE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def redis_reachable() -> bool:
    host, port = REDIS_URL.removeprefix("redis://").split("/")[0].split(":")
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
    except OSError:
        return False
    return True


@pytest.fixture
async def limited(
    limited_to: Callable[[str], AbstractAsyncContextManager[FastAPI]],
) -> AsyncIterator[AsyncClient]:
    """The app with 5 requests a minute per address."""
    async with limited_to("5/minute") as app:
        headers = bearer(await issue(app.state.db))
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t",
                               headers=headers) as http:  # fmt: skip
            yield http


async def test_the_rate_limit_holds_under_concurrency(limited: AsyncClient) -> None:
    responses = await asyncio.gather(*(limited.get("/api/incidents") for _ in range(12)))

    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: 5, 429: 7}
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.json()["error"]["code"] == "rate_limited"
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["x-ratelimit-remaining"] == "0"
    allowed = sorted(int(r.headers["x-ratelimit-remaining"]) for r in responses
                     if r.status_code == 200)  # fmt: skip
    assert allowed == [0, 1, 2, 3, 4]
    assert all(r.headers["x-ratelimit-limit"] == "5" for r in responses)
    health = await limited.get("/api/health")  # never limited: load balancers probe it
    assert health.status_code == 200


async def test_every_answer_carries_rate_limit_and_security_headers(client: AsyncClient) -> None:
    ok = await client.get("/api/incidents")
    missing = await client.get("/api/incidents/999999")

    for response in (ok, missing):
        assert response.headers["x-ratelimit-limit"] == "1000000"
        assert int(response.headers["x-ratelimit-reset"]) > 0
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert "default-src 'none'" in response.headers["content-security-policy"]


def assert_gate_headers(response: httpx.Response, limit: str) -> None:
    """What every answer under /api carries, whoever sent it."""
    assert response.headers["x-ratelimit-limit"] == limit
    assert int(response.headers["x-ratelimit-remaining"]) >= 0
    assert int(response.headers["x-ratelimit-reset"]) > time.time()
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["content-security-policy"].startswith("default-src 'none'")
    assert response.headers["cache-control"] == "no-store"


async def test_the_gates_own_refusals_carry_the_same_headers(
    client: AsyncClient, limited: AsyncClient, settings: Settings
) -> None:
    nul = await client.get("/api/incidents", params={"assigned_to": "a\u0000"})
    too_large = await client.post("/api/incidents", content=b"x" * (settings.max_body_bytes + 1),
                                  headers={"Content-Type": "application/json"})  # fmt: skip
    answers = [await limited.post("/api/incidents", json=incident_body()) for _ in range(6)]

    assert (nul.status_code, too_large.status_code) == (400, 413)
    assert [r.status_code for r in answers] == [201] * 5 + [429]
    for response in (nul, too_large):
        assert_gate_headers(response, "1000000")
    assert_gate_headers(answers[-1], "5")
    assert answers[-1].headers["x-ratelimit-remaining"] == "0"
    assert int(answers[-1].headers["retry-after"]) >= 1


async def test_the_last_resort_500_carries_the_same_headers_and_no_trace(
    failing_client: AsyncClient,
) -> None:
    response = await failing_client.post("/api/explode")

    assert response.status_code == 500
    assert response.json() == {
        "error": {"code": "internal_error", "message": "Internal server error", "details": {}}
    }
    assert "hunter2" not in response.text
    assert "Traceback" not in response.text
    assert_gate_headers(response, "1000000")


async def test_a_body_over_the_cap_is_413(client: AsyncClient, settings: Settings) -> None:
    big = incident_body(summary="x") | {"details": {"blob": "x" * settings.max_body_bytes}}

    declared = await client.post("/api/incidents", json=big)

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"kind": "invariant", "details": {"blob": "'
        for _ in range(settings.max_body_bytes // 65536 + 2):
            yield b"x" * 65536
        yield b'"}}'

    streamed = await client.post("/api/incidents", content=chunks(),
                                 headers={"Content-Type": "application/json"})  # fmt: skip

    for response in (declared, streamed):
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "payload_too_large"
    assert (await client.get("/api/incidents")).json()["total"] == 0  # nothing stored


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("details", {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": {"j": 1}}}}}}}}}},
         "nested deeper"),
        ("metadata", {"k" * 201: 1}, "key is longer"),
        ("details", {"rows": ["x" * 1000] * 70}, "larger than"),
    ],
)  # fmt: skip
async def test_free_form_json_is_bounded(
    client: AsyncClient, field: str, value: object, problem: str
) -> None:
    response = await client.post("/api/incidents", json=incident_body() | {field: value})

    assert response.status_code == 422
    assert problem in response.text
    assert (await client.get("/api/incidents")).json()["total"] == 0


async def test_two_api_processes_share_one_budget_through_redis(
    start_server: Callable[..., LiveServer], sse_database: str
) -> None:
    if not redis_reachable():
        if REQUIRED:
            pytest.fail(f"Redis is required in CI and not reachable at {REDIS_URL}")
        pytest.skip(f"Redis not reachable at {REDIS_URL}")
    shared = {
        "INTERVENE_RATE_LIMIT": "20/hour",
        "INTERVENE_RATE_LIMIT_STORAGE": REDIS_URL,
        "INTERVENE_RATE_LIMIT_NAMESPACE": f"test-{uuid.uuid4().hex}",  # this run's counters
    }
    one, two = start_server(sse_database, **shared), start_server(sse_database, **shared)

    async def get(server: LiveServer) -> int:
        async with httpx.AsyncClient(base_url=server.url, headers=server.auth) as http:
            return (await http.get("/api/incidents")).status_code

    statuses = await asyncio.gather(*(get(one if n % 2 else two) for n in range(40)))

    assert Counter(statuses) == {200: 20, 429: 20}


async def test_with_the_rate_limit_store_down_requests_pass_and_it_is_logged_once(
    settings: Settings,
    recording_launcher: RecordingLauncher,
    client: AsyncClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    nowhere = f"redis://127.0.0.1:{free_port()}"  # nothing listens there
    app: FastAPI = create_app(
        settings.model_copy(update={"rate_limit_storage": nowhere}), launcher=recording_launcher
    )
    async with app.router.lifespan_context(app):
        headers = bearer(await issue(app.state.db))
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t",
                               headers=headers) as http:  # fmt: skip
            statuses = [(await http.get("/api/incidents")).status_code for _ in range(5)]

    assert statuses == [200] * 5  # fails open, as documented
    (warning,) = [r for r in caplog.records if "rate-limit store unreachable" in r.getMessage()]
    assert warning.levelname == "WARNING"
    assert warning.exc_info is not None  # the cause, once


async def test_nul_characters_are_refused_not_a_500(client: AsyncClient) -> None:
    """PostgreSQL cannot store NUL: refused in text fields, JSON and URLs (found by fuzzing)."""
    incident = (await client.post("/api/incidents", json=incident_body())).json()

    in_text = await client.post(f"/api/incidents/{incident['id']}/resolve",
                                json={"actor": "a\u0000b"})  # fmt: skip
    in_json = await client.post("/api/incidents", json=incident_body(details={"x": "\u0000"}))
    in_url = await client.get("/api/incidents", params={"assigned_to": "a\u0000"})

    assert in_text.status_code == 422
    assert in_json.status_code == 422
    assert in_url.status_code == 400
    assert in_url.json()["error"]["code"] == "bad_request"
    assert (await client.get(f"/api/incidents/{incident['id']}")).json()["status"] == "open"


def test_x_forwarded_for_is_believed_only_from_trusted_proxies() -> None:
    from api.middleware import client_address, trusted_networks

    def scope(peer: str, forwarded: str | None) -> dict[str, object]:
        headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
        return {"client": (peer, 5000), "headers": headers}

    proxies = trusted_networks(Settings(trusted_proxies=["10.0.0.0/8"], _env_file=None))  # type: ignore[call-arg]

    # a client that claims an address, through two trusted proxies: the first untrusted hop
    assert client_address(scope("10.0.0.2", "6.6.6.6, 203.0.113.9, 10.0.0.1"), proxies) == (
        "203.0.113.9"
    )
    assert client_address(scope("198.51.100.7", "1.2.3.4"), proxies) == "198.51.100.7"
    assert client_address(scope("198.51.100.7", "1.2.3.4"), []) == "198.51.100.7"
    assert client_address(scope("10.0.0.2", None), proxies) == "10.0.0.2"
    # ports are dropped; a hop that is no address ends the walk at the last trusted one
    assert client_address(scope("10.0.0.2", "203.0.113.9:4711"), proxies) == "203.0.113.9"
    assert client_address(scope("10.0.0.2", "x" * 300 + ", 10.0.0.1"), proxies) == "10.0.0.1"


async def test_nan_and_infinity_are_refused_in_free_form_json(client: AsyncClient) -> None:
    """Python's JSON parser takes them; PostgreSQL's jsonb would not (a 500 otherwise)."""
    body = json.dumps(incident_body(metadata={"ratio": float("nan")}), allow_nan=True)

    response = await client.post("/api/incidents", content=body,
                                 headers={"Content-Type": "application/json"})  # fmt: skip

    assert response.status_code == 422
    assert "NaN and Infinity" in response.text


@pytest.mark.parametrize(
    ("field", "value", "where"),
    [
        ("details", {"x": "\ud800"}, "details.x"),
        ("details", {"\udfff": 1}, "details"),
        ("metadata", {"a": [{"b": "ok \udbff then"}]}, "metadata.a.0.b"),
        ("metadata", {"a": {"\ud800key": "v"}}, "metadata.a"),
    ],
)
async def test_lone_surrogates_are_refused_naming_the_field(
    client: AsyncClient, field: str, value: object, where: str
) -> None:
    """JSON may escape half a surrogate pair ("\\ud800"); no database stores it as text, and
    PostgreSQL's jsonb refused it with a 500 (found by fuzzing)."""
    body = json.dumps(incident_body() | {field: value})  # ASCII, the escape kept as sent

    response = await client.post("/api/incidents", content=body,
                                 headers={"Content-Type": "application/json"})  # fmt: skip

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    (problem,) = error["details"]["errors"]
    assert problem["field"] == f"body.{field}"
    assert "surrogate" in problem["message"]
    assert where in problem["message"]
    assert (await client.get("/api/incidents")).json()["total"] == 0


async def test_lone_surrogates_in_text_fields_are_422_too(client: AsyncClient) -> None:
    """pydantic refuses them in a str field by itself (its own message)."""
    body = json.dumps(incident_body(summary="broken \ud800 text"))

    response = await client.post("/api/incidents", content=body,
                                 headers={"Content-Type": "application/json"})  # fmt: skip

    assert response.status_code == 422
    (problem,) = response.json()["error"]["details"]["errors"]
    assert problem["field"] == "body.summary"


async def test_a_whole_surrogate_pair_is_an_ordinary_character(client: AsyncClient) -> None:
    body = json.dumps(incident_body(summary="ok \U0001f600", details={"\U0001f600": "\U0001f600"}))

    response = await client.post("/api/incidents", content=body,
                                 headers={"Content-Type": "application/json"})  # fmt: skip

    assert response.status_code == 201
    assert response.json()["details"] == {"\U0001f600": "\U0001f600"}
