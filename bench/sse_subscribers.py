"""Many SSE subscribers in one process (stdlib asyncio), for bench/sse_fanout.py.

Usage: python bench/sse_subscribers.py HOST PORT COUNT EXPECTED
Opens COUNT streams on /api/sse/events?types=incident_updated, prints "ready" once all have
received `connected`, then records for each `incident_updated` event its `n` (from
`assigned_to`, "bench-<n>") and the receive time minus the event's `updated_at`. Exits after
every stream got EXPECTED events or 60 s passed; prints one JSON line with the results.
"""

import asyncio
import json
import re
import sys
import time
from datetime import datetime
from typing import Any

# JSONB reorders keys, so each field is found on its own
NUMBER = re.compile(rb'"assigned_to": "bench-(\d+)"')
STAMP = re.compile(rb'"updated_at": "([^"]+)"')


async def subscriber(host: str, port: int, ready: asyncio.Event, out: dict[str, Any]) -> None:
    reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
    writer.write(
        f"GET /api/sse/events?types=incident_updated HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    )
    seen: list[int] = []
    latencies: list[float] = []
    out["streams"].append((seen, latencies))
    await reader.readuntil(b"\r\n\r\n")
    connected = False
    try:
        while len(seen) < out["expected"]:
            line = await reader.readline()
            if not line:
                break
            if line.startswith(b"event: connected") and not connected:
                connected = True
                out["connected"] += 1
                if out["connected"] == out["count"]:
                    ready.set()
            if line.startswith(b"data: ") and b"bench-" in line:
                received = time.time()  # stamp first, then parse (regex: cheaper than json)
                number, stamp = NUMBER.search(line), STAMP.search(line)
                if number is None or stamp is None:
                    raise ValueError(f"unexpected event: {line!r}")
                seen.append(int(number[1]))
                sent = datetime.fromisoformat(stamp[1].decode().replace("Z", "+00:00"))
                latencies.append((received - sent.timestamp()) * 1000)
    finally:
        writer.close()


async def main(host: str, port: int, count: int, expected: int) -> None:
    out: dict[str, Any] = {"streams": [], "connected": 0, "count": count, "expected": expected}
    ready = asyncio.Event()
    tasks = []
    for _ in range(count):
        tasks.append(asyncio.create_task(subscriber(host, port, ready, out)))
        await asyncio.sleep(0.002)  # a gentle ramp: no SYN flood on a 2-core machine
    await asyncio.wait_for(ready.wait(), 120)
    print("ready", flush=True)
    await asyncio.wait(tasks, timeout=120)
    failures = [t.exception() for t in tasks if t.done() and t.exception() is not None]
    if failures:
        print(f"{len(failures)} subscribers failed, first: {failures[0]!r}", file=sys.stderr)
    streams = out["streams"]
    print(
        json.dumps(
            {
                "subscribers": len(streams),
                "counts": [len(seen) for seen, _ in streams],
                "in_order_unique": all(seen == sorted(set(seen)) for seen, _ in streams),
                "latencies_ms": [x for _, lat in streams for x in lat],
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])))
