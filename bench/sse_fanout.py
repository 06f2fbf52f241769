"""SSE fan-out benchmark on PostgreSQL: 1,000 subscribers, 200 incident updates.

    python bench/sse_fanout.py [--subscribers 1000] [--updates 200] [--rate 20] [--workers 2]

Creates a throwaway database on INTERVENE_BENCH_POSTGRES_URL (default
postgresql://127.0.0.1:5432/test), starts the API on it (uvicorn, `--workers` processes: the
subscribers spread over them as behind any load balancer), connects the subscribers from
another process (bench/sse_subscribers.py), and makes the updates through the API (assign,
`rate` per second). Latency is receipt time minus the event's `updated_at` (stamped in the
writing transaction, just before commit). The same run is made first with 1 subscriber, the
floor. Memory per subscriber is the API's RSS growth with all subscribers
connected and idle, divided by their number. Targets: p99 at N subscribers <= 250 ms and within
5x of the 1-subscriber p99; under 64 KiB per idle subscriber; no event lost or duplicated.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.incidents_api import BENCH_ENV, bench_token, create_database, drop_database  # noqa: E402
from deployments.stack import free_port, start, stop, wait_healthy  # noqa: E402


def rss_kib(pid: int) -> int:
    """Resident memory of `pid` and its children (uvicorn's worker processes)."""
    total = 0
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    for each in [pid, *map(int, children)]:
        for line in Path(f"/proc/{each}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


def run(
    api: str, port: int, pid: int, subscribers: int, updates: int, rate: float, token: str
) -> dict:
    http = httpx.Client(base_url=api, timeout=30, headers={"Authorization": f"Bearer {token}"})
    incident = http.post(
        "/incidents",
        json={
            "kind": "budget",
            "key": f"BUDGET_fanout_{subscribers}",
            "severity": "sev3",
            "summary": "fan-out benchmark",
        },
    ).json()
    before = rss_kib(pid)
    clients = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "bench" / "sse_subscribers.py"),
            "127.0.0.1",
            str(port),
            str(subscribers),
            str(updates),
            token,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert clients.stdout is not None
    assert clients.stdout.readline().strip() == "ready"
    time.sleep(2)  # idle
    per_subscriber = (rss_kib(pid) - before) / subscribers
    for n in range(updates):
        started = time.perf_counter()
        http.post(f"/incidents/{incident['id']}/assign", json={"assigned_to": f"bench-{n}"})
        time.sleep(max(0.0, 1 / rate - (time.perf_counter() - started)))
    result = json.loads(clients.stdout.readline())
    clients.wait(30)
    latencies = sorted(result["latencies_ms"])
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "p50": statistics.median(latencies),
        "p99": q[98],
        "max": latencies[-1],
        "kib_per_subscriber": per_subscriber,
        "complete": all(c == updates for c in result["counts"]) and result["in_order_unique"],
        "received": sum(result["counts"]),
        "expected": subscribers * updates,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20.0, help="updates per second")
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="uvicorn worker processes (default 2: one per core here)",
    )
    args = parser.parse_args()

    url = create_database()
    port = free_port()
    env = os.environ | BENCH_ENV | {"INTERVENE_DATABASE_URL": url}
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "api.main:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
        "--backlog",
        "4096",
        "--workers",
        str(args.workers),
    ]
    server = start(command, env)
    try:
        api = f"http://127.0.0.1:{port}/api"
        wait_healthy(f"{api}/health", server, 60)  # migrated by now
        token = bench_token(url)
        floor = run(api, port, server.pid, 1, args.updates, args.rate, token)
        many = run(api, port, server.pid, args.subscribers, args.updates, args.rate, token)
    finally:
        stop([server])
        drop_database(url)

    print(
        f"\nSSE fan-out on PostgreSQL, {args.workers} uvicorn worker(s), {os.cpu_count()} cores, "
        f"{args.updates} updates at {args.rate:.0f}/s\n"
    )
    print(f"{'subscribers':>11}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'KiB/sub':>9}  delivered")
    for label, r in (("1", floor), (str(args.subscribers), many)):
        print(
            f"{label:>11}{r['p50']:>9.1f}{r['p99']:>9.1f}{r['max']:>9.1f}"
            f"{r['kib_per_subscriber']:>9.1f}  {r['received']}/{r['expected']}"
            f"{'' if r['complete'] else ' INCOMPLETE'}"
        )
    missed = []
    if many["p99"] > 250:
        missed.append("p99 above 250 ms")
    if many["p99"] > 5 * max(floor["p99"], 1.0):
        missed.append("p99 above 5x the 1-subscriber p99")
    if many["kib_per_subscriber"] >= 64:
        missed.append("64 KiB or more per idle subscriber")
    if not (many["complete"] and floor["complete"]):
        missed.append("events lost, duplicated or out of order")
    print(f"\np99 ratio to the floor: {many['p99'] / max(floor['p99'], 1.0):.1f}x")
    print("targets: p99 <= 250 ms and <= 5x floor; < 64 KiB per idle subscriber; none lost")
    print("result: " + ("all targets met" if not missed else "MISSED: " + "; ".join(missed)))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
