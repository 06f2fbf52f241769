"""A small SSE reader for the tests: parses `id:`, `event:`, `data:` and `retry:` fields."""

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import httpx


@dataclass
class Message:
    event: str
    data: Any
    id: int | None
    retry: int | None


class EventStream:
    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._messages = self._parse()

    async def _parse(self) -> AsyncIterator[Message]:
        fields: dict[str, str] = {}
        data: list[str] = []
        async for line in self.response.aiter_lines():
            if line == "":
                if data or fields:
                    raw_id = fields.get("id")
                    yield Message(
                        event=fields.get("event", "message"),
                        data=json.loads("\n".join(data)) if data else None,
                        id=int(raw_id) if raw_id else None,
                        retry=int(fields["retry"]) if "retry" in fields else None,
                    )
                fields, data = {}, []
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                data.append(value)
            else:
                fields[name] = value

    async def next(self, timeout: float = 10, *, skip_heartbeats: bool = True) -> Message:
        while True:
            message = await asyncio.wait_for(anext(self._messages), timeout)
            if not (skip_heartbeats and message.event == "heartbeat"):
                return message

    async def take(self, count: int, timeout: float = 10) -> list[Message]:
        return [await self.next(timeout) for _ in range(count)]


class Server(Protocol):
    url: str
    token: str


@asynccontextmanager
async def open_stream(
    server: Server, path: str = "/api/sse/events", headers: dict[str, str] | None = None
) -> AsyncIterator[EventStream]:
    """A stream from `server`, signed in with its token."""
    timeout = httpx.Timeout(30, read=None)
    headers = {"Authorization": f"Bearer {server.token}"} | (headers or {})
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=timeout) as client,
        client.stream("GET", path, headers=headers) as response,
    ):
        assert response.status_code == 200, await response.aread()
        yield EventStream(response)
