"""A small HTTP/1.1 keep-alive load generator (stdlib asyncio), run as its own process.

Usage: python bench/loadgen.py HOST PORT SECONDS CONCURRENCY [TOKEN] [once] < requests.json
where requests.json is a list of {"method", "path", "body"?}; each connection cycles through
them until SECONDS have passed, or with `once` the connections share them and each request is
sent exactly once (SECONDS is then only a time limit).
Prints one JSON line: {"requests", "errors", "seconds", "latencies_ms": [...], "statuses"}.
Written on raw sockets because a Python HTTP client library, not the server, would otherwise
be what is measured.
"""

import asyncio
import json
import sys
import time
from collections import Counter
from typing import Any


def encode(host: str, request: dict[str, Any], token: str | None = None) -> bytes:
    body = json.dumps(request["body"]).encode() if "body" in request else b""
    head = f"{request['method']} {request['path']} HTTP/1.1\r\nHost: {host}\r\n"
    if token:
        head += f"Authorization: Bearer {token}\r\n"
    if body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return (head + "\r\n").encode() + body


async def read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    chunked = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
        elif name.lower() == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    else:
        await reader.readexactly(length)
    return status


async def worker(
    host: str,
    port: int,
    payloads: list[bytes],
    offset: int,
    deadline: float,
    out: dict[str, Any],
    shared: list[int] | None = None,
) -> None:
    """Send requests until the deadline; with `shared` (the next index, one for every
    worker), each payload once."""
    reader, writer = await asyncio.open_connection(host, port)
    n = offset
    try:
        while time.perf_counter() < deadline:
            if shared is not None:
                if shared[0] >= len(payloads):
                    break
                n, shared[0] = shared[0], shared[0] + 1
            payload = payloads[n % len(payloads)]
            n += 1
            started = time.perf_counter()
            writer.write(payload)
            status = await read_response(reader)
            out["latencies"].append((time.perf_counter() - started) * 1000)
            out["statuses"][status] += 1
    finally:
        writer.close()


async def main(
    host: str,
    port: int,
    seconds: float,
    concurrency: int,
    token: str | None = None,
    once: bool = False,
) -> None:
    requests = json.load(sys.stdin)
    payloads = [encode(host, r, token) for r in requests]
    out: dict[str, Any] = {"latencies": [], "statuses": Counter()}
    shared = [0] if once else None
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(
        *(worker(host, port, payloads, i * 7, deadline, out, shared) for i in range(concurrency))
    )
    elapsed = time.perf_counter() - started
    errors = sum(count for status, count in out["statuses"].items() if status >= 500)
    print(
        json.dumps(
            {
                "requests": len(out["latencies"]),
                "errors": errors,
                "seconds": elapsed,
                "latencies_ms": out["latencies"],
                "statuses": {str(k): v for k, v in out["statuses"].items()},
            }
        )
    )


if __name__ == "__main__":
    host, port, seconds, concurrency = (
        sys.argv[1],
        int(sys.argv[2]),
        float(sys.argv[3]),
        int(sys.argv[4]),
    )
    token = sys.argv[5] if len(sys.argv) > 5 and sys.argv[5] else None
    once = len(sys.argv) > 6 and sys.argv[6] == "once"
    asyncio.run(main(host, port, seconds, concurrency, token, once))
