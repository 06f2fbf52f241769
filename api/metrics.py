"""Prometheus metrics, served at GET /metrics (api/routes/metrics.py).

Two kinds of families:

- this process's counters: HTTP requests and their latency by method, route template and
  status, the rate-limit refusals, and the audit entries that could not be written. They live
  in a registry of the app's own, not the library's global one, so that several apps in one
  process (the tests) do not collide.
- gauges read when scraped: incidents by status and severity, actions by type and status and
  the checks' last results, from the database (the same numbers whichever process answers),
  and the SSE subscribers of the process that answers; so are automatic remediation's
  families, a counter and a histogram whose counts are rows of `remediations`.

Counters are per process. With several uvicorn workers, start them with PROMETHEUS_MULTIPROC_DIR
set to an empty directory: prometheus-client then keeps every worker's counters in files there,
and a scrape sums them (MultiProcessCollector). Empty the directory before each start.
"""

import os
import time
from collections.abc import Iterable, Sequence
from datetime import datetime

from fastapi.routing import RouteContext, iter_route_contexts
from prometheus_client import CollectorRegistry, Counter, Histogram, Metric
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.sse import Broadcaster
from checks.service import Checks
from models.base import utcnow
from models.check_run import CheckRun
from models.db import Database, transaction
from models.enums import RemediationStep, RunTrigger
from models.remediation import Remediation
from models.services import checks as checks_service
from models.services import counts
from models.version import VERSION

UNMATCHED = "<unmatched>"  # every URL no route answers: one label, whatever was asked for
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
LIMITS = ("client_address", "incident_actions", "incident_key")  # see RateLimited.limit
LABELS = ["method", "route", "status"]
# detection (the failing check run) to verification (the run that passes after the fix)
DETECT_TO_VERIFIED_BUCKETS = (5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)


class Metrics:
    """The app's own registry and the counters the middleware and the error handlers feed."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "intervene_http_requests",
            "HTTP requests answered, counted when the answer starts.",
            LABELS,
            registry=self.registry,
        )
        self.latency = Histogram(
            "intervene_http_request_duration_seconds",
            "Time to answer an HTTP request (to the last byte; an event stream: to its start).",
            LABELS,
            registry=self.registry,
        )
        self.refusals = Counter(
            "intervene_rate_limit_refusals",
            "Requests refused with 429, by the limit that refused them.",
            ["limit"],
            registry=self.registry,
        )
        for limit in LIMITS:  # present (at 0) before the first refusal: rate() works from there
            self.refusals.labels(limit)
        self.alerts = Counter(
            "intervene_alerts",
            "Alerts taken in from other tools, by source and what became of them (silenced,"
            " pending, related, ignored and capped opened nothing and notified no one).",
            ["source", "outcome"],
            registry=self.registry,
        )
        self.alert_refusals = Counter(
            "intervene_alerts_refused",
            "Alerts (or whole payloads) refused, by source and reason (invalid, unauthorized).",
            ["source", "reason"],
            registry=self.registry,
        )
        self.audit_failures = Counter(
            "intervene_audit_write_failures",
            "State-changing requests answered but missing from the audit log (the write failed).",
            registry=self.registry,
        )

    def alerts_taken(self, source: str, outcome: str, count: int = 1) -> None:
        self.alerts.labels(source, outcome).inc(count)

    def alert_refused(self, source: str, reason: str) -> None:
        self.alert_refusals.labels(source, reason).inc()

    def refused(self, limit: str) -> None:
        self.refusals.labels(limit).inc()

    def exposition(self, accept: str | None, scraped: list[Metric]) -> tuple[bytes, str]:
        """The process's counters and the `scraped` families, in the format `accept` asks for
        (the Prometheus text format unless it asks for OpenMetrics)."""
        encode, content_type = choose_encoder(accept or "")
        return encode(_Families([*self._counters(), *scraped])), content_type

    def _counters(self) -> Iterable[Metric]:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # every worker's, from their files
            merged = CollectorRegistry()
            MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
            return merged.collect()
        return self.registry.collect()


class _Families(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


class RequestMetrics:
    """Counts every answer when it starts, and times it to its last byte.

    An event stream lasts as long as its client stays: it is timed to its start (the
    http.response.start message), so that its hours do not swamp the histogram. Outside the
    Gate, so that the Gate's own refusals (429, 413) are counted too."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = RouteTemplates()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        method = scope["method"] if scope["method"] in METHODS else "other"
        labels: tuple[str, str, str] | None = None
        timing = True

        def answered(status: int) -> None:
            nonlocal labels
            labels = (method, self.routes.of(scope), str(status))
            self.metrics.requests.labels(*labels).inc()

        def observe() -> None:
            nonlocal timing
            timing = False
            assert labels is not None
            self.metrics.latency.labels(*labels).observe(time.perf_counter() - started)

        async def send_timed(message: Message) -> None:
            if timing:  # an event stream's frames skip all of this
                if message["type"] == "http.response.start":
                    answered(message["status"])
                    if _is_stream(message):
                        observe()
                elif message["type"] == "http.response.body" and not message.get("more_body"):
                    observe()
            await send(message)

        try:
            await self.app(scope, receive, send_timed)
        finally:
            if labels is None:  # it raised before answering: the server error handler answers
                answered(500)
            if timing:
                observe()


def _is_stream(start: Message) -> bool:
    return any(
        key.lower() == b"content-type" and value.startswith(b"text/event-stream")
        for key, value in start.get("headers", ())
    )


class RouteTemplates:
    """The template of the route that answered (`/api/incidents/{incident_id}`), never the URL.

    The router notes the route in the scope, but an included router's route without its
    prefix: the full templates come from FastAPI's route contexts, read once (every route is
    in place by the first request). A request answered before routing (the Gate's refusals) is
    matched here."""

    def __init__(self) -> None:
        self._contexts: list[RouteContext] | None = None
        self._by_route: dict[int, str] = {}

    def of(self, scope: Scope) -> str:
        if self._contexts is None:
            self._contexts = list(iter_route_contexts(getattr(scope.get("app"), "routes", [])))
            self._by_route = {
                id(c.original_route): c.path_format or UNMATCHED for c in self._contexts
            }
        route = scope.get("route")
        if route is not None:
            template = self._by_route.get(id(route)) or getattr(route, "path_format", None)
            return template if isinstance(template, str) else UNMATCHED
        partial = None
        for context in self._contexts:
            if context.path_regex is None or not context.path_regex.match(scope["path"]):
                continue
            if context.methods is None or scope["method"] in context.methods:
                return context.path_format or UNMATCHED
            partial = partial or context.path_format  # the 405's route
        return partial or UNMATCHED


async def scraped(database: Database, checks: Checks, broadcaster: Broadcaster) -> list[Metric]:
    """The families read at scrape time: six queries in one read transaction, and the SSE
    subscribers of this process."""
    async with transaction(database.reader) as session:
        incidents = await counts.incident_counts(session)
        actions = await counts.action_counts(session)
        last_runs = await checks_service.last_runs(session, list(checks.specs))
        scheduled = await checks_service.last_runs(
            session, list(checks.specs), trigger=RunTrigger.SCHEDULE
        )
        remediation = await _remediation_families(session)
    info = GaugeMetricFamily("intervene_build_info", "The running version.", labels=["version"])
    info.add_metric([VERSION], 1)
    subscribers = GaugeMetricFamily(
        "intervene_sse_subscribers",
        "Clients of the event stream connected to the process that answered this scrape.",
        value=len(broadcaster.subscribers),
    )
    by_status = GaugeMetricFamily(
        "intervene_incidents", "Incidents by status and severity.", labels=["status", "severity"]
    )
    for (status, severity), count in sorted(incidents.items()):
        by_status.add_metric([status.value, severity.value], count)
    by_type = GaugeMetricFamily(
        "intervene_actions", "Playbook actions by type and status.", labels=["type", "status"]
    )
    for (kind, action_status), count in sorted(actions.items()):
        by_type.add_metric([kind, action_status], count)
    checked = _check_families(checks, last_runs, scheduled)
    return [info, subscribers, by_status, by_type, *checked, *remediation]


async def _remediation_families(session: AsyncSession) -> list[Metric]:
    """Automatic attempts that executed an action and finished, by action type and the step
    they ended in; and how long verified fixes took from detection."""
    ended = await session.execute(
        select(Remediation.action_type, Remediation.step, func.count())
        .where(Remediation.executed_at.is_not(None), Remediation.finished_at.is_not(None))
        .group_by(Remediation.action_type, Remediation.step)
    )
    runs = CounterMetricFamily(
        "intervene_remediation_runs",
        "Automatic remediation attempts that executed an action and finished, by action type"
        " and outcome (the step they ended in: verified, done, ineffective, failed, cancelled).",
        labels=["action_type", "outcome"],
    )
    for action_type, step, count in sorted((a, s, n) for a, s, n in ended):
        runs.add_metric([action_type, step], count)
    verified = await session.execute(
        select(Remediation.detected_at, Remediation.verified_at).where(
            Remediation.step == RemediationStep.VERIFIED.value,
            Remediation.verified_at.is_not(None),
        )
    )
    return [runs, _detect_to_verified([(found, fixed) for found, fixed in verified])]


def _detect_to_verified(times: Sequence[tuple[datetime, datetime | None]]) -> Metric:
    seconds = [(fixed - found).total_seconds() for found, fixed in times if fixed is not None]
    buckets = [
        (str(bound), float(sum(s <= bound for s in seconds)))
        for bound in DETECT_TO_VERIFIED_BUCKETS
    ]
    return HistogramMetricFamily(
        "intervene_remediation_detect_to_verified_seconds",
        "From the check run that found a failure to the verification run that found it fixed,"
        " for each verified automatic remediation.",
        buckets=[*buckets, ("+Inf", float(len(seconds)))],
        sum_value=sum(seconds),
    )


def _check_families(
    checks: Checks, last_runs: dict[str, CheckRun], scheduled: dict[str, CheckRun]
) -> list[Metric]:
    result = GaugeMetricFamily(
        "intervene_check_last_result",
        "1 for the outcome of each check's newest run (passed, failed, or error: its query"
        " failed), 0 for the others; no series for a check that never ran.",
        labels=["check_id", "result"],
    )
    ran_at = GaugeMetricFamily(
        "intervene_check_last_run_timestamp_seconds",
        "When each check's newest run started (Unix time).",
        labels=["check_id"],
    )
    stale = GaugeMetricFamily(
        "intervene_check_stale",
        "1 when a check has not run for INTERVENE_CHECK_STALE_INTERVALS of its intervals (the"
        " watchdog then opens an incident).",
        labels=["check_id"],
    )
    now = utcnow()
    for check_id, spec in sorted(checks.specs.items()):
        last = last_runs.get(check_id)
        stale.add_metric([check_id], int(checks.is_stale(spec, scheduled.get(check_id), now)))
        if last is None:
            continue
        outcome = "error" if last.passed is None else "passed" if last.passed else "failed"
        for name in ("passed", "failed", "error"):
            result.add_metric([check_id, name], int(name == outcome))
        ran_at.add_metric([check_id], last.started_at.timestamp())
    return [result, ran_at, stale]
