"""Many SSE subscribers in one process, for bench/sse_fanout.py.

Usage: python bench/sse_subscribers.py HOST PORT COUNT EXPECTED TOKEN
Opens COUNT streams on /api/sse/events?types=incident_updated, prints "ready" once all have
received `connected`, then records for each `incident_updated` event its `n` (from
`assigned_to`, "bench-<n>") and the receive time minus the event's `updated_at`. Exits after
every stream got EXPECTED events or 120 s passed; prints one JSON line with the results.

The clients must cost as little as possible, or the benchmark measures them instead of the
server: each stream is a bare asyncio protocol (on uvloop when installed) that stamps the
arrival time of every chunk and keeps the bytes; parsing happens after the run, and the
garbage collector is off meanwhile (its full passes over the growing list of chunks would
otherwise stall every stream for tens of milliseconds).
"""

import asyncio
import gc
import json
import re
import sys
import time
from datetime import datetime
from typing import Any

# JSONB reorders keys, so each field is found on its own
NUMBER = re.compile(rb'"assigned_to": "bench-(\d+)"')
STAMP = re.compile(rb'"updated_at": "([^"]+)"')
FRAME_END = re.compile(rb"\r\n\r\n|\n\n")  # sse-starlette ends lines with CRLF


class Stream(asyncio.Protocol):
    def __init__(self, host: str, shared: dict[str, Any]) -> None:
        self.host = host
        self.shared = shared
        self.chunks: list[tuple[float, bytes]] = []
        self.frames = 0  # complete events seen (cheap count: blank lines)
        self.connected = False
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: Any) -> None:  # uvloop's is not an asyncio.Transport
        self.transport = transport
        transport.write(
            f"GET /api/sse/events?types=incident_updated HTTP/1.1\r\nHost: {self.host}\r\n"
            f"Authorization: Bearer {self.shared['token']}\r\n\r\n".encode()
        )

    def data_received(self, data: bytes) -> None:
        self.chunks.append((time.time(), data))
        if not self.connected and b"event: connected" in data:
            self.connected = True
            self.shared["connected"] += 1
            if self.shared["connected"] == self.shared["count"]:
                self.shared["ready"].set()
        if b"bench-" in data:
            self.frames += data.count(b"bench-")
            if self.frames >= self.shared["expected"]:
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def results(self) -> tuple[list[int], list[float]]:
        """Each event's number and latency, from the chunk it completed in."""
        seen: list[int] = []
        latencies: list[float] = []
        buffer = b""
        for received, data in self.chunks:
            buffer += data
            *complete, buffer = FRAME_END.split(buffer)
            for frame in complete:
                number, stamp = NUMBER.search(frame), STAMP.search(frame)
                if number is None or stamp is None:
                    continue  # headers, connected, heartbeats
                seen.append(int(number[1]))
                sent = datetime.fromisoformat(stamp[1].decode().replace("Z", "+00:00"))
                latencies.append((received - sent.timestamp()) * 1000)
        return seen, latencies


async def main(host: str, port: int, count: int, expected: int, token: str) -> None:
    loop = asyncio.get_running_loop()
    shared: dict[str, Any] = {
        "connected": 0,
        "count": count,
        "expected": expected,
        "ready": asyncio.Event(),
        "token": token,
    }
    streams: list[Stream] = []
    for _ in range(count):
        _, stream = await loop.create_connection(lambda: Stream(host, shared), host, port)
        streams.append(stream)
        await asyncio.sleep(0.002)  # a gentle ramp: no SYN flood on a 2-core machine
    await asyncio.wait_for(shared["ready"].wait(), 120)
    print("ready", flush=True)
    gc.disable()
    await asyncio.wait([asyncio.ensure_future(s.closed) for s in streams], timeout=120)
    for stream in streams:
        stream.transport.close()
    gc.enable()
    results = [stream.results() for stream in streams]
    print(
        json.dumps(
            {
                "subscribers": len(results),
                "counts": [len(seen) for seen, _ in results],
                "in_order_unique": all(seen == sorted(set(seen)) for seen, _ in results),
                "latencies_ms": [x for _, lat in results for x in lat],
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    try:
        import uvloop
    except ImportError:  # plain asyncio: slower clients, higher figures
        run = asyncio.run
    else:
        run = uvloop.run
    run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]))
