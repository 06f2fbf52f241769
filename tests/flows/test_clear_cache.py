"""clear_cache with the official Elasticsearch client against a local server that answers as
Elasticsearch does (no Elasticsearch server can be installed here): exactly what was sent, and
every way it can refuse."""

import json
import logging
from typing import Any

import pytest
from httpx import AsyncClient
from pytest_httpserver import HTTPServer

from flows import clear_cache, retries
from models.settings import Settings
from tests.factories import create_incident
from tests.fakes import RecordingLauncher

ES_HEADERS = {"X-Elastic-Product": "Elasticsearch"}
ES_TYPE = "application/vnd.elasticsearch+json;compatible-with=9"


def es_json(server: Any, body: dict[str, Any], status: int = 200) -> None:
    server.respond_with_data(json.dumps(body), status=status, headers=ES_HEADERS,
                             content_type=ES_TYPE)  # fmt: skip


def index_exists(httpserver: HTTPServer, index: str = "emails", status: int = 200) -> None:
    httpserver.expect_request(f"/{index}", method="HEAD").respond_with_data(
        "", status=status, headers=ES_HEADERS, content_type=ES_TYPE
    )


def url(incident: dict[str, Any], path: str) -> str:
    return f"/api/playbooks/incidents/{incident['id']}/actions/{path}"


BODY = {"action_type": "clear_cache", "params": {"index_name": "emails"}}


async def test_dry_run_checks_the_index_and_shows_the_request(
    es_client: AsyncClient, httpserver: HTTPServer
) -> None:
    index_exists(httpserver)
    incident = await create_incident(es_client, kind="budget")

    body = (await es_client.post(url(incident, "dry-run"), json=BODY)).json()

    assert body["status"] == "dry_run_success"
    assert body["details"]["request"] == (
        "POST /emails/_cache/clear?query=true&request=true&fielddata=true"
    )
    assert body["requires_approval"] is False
    assert body["rollback_available"] is False
    assert [r.method for r, _ in httpserver.log] == ["HEAD"]


async def test_a_missing_index_or_cluster_is_a_failed_dry_run_not_a_success(
    es_client: AsyncClient, client: AsyncClient, httpserver: HTTPServer
) -> None:
    index_exists(httpserver, status=404)
    incident = await create_incident(es_client, kind="budget")

    missing = (await es_client.post(url(incident, "dry-run"), json=BODY)).json()
    unconfigured = (await client.post(url(incident, "dry-run"), json=BODY)).json()

    assert missing["status"] == "dry_run_failed"
    assert "index 'emails' does not exist" in missing["message"]
    assert unconfigured["status"] == "dry_run_failed"
    assert "INTERVENE_ELASTICSEARCH_URL" in unconfigured["message"]


async def test_a_server_that_is_not_elasticsearch_is_refused(
    es_client: AsyncClient, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/emails", method="HEAD").respond_with_data("", status=200)
    incident = await create_incident(es_client, kind="budget")

    body = (await es_client.post(url(incident, "dry-run"), json=BODY)).json()

    assert body["status"] == "dry_run_failed"
    assert "not Elasticsearch" in body["message"]


async def test_execute_without_a_cluster_is_503_and_recorded_failed(client: AsyncClient) -> None:
    incident = await create_incident(client, kind="budget")

    response = await client.post(url(incident, "execute"), json=BODY)

    assert response.status_code == 503
    history = (await client.get(url(incident, "history"))).json()["actions"]
    assert [a["status"] for a in history] == ["failed"]


async def test_the_flow_clears_exactly_the_caches_asked_for(
    es_client: AsyncClient, httpserver: HTTPServer, recording_launcher: RecordingLauncher,
    flow_env: None,
) -> None:  # fmt: skip
    index_exists(httpserver)
    es_json(
        httpserver.expect_request("/emails/_cache/clear", method="POST"),
        {"_shards": {"total": 2, "successful": 2, "failed": 0}},
    )
    incident = await create_incident(es_client, kind="budget")
    body = {"action_type": "clear_cache",
            "params": {"index_name": "emails", "cache_types": ["request", "query"]}}  # fmt: skip
    started = await es_client.post(url(incident, "execute"), json=body)
    assert started.status_code == 200, started.text

    result = await clear_cache.clear_cache.fn(**recording_launcher.launches[-1].parameters)

    request = httpserver.log[-1][0]
    assert (request.method, request.path) == ("POST", "/emails/_cache/clear")
    assert dict(request.args) == {"query": "true", "request": "true", "fielddata": "false"}
    assert result["shards"] == {"total": 2, "successful": 2, "failed": 0}
    assert result["message"] == "Cleared query, request cache(s) of emails"


@pytest.mark.parametrize(
    ("status", "error", "expected"),
    [
        (404, "index_not_found_exception", "Elasticsearch answered 404 index_not_found_exception"),
        (500, "illegal_state_exception", "Elasticsearch answered 500 illegal_state_exception"),
    ],
)
async def test_the_flow_fails_with_elasticsearchs_reason(
    es_client: AsyncClient, httpserver: HTTPServer, recording_launcher: RecordingLauncher,
    flow_env: None, quick_retries: None, status: int, error: str, expected: str,
) -> None:  # fmt: skip
    index_exists(httpserver)
    es_json(
        httpserver.expect_request("/emails/_cache/clear", method="POST"),
        {"error": {"type": error, "reason": "boom"}, "status": status},
        status=status,
    )
    incident = await create_incident(es_client, kind="budget")
    await es_client.post(url(incident, "execute"), json=BODY)

    with pytest.raises(clear_cache.ActionFailed, match=expected):
        await clear_cache.clear_cache.fn(**recording_launcher.launches[-1].parameters)
    sent = [r for r, _ in httpserver.log if r.path == "/emails/_cache/clear"]
    assert len(sent) == (retries.ATTEMPTS if status >= 500 else 1)  # a 5xx may pass; a 404 not


@pytest.fixture
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retries, "FIRST_WAIT_SECONDS", 0.01)
    monkeypatch.setattr(retries, "MAX_WAIT_SECONDS", 0.05)


@pytest.mark.parametrize("status", [429, 503])
async def test_a_transient_refusal_is_retried_visibly_and_the_flow_succeeds(
    es_client: AsyncClient, httpserver: HTTPServer, recording_launcher: RecordingLauncher,
    flow_env: None, quick_retries: None, caplog: pytest.LogCaptureFixture, status: int,
) -> None:  # fmt: skip
    index_exists(httpserver)
    busy = {"error": {"type": "es_rejected_execution_exception", "reason": "busy"}}
    es_json(httpserver.expect_oneshot_request("/emails/_cache/clear", method="POST"),
            busy | {"status": status}, status=status)  # fmt: skip
    es_json(
        httpserver.expect_request("/emails/_cache/clear", method="POST"),
        {"_shards": {"total": 2, "successful": 2, "failed": 0}},
    )
    incident = await create_incident(es_client, kind="budget")
    await es_client.post(url(incident, "execute"), json=BODY)

    with caplog.at_level(logging.WARNING, logger="intervene.flows"):
        result = await clear_cache.clear_cache.fn(**recording_launcher.launches[-1].parameters)

    assert result["shards"]["successful"] == 2
    assert [r.getMessage().split(";")[0] for r in caplog.records
            if r.name == "intervene.flows"] == [
        f"clearing the caches of emails failed (attempt 1 of 4): ApiError: ApiError({status}, "
        "'es_rejected_execution_exception')"
    ]  # fmt: skip


async def test_an_unreachable_cluster_is_retried_then_fails_with_why(
    es_client: AsyncClient, es_settings: Settings, httpserver: HTTPServer,
    recording_launcher: RecordingLauncher, flow_env: None, quick_retries: None,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    index_exists(httpserver)
    incident = await create_incident(es_client, kind="budget")
    await es_client.post(url(incident, "execute"), json=BODY)
    httpserver.stop()  # the cluster goes away between the dry-run and the run

    with (
        caplog.at_level(logging.WARNING, logger="intervene.flows"),
        pytest.raises(clear_cache.ActionFailed, match="Elasticsearch unreachable"),
    ):
        await clear_cache.clear_cache.fn(**recording_launcher.launches[-1].parameters)
    httpserver.start()
    assert len([r for r in caplog.records if r.name == "intervene.flows"]) == 3
