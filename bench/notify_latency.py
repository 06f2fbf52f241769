"""From an incident's commit to its first notification, by email and by Slack, against the SSE
delivery of the same incidents in the same run; then an SMTP outage in the middle.

    python bench/notify_latency.py [--incidents 200] [--rate 10] [--outage 60] [--postgres]

Starts, in a temporary directory: a real SMTP server (aiosmtpd) and the tests' local Slack Web
API server (tests/slack_api.py, reached through slack-sdk), the API (uvicorn, auth on) and
`intervene services` (its notifier) on one database (a SQLite file by default, the embedded
default; --postgres: a throwaway database on INTERVENE_BENCH_POSTGRES_URL), with an on-call
file whose one policy pages the person on call by email and Slack for every sev1. An SSE
client follows /api/sse/events.

1. Latency: --incidents sev1 incidents opened at --rate per second. For each, from its
   `created_at` to (a) its incident_created event on the SSE stream, (b) the SMTP server
   accepting its email, (c) the Slack server accepting its message. p50 and p99 of each.
2. Outage: the SMTP server is stopped for --outage seconds while 50 more incidents open, then
   started again. Every email must arrive after it returns, once.

Targets: email and Slack p99 <= 2 s and <= 5x the SSE p99; every incident of both phases
notified exactly once by each medium (none lost, none doubled). Exits 1 when one is missed.
"""

import argparse
import asyncio
import email
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from aiosmtpd.controller import Controller

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.incidents_api import (  # noqa: E402
    BENCH_ENV,
    bench_token,
    create_database,
    drop_database,
    start_server,
)
from deployments.stack import free_port  # noqa: E402
from models import migrate  # noqa: E402
from tests.slack_api import TOKEN, SlackApi, serve_slack  # noqa: E402

P99_SECONDS = 2.0
OVER_SSE = 5.0
OUTAGE_INCIDENTS = 50
WARM_UP = 10  # incidents opened and notified before the measurement (not counted)
ONCALL = """\
people:
  - id: ada
    name: Ada Lovelace
    email: ada@example.com
    slack_user_id: U0ADA0001
schedules:
  - name: primary
    rotation: {members: [ada], length_days: 7, start: 2026-11-30}
policies:
  - name: sev1
    match: {severity: [sev1]}
    steps:
      - notify: {schedule: primary}
        wait_minutes: 60
"""
NUMBER = re.compile(r"\(incident #(\d+),")


class Inbox:
    """The SMTP server's handler: when each incident's emails were accepted."""

    def __init__(self) -> None:
        self.arrivals: dict[int, list[float]] = {}

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        subject = str(email.message_from_bytes(envelope.content)["Subject"])
        if found := NUMBER.search(subject):
            self.arrivals.setdefault(int(found[1]), []).append(time.time())
        return "250 OK"


def slack_arrivals(slack: SlackApi) -> dict[int, list[float]]:
    arrivals: dict[int, list[float]] = {}
    for call in slack.of("chat.postMessage"):
        if found := NUMBER.search(call.body["text"]):
            arrivals.setdefault(int(found[1]), []).append(call.at)
    return arrivals


async def follow(port: int, token: str, seen: dict[int, float]) -> None:
    """incident_created events as the SSE stream delivers them."""
    headers = {"Authorization": f"Bearer {token}"}
    url = f"http://127.0.0.1:{port}/api/sse/events"
    async with (
        httpx.AsyncClient(timeout=None) as http,
        http.stream("GET", url, headers=headers) as stream,
    ):
        kind = None
        async for line in stream.aiter_lines():
            if line.startswith("event:"):
                kind = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and kind == "incident_created":
                data = json.loads(line.split(":", 1)[1])
                seen.setdefault(int(data["id"]), time.time())


async def open_incidents(
    http: httpx.AsyncClient, count: int, rate: float, prefix: str
) -> dict[int, float]:
    """`count` sev1 incidents at `rate` per second; each one's created_at (epoch seconds)."""
    created: dict[int, float] = {}
    start = time.monotonic()
    for n in range(count):
        await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
        answer = await http.post(
            "/api/incidents",
            json={"kind": "invariant", "key": f"{prefix}-{n}", "severity": "sev1",
                  "summary": f"bench incident {prefix}-{n}"},
        )  # fmt: skip
        answer.raise_for_status()
        body = answer.json()
        created[body["id"]] = datetime.fromisoformat(body["created_at"]).timestamp()
    return created


async def until(done: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if done():
            return True
        await asyncio.sleep(0.2)
    return done()


def quantiles(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered), p99


class Stack:
    """The SMTP server (stopped and started again by the outage), the API and the services."""

    def __init__(self, args: argparse.Namespace, base: Path, slack: SlackApi) -> None:
        self.url = args.database_url
        oncall = base / "oncall.yml"
        oncall.write_text(ONCALL)
        self.smtp_port, self.api_port = free_port(), free_port()
        self.inbox = Inbox()
        self.smtp = Controller(self.inbox, hostname="127.0.0.1", port=self.smtp_port)
        self.smtp.start()
        migrate.upgrade(self.url)
        self.token = bench_token(self.url)
        os.environ.update(
            {
                "INTERVENE_ONCALL_FILE": str(oncall),
                "INTERVENE_SMTP_HOST": "127.0.0.1",
                "INTERVENE_SMTP_PORT": str(self.smtp_port),
                "INTERVENE_SMTP_TLS": "none",
                "INTERVENE_SLACK_BOT_TOKEN": TOKEN,
                "INTERVENE_SLACK_API_URL": slack.base_url,
                "PREFECT_API_URL": f"http://127.0.0.1:{free_port()}/api",  # no Prefect here
                # the demo's checks never run here: the watchdog would call them stale
                "INTERVENE_WATCHDOG_INTERVAL_SECONDS": "86400",
            }
        )
        self.server = start_server(self.url, self.api_port)
        self.services_log = (base / "services.log").open("wb")
        self.services = subprocess.Popen(
            [sys.executable, "-m", "intervene_cli", "services"],
            cwd=ROOT,
            env={**os.environ, **BENCH_ENV, "INTERVENE_DATABASE_URL": self.url},
            stdout=self.services_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_for_services(self, seconds: float = 60) -> None:
        """Until `intervene services` says its loops run (its imports take a few seconds)."""
        deadline = time.monotonic() + seconds
        log = Path(self.services_log.name)
        while b"running " not in log.read_bytes():
            if time.monotonic() > deadline or self.services.poll() is not None:
                raise SystemExit(f"intervene services did not start:\n{log.read_text()}")
            time.sleep(0.2)

    def smtp_down(self) -> None:
        self.smtp.stop()

    def smtp_up(self) -> None:
        self.smtp = Controller(self.inbox, hostname="127.0.0.1", port=self.smtp_port)
        self.smtp.start()

    def stop(self) -> None:
        self.services.terminate()
        self.server.terminate()
        self.services.wait(30)
        self.server.wait(30)
        self.services_log.close()
        self.smtp.stop()


async def measure(args: argparse.Namespace, stack: Stack, slack: SlackApi) -> int:
    inbox, seen = stack.inbox, {}
    follower = asyncio.create_task(follow(stack.api_port, stack.token, seen))
    headers = {"Authorization": f"Bearer {stack.token}"}
    base_url = f"http://127.0.0.1:{stack.api_port}"
    try:
        async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as http:
            await asyncio.sleep(2)  # the stream and the notifier's LISTEN are up
            warm = await open_incidents(http, WARM_UP, args.rate, "warm-up")  # caches, pools
            if not await until(lambda: all(i in inbox.arrivals for i in warm), 60):
                print("the warm-up incidents were not notified within 60 s")
            created = await open_incidents(http, args.incidents, args.rate, "latency")

            def all_told() -> bool:
                arrived = slack_arrivals(slack)
                return all(i in seen and i in inbox.arrivals and i in arrived for i in created)

            if not await until(all_told, 120):
                print("not every incident was streamed and notified within 120 s")
            figures = {
                "written": await written_after(http, created),
                "sse": latencies(created, {i: [t] for i, t in seen.items()}),
                "email": latencies(created, inbox.arrivals),
                "slack": latencies(created, slack_arrivals(slack)),
            }

            stack.smtp_down()
            outage_began = time.monotonic()
            rate = OUTAGE_INCIDENTS / max(1.0, args.outage / 2)
            during = await open_incidents(http, OUTAGE_INCIDENTS, rate, "outage")
            await asyncio.sleep(max(0.0, args.outage - (time.monotonic() - outage_began)))
            early = sum(1 for i in during if i in inbox.arrivals)
            stack.smtp_up()
            back = time.monotonic()
            every = {**warm, **created, **during}
            delivered = await until(lambda: all(i in inbox.arrivals for i in every), 300)
            after = time.monotonic() - back
            await asyncio.sleep(5)  # anything sent twice would arrive by now
    finally:
        if follower.done() and follower.exception():
            print(f"the SSE stream failed: {follower.exception()!r}")
        follower.cancel()
    return report(args, figures, every, inbox, slack, delivered, after, early)


async def written_after(http: httpx.AsyncClient, created: dict[int, float]) -> list[float]:
    """From each incident's created_at to the notifier's pass that wrote its pages (what the
    delivery adds is the rest)."""
    found = []
    for incident_id, at in created.items():
        answer = await http.get(f"/api/incidents/{incident_id}/notifications")
        pages = answer.json()["notifications"]
        if pages:
            first = min(datetime.fromisoformat(n["created_at"]).timestamp() for n in pages)
            found.append(first - at)
    return found


def latencies(created: dict[int, float], arrivals: dict[int, list[float]]) -> list[float]:
    return [arrivals[i][0] - at for i, at in created.items() if i in arrivals]


def report(
    args: argparse.Namespace,
    figures: dict[str, list[float]],
    every: dict[int, float],
    inbox: Inbox,
    slack: SlackApi,
    delivered: bool,
    after: float,
    early: int,
) -> int:
    where = "PostgreSQL" if args.postgres else "a SQLite file"
    print(f"{args.incidents} sev1 incidents at {args.rate}/s, then {OUTAGE_INCIDENTS} more during"
          f" a {args.outage:.0f} s SMTP outage, on {where}")  # fmt: skip
    ok = True
    sse_p99 = 0.0
    if figures["written"]:
        p50, p99 = quantiles(figures["written"])
        print(f"pages written by the notifier: p50 {p50 * 1000:7.1f} ms   p99 {p99 * 1000:7.1f} ms")
    for medium in ("sse", "email", "slack"):
        values = figures[medium]
        if len(values) < args.incidents:
            print(f"{medium:>6}: only {len(values)} of {args.incidents} arrived")
            ok = False
            continue
        p50, p99 = quantiles(values)
        line = f"{medium:>6}: p50 {p50 * 1000:7.1f} ms   p99 {p99 * 1000:7.1f} ms"
        if medium == "sse":
            sse_p99 = p99
        else:
            ratio = p99 / sse_p99 if sse_p99 else float("inf")
            hit = p99 <= P99_SECONDS and ratio <= OVER_SSE
            ok &= hit
            line += f"   {ratio:4.1f}x SSE p99   {'ok' if hit else 'MISSED'}"
        print(line)
    posts = slack_arrivals(slack)
    emails_once = all(len(inbox.arrivals.get(i, [])) == 1 for i in every)
    slack_once = all(len(posts.get(i, [])) == 1 for i in every)
    doubled = sum(1 for i in every if len(inbox.arrivals.get(i, [])) > 1)
    missing = sum(1 for i in every if i not in inbox.arrivals)
    print(f"outage: {early} emails accepted while the server was down (must be 0);"
          f" after it returned every email {'arrived' if delivered else 'did NOT arrive'}"
          f" within {after:.1f} s; {missing} missing, {doubled} doubled")  # fmt: skip
    said = {True: "yes", False: "NO"}
    print(f"once each of {len(every)}: email {said[emails_once]}, Slack {said[slack_once]}")
    ok &= delivered and emails_once and slack_once and early == 0
    print("targets:", "met" if ok else "MISSED")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--incidents", type=int, default=200)
    parser.add_argument("--rate", type=float, default=10.0, help="incidents opened per second")
    parser.add_argument("--outage", type=float, default=60.0, help="seconds without SMTP")
    parser.add_argument("--postgres", action="store_true", help="default: a SQLite file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="intervene-notify-") as base, serve_slack() as slack:
        sqlite = f"sqlite+aiosqlite:///{Path(base) / 'intervene.db'}"
        args.database_url = create_database() if args.postgres else sqlite
        try:
            stack = Stack(args, Path(base), slack)
            try:
                return asyncio.run(measure(args, stack, slack))
            finally:
                stack.stop()
        finally:
            if args.postgres:
                drop_database(args.database_url)


if __name__ == "__main__":
    raise SystemExit(main())
