"""An alert storm on PostgreSQL: the Alertmanager endpoint's batches and the single-alert
dedup path, each against GET /api/health measured in the same run.

    python bench/alert_storm.py [--alerts 10000] [--keys 100] [--group 100]

Creates a throwaway database on the PostgreSQL at INTERVENE_BENCH_POSTGRES_URL (default
postgresql://127.0.0.1:5432/test), starts `uvicorn api.main:create_app` on it (auth on, one
worker) and drives it from bench/loadgen.py in its own process:
- health: GET /api/health for --seconds (the yardstick);
- batched: the alerts over --keys keys as Alertmanager webhooks of --group alerts each, every
  group sent once (4 connections, as a few Alertmanager replicas would);
- single: the same number of alerts one per request through POST /api/incidents (16
  connections), on keys of their own.
Then it reads the stored occurrence counts: each side must add up to exactly --alerts.
Prints alerts/s, the p50 and p99 of a request, the ratios to health, and whether the targets
hold; exits 1 when one is missed.
"""

import argparse
import os
import sys
import time
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.incidents_api import (  # noqa: E402
    bench_token,
    create_database,
    drop_database,
    load,
    start_server,
    summarize,
)
from deployments.stack import free_port  # noqa: E402
from models import migrate  # noqa: E402

BATCH_OVER_HEALTH = 10.0  # batched alerts per second, as a multiple of health's requests/s
SINGLE_OVER_HEALTH = 0.25
GROUP_P99_MS = 250.0


def groups(alerts: int, keys: int, size: int) -> list[dict[str, object]]:
    """Alertmanager webhooks: alert n is about key n % keys, firing."""
    requests = []
    for start in range(0, alerts, size):
        batch = [
            {
                "status": "firing",
                "labels": {
                    "alertname": "WarehouseStale",
                    "dedup_key": f"storm-{n % keys}",
                    "severity": "critical",
                    "table": f"table_{n % keys}",
                },
                "annotations": {"summary": f"table_{n % keys} is stale"},
                "startsAt": "2026-12-05T12:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus:9090/graph",
                "fingerprint": f"{n % keys:016x}",
            }
            for n in range(start, min(start + size, alerts))
        ]
        body = {"version": "4", "status": "firing", "groupKey": f"storm:{start}", "alerts": batch}
        requests.append({"method": "POST", "path": "/api/integrations/alertmanager", "body": body})
    return requests


def singles(alerts: int, keys: int) -> list[dict[str, object]]:
    return [
        {
            "method": "POST",
            "path": "/api/incidents",
            "body": {
                "kind": "alert",
                "key": f"single-{n % keys}",
                "severity": "sev1",
                "summary": f"table_{n % keys} is stale",
            },
        }
        for n in range(alerts)
    ]


def stored(url: str, prefix: str) -> tuple[int, int]:
    """(incidents, the sum of their occurrence counts) whose key starts with `prefix`."""
    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain) as conn:
        row = conn.execute(
            "SELECT count(*), coalesce(sum(occurrence_count), 0) FROM incidents WHERE key LIKE %s",
            (prefix + "%",),
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--keys", type=int, default=100)
    parser.add_argument("--group", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10.0, help="of health")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()

    url = create_database()
    server = None
    try:
        migrate.upgrade(url)
        token = bench_token(url)
        port = free_port()
        server = start_server(url, port)
        health_requests = [{"method": "GET", "path": "/api/health"}]
        load(port, health_requests, 1.0, 16, token)  # warm up
        load(port, groups(args.group, args.keys, args.group), 60, 1, token, once=True)  # code path
        health = summarize(load(port, health_requests, args.seconds, 16, token))
        started = time.perf_counter()
        batched = summarize(
            load(port, groups(args.alerts, args.keys, args.group), 600, 4, token, once=True)
        )
        batched["alerts_per_s"] = args.alerts / (time.perf_counter() - started)
        single = summarize(load(port, singles(args.alerts, args.keys), 600, 16, token, once=True))
        single["alerts_per_s"] = single["rps"]
        counts = {"batched": stored(url, "storm-"), "single": stored(url, "single-")}
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
        if not args.keep:
            drop_database(url)

    warm = args.group  # the warm-up group counted one occurrence per key
    print(
        f"\n{args.alerts} alerts over {args.keys} keys; groups of {args.group};"
        f" 1 uvicorn worker, {os.cpu_count()} cores, PostgreSQL\n"
    )
    print(f"{'':<10}{'alerts/s':>10}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'vs health':>11}")
    print(f"{'health':<10}{'':>10}{health['rps']:>9.0f}{health['p50']:>9.2f}{health['p99']:>9.2f}")
    for name, r in (("batched", batched), ("single", single)):
        print(
            f"{name:<10}{r['alerts_per_s']:>10.0f}{r['rps']:>9.1f}{r['p50']:>9.2f}"
            f"{r['p99']:>9.2f}{r['alerts_per_s'] / health['rps']:>10.2f}x"
        )
    print(
        f"\nstored: batched {counts['batched'][0]} incidents, {counts['batched'][1] - warm} "
        f"occurrences (+{warm} warm-up); single {counts['single'][0]} incidents, "
        f"{counts['single'][1]} occurrences"
    )
    failures = []
    if batched["alerts_per_s"] < BATCH_OVER_HEALTH * health["rps"]:
        failures.append(f"batched alerts/s below {BATCH_OVER_HEALTH:.0f}x health")
    if single["alerts_per_s"] < SINGLE_OVER_HEALTH * health["rps"]:
        failures.append(f"single-alert dedup below {SINGLE_OVER_HEALTH:.0%} of health")
    if batched["p99"] > GROUP_P99_MS:
        failures.append(f"p99 of a group above {GROUP_P99_MS:.0f} ms")
    if counts["batched"][1] - warm != args.alerts or counts["single"][1] != args.alerts:
        failures.append("stored occurrences do not add up to the alerts sent")
    for name, r in (("health", health), ("batched", batched), ("single", single)):
        if r["non_2xx"] or r["errors"]:
            failures.append(f"{name} had {r['non_2xx']} non-2xx answers")
    print(
        f"\ntargets: batched >= {BATCH_OVER_HEALTH:.0f}x health, single >= "
        f"{SINGLE_OVER_HEALTH:.0%} of health, p99 of a group < {GROUP_P99_MS:.0f} ms, "
        "occurrences add up exactly"
    )
    print("result: " + ("all targets met" if not failures else "MISSED: " + "; ".join(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
