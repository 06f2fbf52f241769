"""GET /metrics (parsed with prometheus-client's own parser), X-Request-ID, and the request id
on log lines: through the app in process, and through `intervene api` (uvicorn, JSON logs)."""

import asyncio
import contextvars
import io
import json
import logging
import os
import re
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from prometheus_client.parser import text_string_to_metric_families

from api.logs import RequestIdFilter, json_formatter, log_config
from api.main import create_app
from checks.runner import record
from deployments.stack import free_port, start, stop, wait_healthy
from models.base import utcnow
from models.db import Database
from models.enums import Role
from models.settings import Settings
from playbooks.catalog import load_checks
from tests.api.conftest import LiveServer
from tests.api.test_checks import measurement
from tests.api.test_playbooks import dry_run, execute
from tests.auth import bearer, issue, issue_at
from tests.databases import drop_database, new_database
from tests.factories import create_incident, create_incident_in, incident_body
from tests.fakes import RecordingLauncher
from tests.sse_client import open_stream

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
GENERATED_ID = re.compile(r"[0-9a-f]{32}")
SHIPPED = load_checks(Settings().checks_file)


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def series(samples: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: v for (n, labels), v in samples.items() if n == name}


async def scrape(client: AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


# -- /metrics -------------------------------------------------------------------------------


async def test_metrics_count_incidents_exactly_and_requests_by_route_template(
    client: AsyncClient,
) -> None:
    before = await scrape(client)
    made = [("open", "sev1"), ("open", "sev1"), ("acknowledged", "sev2"), ("resolved", "sev3")]
    ids = [(await create_incident_in(client, s, severity=sev))["id"] for s, sev in made]
    assert (await client.get(f"/api/incidents/{ids[0]}")).status_code == 200
    assert (await client.get("/api/incidents/987654321")).status_code == 404
    assert (await client.get("/no/such/page")).status_code == 404

    after = await scrape(client)

    incidents = series(after, "intervene_incidents")
    assert len(incidents) == 5 * 4  # every (status, severity) pair, absent ones at 0
    expected = {("open", "sev1"): 2, ("acknowledged", "sev2"): 1, ("resolved", "sev3"): 1}
    assert {
        (dict(labels)["status"], dict(labels)["severity"]): count
        for labels, count in incidents.items()
        if count
    } == expected

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    one = "/api/incidents/{incident_id}"
    requests = "intervene_http_requests_total"
    assert delta(requests, method="GET", route=one, status="200") == 1
    assert delta(requests, method="GET", route=one, status="404") == 1
    assert delta(requests, method="POST", route="/api/incidents", status="201") == 4
    assert delta(requests, method="GET", route="<unmatched>", status="404") == 1
    latency = "intervene_http_request_duration_seconds_count"
    assert delta(latency, method="GET", route=one, status="200") == 1
    assert delta("intervene_http_request_duration_seconds_sum", method="GET", route=one,
                 status="200") > 0  # fmt: skip
    routes = {dict(labels)["route"] for labels in series(after, requests)}
    assert not any("987654321" in r or "/no/such" in r for r in routes)  # templates, never URLs
    assert value(after, "intervene_sse_subscribers") == 0
    assert value(after, "intervene_build_info", version=after_version(after)) == 1
    stale = series(after, "intervene_check_stale")
    assert {dict(labels)["check_id"] for labels in stale} == set(SHIPPED)


def after_version(samples: Samples) -> str:
    (labels,) = series(samples, "intervene_build_info")
    return dict(labels)["version"]


async def test_actions_and_check_results_are_read_from_the_database(
    client: AsyncClient, app: FastAPI, db: Database, launcher: RecordingLauncher
) -> None:
    incident = await create_incident(client)
    previewed = await dry_run(client, incident["id"])
    executed = await execute(client, incident["id"])
    assert previewed.status_code == executed.status_code == 200, executed.text
    settings: Settings = app.state.settings
    passing, failing, erroring, silent = (
        SHIPPED[c]
        for c in ("triage_latency", "triage_cost", "triage_quality", "data_freshness_inbox")
    )
    await record(passing, measurement(passing, value=passing.threshold), db, settings)
    bad = failing.threshold * 10 + 1
    assert not failing.passes(bad)
    await record(failing, measurement(failing, value=bad), db, settings)
    await record(erroring, measurement(erroring, value=None, error="timeout"), db, settings)
    long_ago = -10 * settings.check_stale_intervals * silent.every
    await record(silent, measurement(silent, value=silent.threshold, offset=long_ago), db,
                 settings)  # fmt: skip

    samples = await scrape(client)

    actions = {
        (dict(labels)["type"], dict(labels)["status"]): count
        for labels, count in series(samples, "intervene_actions").items()
    }
    expected: dict[tuple[str, str], int] = {}
    for response in (previewed, executed):
        key = ("rerun_dbt", response.json()["status"])
        expected[key] = expected.get(key, 0) + 1
    assert actions == expected

    def result(check_id: str) -> dict[str, float]:
        return {
            dict(labels)["result"]: v
            for labels, v in series(samples, "intervene_check_last_result").items()
            if dict(labels)["check_id"] == check_id
        }

    assert result(passing.id) == {"passed": 1, "failed": 0, "error": 0}
    assert result(failing.id) == {"passed": 0, "failed": 1, "error": 0}
    assert result(erroring.id) == {"passed": 0, "failed": 0, "error": 1}
    assert result("planner_canary") == {}  # never ran: no series
    assert value(samples, "intervene_check_stale", check_id=silent.id) == 1
    assert value(samples, "intervene_check_stale", check_id=passing.id) == 0
    ran_at = value(samples, "intervene_check_last_run_timestamp_seconds", check_id=passing.id)
    assert abs(ran_at - utcnow().timestamp()) < 60


@pytest.fixture
async def limited(
    limited_to: Callable[[str], AbstractAsyncContextManager[FastAPI]],
) -> AsyncIterator[tuple[AsyncClient, AsyncClient]]:
    """An app allowing 2 requests a minute per address: a client, and a scraper at another
    address."""
    async with limited_to("2/minute") as app:
        headers = bearer(await issue(app.state.db))
        async with (
            AsyncClient(transport=ASGITransport(app=app), base_url="http://t",
                        headers=headers) as http,
            AsyncClient(transport=ASGITransport(app=app, client=("10.9.8.7", 1)),
                        base_url="http://t", headers=headers) as scraper,
        ):  # fmt: skip
            yield http, scraper


async def test_the_address_rate_limit_counts_its_refusals(
    limited: tuple[AsyncClient, AsyncClient],
) -> None:
    http, scraper = limited
    statuses = [(await http.get("/api/incidents")).status_code for _ in range(5)]
    refused = await http.get("/api/incidents", headers={"X-Request-ID": "too-many-1"})

    samples = await scrape(scraper)

    assert statuses == [200, 200, 429, 429, 429]
    assert refused.status_code == 429
    assert refused.headers["x-request-id"] == "too-many-1"
    assert value(samples, "intervene_rate_limit_refusals_total", limit="client_address") == 4
    # answered before routing, still labelled with the route's template
    assert value(samples, "intervene_http_requests_total", method="GET", route="/api/incidents",
                 status="429") == 4  # fmt: skip


async def test_the_per_key_incident_cap_counts_its_refusals(client: AsyncClient) -> None:
    before = await scrape(client)
    for _ in range(3):
        await create_incident_in(client, "resolved", key="INV_metrics_flood")

    response = await client.post("/api/incidents", json=incident_body(key="INV_metrics_flood"))
    after = await scrape(client)

    assert response.status_code == 429
    name = "intervene_rate_limit_refusals_total"
    assert value(after, name, limit="incident_key") - value(before, name, limit="incident_key") == 1
    assert value(after, name, limit="client_address") == value(before, name, limit="client_address")


async def test_metrics_need_a_viewer_token(client: AsyncClient, app: FastAPI, db: Database) -> None:
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as anonymous:
        refused = await anonymous.get("/metrics")
        viewer = await anonymous.get(
            "/metrics", headers=bearer(await issue(db, "prom", Role.VIEWER))
        )

    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthorized"
    assert refused.headers["www-authenticate"] == "Bearer"
    assert viewer.status_code == 200
    assert "intervene_incidents" in viewer.text


async def test_metrics_auth_disabled_opens_only_the_metrics(
    settings: Settings, recording_launcher: RecordingLauncher, client: AsyncClient
) -> None:
    app = create_app(
        settings.model_copy(update={"metrics_auth": "disabled"}), launcher=recording_launcher
    )
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as anonymous,
    ):
        metrics = await anonymous.get("/metrics")
        incidents = await anonymous.get("/api/incidents")

    assert metrics.status_code == 200
    assert value(parse(metrics.text), "intervene_rate_limit_refusals_total",
                 limit="client_address") == 0  # fmt: skip
    assert incidents.status_code == 401


# -- X-Request-ID ---------------------------------------------------------------------------


async def test_a_request_id_is_honoured_and_returned(client: AsyncClient) -> None:
    response = await client.get("/api/incidents", headers={"X-Request-ID": "trace:abc-123/4"})

    assert response.status_code == 200
    assert response.headers["x-request-id"] == "trace:abc-123/4"


async def test_a_request_id_is_generated_when_absent(client: AsyncClient) -> None:
    first = (await client.get("/api/incidents")).headers["x-request-id"]
    second = (await client.get("/api/incidents")).headers["x-request-id"]

    assert GENERATED_ID.fullmatch(first)
    assert GENERATED_ID.fullmatch(second)
    assert first != second


@pytest.mark.parametrize(
    "bad",
    [b"x" * 65, b"two words", b"tab\there", b"line\x01break", "café".encode(), b""],
    ids=["too-long", "space", "tab", "control", "non-ascii", "empty"],
)
async def test_a_bad_request_id_is_replaced(client: AsyncClient, bad: bytes) -> None:
    response = await client.get("/api/incidents", headers={"X-Request-ID": bad})

    assert response.status_code == 200
    assert GENERATED_ID.fullmatch(response.headers["x-request-id"])


async def test_error_envelopes_carry_the_request_id(client: AsyncClient) -> None:
    missing = await client.get("/api/incidents/424242", headers={"X-Request-ID": "req-404"})
    invalid = await client.post("/api/incidents", json={}, headers={"X-Request-ID": "req-422"})
    unrouted = await client.get("/nowhere", headers={"X-Request-ID": "req-unrouted"})

    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")
    assert missing.headers["x-request-id"] == "req-404"
    assert (invalid.status_code, invalid.json()["error"]["code"]) == (422, "validation_error")
    assert invalid.headers["x-request-id"] == "req-422"
    assert unrouted.headers["x-request-id"] == "req-unrouted"


# -- log lines ------------------------------------------------------------------------------


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """What `intervene.api` logs, as the JSON formatter writes it."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(json_formatter())
    logger = logging.getLogger("intervene.api")
    logger.addHandler(handler)
    try:
        yield out
    finally:
        logger.removeHandler(handler)


@pytest.fixture
async def talking_client(settings: Settings) -> AsyncIterator[AsyncClient]:
    """An app with one route that logs and one that fails unexpectedly (no database needed)."""
    app: FastAPI = create_app(settings)

    @app.get("/api/talk")
    async def talk() -> dict[str, str]:
        logging.getLogger("intervene.api").warning("talking while handling a request")
        return {}

    @app.get("/api/explode")
    async def explode() -> None:
        raise RuntimeError("unexpected")

    transport = ASGITransport(app=app, raise_app_exceptions=False)
    async with AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


def logged(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


async def test_log_lines_written_during_a_request_carry_its_id(
    talking_client: AsyncClient, json_lines: io.StringIO
) -> None:
    response = await talking_client.get("/api/talk", headers={"X-Request-ID": "talk-1"})

    assert response.status_code == 200
    (line,) = [r for r in logged(json_lines) if r["message"] == "talking while handling a request"]
    assert line["request_id"] == "talk-1"
    assert line["level"] == "WARNING"
    assert line["logger"] == "intervene.api"
    assert "time" in line


async def test_a_500_carries_the_request_id_on_the_answer_and_the_log_line(
    talking_client: AsyncClient, json_lines: io.StringIO
) -> None:
    response = await talking_client.get("/api/explode", headers={"X-Request-ID": "boom-1"})

    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert response.headers["x-request-id"] == "boom-1"
    (line,) = [r for r in logged(json_lines) if r["message"].startswith("unhandled error")]
    assert line["request_id"] == "boom-1"
    assert "RuntimeError" in line["exc_info"]


async def test_text_lines_show_the_request_id_or_a_dash(talking_client: AsyncClient) -> None:
    config = log_config("text")
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(RequestIdFilter(**{k: v for k, v in config["filters"]["request_id"].items()
                                         if k != "()"}))  # fmt: skip
    handler.setFormatter(logging.Formatter(config["formatters"]["default"]["format"]))
    logger = logging.getLogger("intervene.api")
    logger.addHandler(handler)
    try:
        await talking_client.get("/api/talk", headers={"X-Request-ID": "talk-2"})
        # in a context of its own: ASGITransport runs the app in the test's (a server gives
        # each request a task, and so a context, of its own)
        contextvars.Context().run(logger.warning, "outside any request")
    finally:
        logger.removeHandler(handler)

    lines = out.getvalue().splitlines()
    assert any(line.endswith("[talk-2] talking while handling a request") for line in lines)
    assert lines[-1].endswith("WARNING intervene.api [-] outside any request")


# -- `intervene api`: uvicorn, its JSON access lines, the stream ------------------------------


@pytest.fixture(scope="module")
def cli_server(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveServer, Path]]:
    """`intervene api` on a database of its own, and its log file."""
    base = tmp_path_factory.mktemp("cli-api")
    database_url = new_database(backend, base)
    port, log = free_port(), base / "api.log"
    env = os.environ | {
        "INTERVENE_DATABASE_URL": database_url,
        "INTERVENE_RATE_LIMIT": "1000000/hour",
        "INTERVENE_LOG_FORMAT": "json",
    }
    command = [sys.executable, "-m", "intervene_cli", "api", "--port", str(port)]
    process = start(command, env, log)
    try:
        server = LiveServer(f"http://127.0.0.1:{port}", database_url, process, "")
        wait_healthy(f"{server.url}/api/health", process, seconds=90)
        with ThreadPoolExecutor(1) as pool:  # async tests call this with their loop running
            server.token = pool.submit(asyncio.run, issue_at(database_url)).result()
        yield server, log
    finally:
        stop([process])
        drop_database(database_url)


async def test_the_stream_carries_the_request_id_and_counts_as_a_subscriber(
    cli_server: tuple[LiveServer, Path],
) -> None:
    server, log = cli_server
    path = f"/api/sse/events?access_token={server.token}"
    async with (
        open_stream(server, path, headers={"X-Request-ID": "stream-1"}) as stream,
        httpx.AsyncClient(base_url=server.url, headers=server.auth, timeout=30) as http,
    ):
        assert (await stream.next()).event == "connected"
        assert stream.response.headers["x-request-id"] == "stream-1"
        during = parse((await http.get("/metrics")).text)

    sse = {"method": "GET", "route": "/api/sse/events", "status": "200"}
    assert value(during, "intervene_sse_subscribers") == 1
    assert value(during, "intervene_http_requests_total", **sse) == 1  # counted at its start
    assert value(during, "intervene_http_request_duration_seconds_count", **sse) == 1
    assert value(during, "intervene_http_request_duration_seconds_sum", **sse) < 5

    text = log.read_text()
    assert server.token not in text  # the ?access_token= is masked
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    access = [r for r in lines if r["logger"] == "uvicorn.access" and "sse/events" in r["message"]]
    assert access, text[-3000:]
    assert access[0]["request_id"] == "stream-1"
    assert "access_token=***" in access[0]["message"]
    assert any(r["message"].startswith("database ready") for r in lines)
    assert not any("color_message" in r for r in lines)  # uvicorn's terminal colours
