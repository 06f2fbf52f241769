"""An open event stream whose token is revoked ends, over a real uvicorn: whether the API
process revoked it (its cache is emptied at once) or another process did (the CLI, straight in
the database: the cache forgets it within INTERVENE_AUTH_CACHE_SECONDS)."""

import time
from collections.abc import Callable
from dataclasses import replace

import httpx

from models.db import connect, transaction
from models.enums import Role
from models.services.tokens import revoke_token
from tests.api.conftest import LiveServer
from tests.auth import bearer, issue_at
from tests.sse_client import EventStream, open_stream


async def token_id(server: LiveServer, name: str) -> int:
    async with httpx.AsyncClient(base_url=server.url, headers=server.auth) as http:
        tokens = (await http.get("/api/tokens")).json()["tokens"]
    return int(next(t["id"] for t in tokens if t["name"] == name))


async def seconds_to_end(stream: EventStream) -> float:
    """Reads until the server ends the stream (cleanly: a cut connection raises here)."""
    started = time.monotonic()
    try:
        while True:
            await stream.next(timeout=15)
    except StopAsyncIteration:
        return time.monotonic() - started


async def test_a_revoked_token_ends_its_open_stream_and_cannot_reconnect(
    start_server: Callable[..., LiveServer], sse_database: str
) -> None:
    server = start_server(sse_database, INTERVENE_AUTH_CACHE_SECONDS="1")
    by_api = replace(server, token=await issue_at(sse_database, "eve@x.io", Role.VIEWER))
    by_cli = replace(server, token=await issue_at(sse_database, "dan@x.io", Role.VIEWER))
    eve, dan = await token_id(server, "eve@x.io"), await token_id(server, "dan@x.io")

    async with (
        open_stream(by_api) as revoked_here,
        open_stream(by_cli) as revoked_elsewhere,
        open_stream(server) as untouched,
    ):
        for stream in (revoked_here, revoked_elsewhere, untouched):
            assert (await stream.next()).event == "connected"
        async with httpx.AsyncClient(base_url=server.url, headers=server.auth) as http:
            assert (await http.post(f"/api/tokens/{eve}/revoke")).status_code == 200
        database = connect(sse_database)  # this test process plays `intervene tokens revoke`
        try:
            async with transaction(database.writer) as session:
                await revoke_token(session, dan)
        finally:
            await database.dispose()

        here, elsewhere = (
            await seconds_to_end(revoked_here),
            await seconds_to_end(revoked_elsewhere),
        )
        still = await untouched.next(skip_heartbeats=False)

    assert here < 5  # the next heartbeat (1 s here)
    assert elsewhere < 8  # + the other process's cache (1 s here)
    assert still.event == "heartbeat"  # the admin's stream goes on
    for client in (by_api, by_cli):
        async with (
            httpx.AsyncClient(base_url=server.url, timeout=10) as http,
            http.stream("GET", "/api/sse/events", headers=bearer(client.token)) as again,
        ):
            assert again.status_code == 401
