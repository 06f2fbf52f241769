"""The API as `intervene api` serves it, through uvicorn configured as the CLI configures it:
whose X-Forwarded-For is believed, what its logs say of a URL, what it answers to a URL that is
not UTF-8."""

import asyncio
import json
import socket
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from models.access import AuditEntry
from models.db import connect, transaction
from tests.api.conftest import LiveServer
from tests.factories import incident_body


async def audited_client(database_url: str, request_id: str) -> str | None:
    database = connect(database_url, pool_size=1, max_overflow=0)
    try:
        async with transaction(database.reader) as session:
            return await session.scalar(
                select(AuditEntry.client).where(AuditEntry.request_id == request_id)
            )
    finally:
        await database.dispose()


async def spoofing_client(server: LiveServer, request_id: str) -> tuple[int, list[int]]:
    """A change claiming to come from 203.0.113.77, then 60 reads each claiming an address of
    its own: the change's status, and the reads'."""
    async with httpx.AsyncClient(base_url=server.url, headers=server.auth, timeout=30) as http:
        created = await http.post(
            "/api/incidents", json=incident_body(),
            headers={"X-Forwarded-For": "203.0.113.77", "X-Request-ID": request_id},
        )  # fmt: skip
        reads = await asyncio.gather(*(
            http.get("/api/incidents", headers={"X-Forwarded-For": f"198.51.100.{n}"})
            for n in range(1, 61)
        ))  # fmt: skip
    return created.status_code, [r.status_code for r in reads]


async def test_x_forwarded_for_is_ignored_unless_its_sender_is_a_configured_proxy(
    start_server: Callable[..., LiveServer], sse_database: str
) -> None:
    """uvicorn believes X-Forwarded-For from 127.0.0.1 unless told otherwise: with no proxy
    configured, a local client could spread its requests over made-up addresses, each with a
    budget of its own, and be audited as whoever it claimed to be."""
    server = start_server(
        sse_database, cli=True, INTERVENE_RATE_LIMIT="20/hour", INTERVENE_TRUSTED_PROXIES="[]"
    )

    created, reads = await spoofing_client(server, "xff-untrusted")

    assert created == 201
    assert Counter(reads) == {200: 19, 429: 41}  # one budget: the peer's, 127.0.0.1
    assert await audited_client(sse_database, "xff-untrusted") == "127.0.0.1"


async def test_x_forwarded_for_from_a_configured_proxy_is_believed(
    start_server: Callable[..., LiveServer], sse_database: str
) -> None:
    server = start_server(
        sse_database, cli=True, INTERVENE_RATE_LIMIT="20/hour",
        INTERVENE_TRUSTED_PROXIES='["127.0.0.1/32"]',
    )  # fmt: skip

    created, reads = await spoofing_client(server, "xff-trusted")

    assert created == 201
    assert Counter(reads) == {200: 60}  # each address its own budget
    assert await audited_client(sse_database, "xff-trusted") == "203.0.113.77"


@pytest.fixture(scope="module")
def served(start_server: Callable[..., LiveServer], sse_database: str) -> LiveServer:
    return start_server(sse_database, cli=True)


def log_records(log: Path, request_ids: set[str], seconds: float = 30) -> list[dict[str, Any]]:
    """The JSON log lines, once a line of each request id is in (uvicorn writes the access line
    after the answer)."""
    deadline = time.monotonic() + seconds
    while True:
        records = [json.loads(line) for line in log.read_text().splitlines()
                   if line.startswith("{")]  # fmt: skip
        if request_ids <= {r.get("request_id") for r in records}:
            return records
        if time.monotonic() > deadline:
            raise AssertionError(f"no log line for {request_ids} in {seconds} s")
        time.sleep(0.1)


async def test_tokens_anywhere_in_a_url_are_masked_in_the_logs_and_the_audit(
    served: LiveServer,
) -> None:
    secret = served.token
    escaped = "ivt%5F" + secret.removeprefix("ivt_")
    requests = {
        "tok-path": ("GET", f"/api/incidents/{secret}"),
        "tok-route": ("GET", f"/api/no-such-route/{secret}/more"),
        "tok-query": ("GET", f"/api/incidents?token={secret}"),
        "tok-other": ("GET", f"/api/incidents?limit=5&api_key={secret}&x=1"),
        "tok-escaped": ("GET", f"/api/incidents?token={escaped}"),
        "tok-prefix": ("GET", "/api/incidents?token=%69%76%74_" + secret.removeprefix("ivt_")),
        "tok-access": ("GET", f"/api/incidents?access_token={secret}"),
        "tok-change": ("POST", f"/api/incidents/{secret}/acknowledge"),
    }
    async with httpx.AsyncClient(base_url=served.url, headers=served.auth, timeout=30) as http:
        for request_id, (method, url) in requests.items():
            response = await http.request(method, url, headers={"X-Request-ID": request_id})
            assert response.status_code < 500, response.text
        audit = (await http.get("/api/audit", params={"path_prefix": "/api/incidents/"})).json()

    assert served.log is not None
    records = log_records(served.log, set(requests))
    assert secret.removeprefix("ivt_") not in served.log.read_text()
    access = {r["request_id"]: r["message"] for r in records if r["logger"] == "uvicorn.access"}
    for request_id in requests:
        assert "***" in access[request_id], access[request_id]
    [entry] = [e for e in audit["entries"] if e["request_id"] == "tok-change"]
    assert entry["path"] == "/api/incidents/ivt_***/acknowledge"


def raw_exchange(server: LiveServer, head: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send `head` (a request line and headers) as bytes, exactly; the answer's status, headers
    and body."""
    port = int(server.url.rsplit(":", 1)[1])
    auth = f"Authorization: Bearer {server.token}\r\n".encode()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head + b"\r\nHost: t\r\nConnection: close\r\n" + auth + b"\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    header_block, _, body = rest.partition(b"\r\n\r\n")
    headers = {}
    for line in header_block.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


@pytest.mark.parametrize(
    "request_line",
    [
        b"GET /api/caf\xc3\xa9 HTTP/1.1",  # not ASCII: no HTTP parser lets it reach the app
        b"GET /api/incidents/\xff\xfe HTTP/1.1",
        b"GET /api/incidents?assigned_to=\xff HTTP/1.1",
        b"GET /api/incidents/%ff%fe HTTP/1.1",  # escaped, but not UTF-8 once unescaped
        b"GET /api/incidents?assigned_to=%c3%28 HTTP/1.1",
        b"POST /api/incidents/%ED%A0%80/acknowledge HTTP/1.1\r\nContent-Length: 0",  # surrogate
    ],
)
def test_a_url_that_is_not_utf_8_is_400_in_the_envelope(
    served: LiveServer, request_line: bytes
) -> None:
    status, headers, body = raw_exchange(served, request_line)

    assert status == 400, body
    assert headers["content-type"] == "application/json"
    error = json.loads(body)["error"]
    assert error["code"] == "bad_request"
    assert error["message"]
    assert headers["x-content-type-options"] == "nosniff"


def test_an_escaped_utf_8_url_reaches_the_route(served: LiveServer) -> None:
    status, _, body = raw_exchange(served, b"GET /api/incidents/caf%C3%A9 HTTP/1.1")

    assert status == 422  # an id that is no number: validated by the route, as any other
    assert json.loads(body)["error"]["details"]["errors"][0]["field"] == "path.incident_id"
