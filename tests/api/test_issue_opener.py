"""GitHub issues for new incidents, against a local HTTP server that answers like GitHub."""

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from pydantic import SecretStr
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from api.main import create_app
from checks.runner import record
from models.db import Database
from models.services.checks import Measurement
from models.settings import Settings
from playbooks.catalog import load_checks
from tests.factories import incident_body
from tests.fakes import RecordingLauncher

ISSUES = "/repos/acme/data-platform/issues"


@pytest.fixture
def github_settings(settings: Settings, httpserver: HTTPServer) -> Settings:
    return settings.model_copy(
        update={
            "github_repo": "acme/data-platform",
            "github_token": SecretStr("ghp_test_token"),
            "github_api_url": httpserver.url_for("/"),
        }
    )


@pytest.fixture
async def github_client(
    github_settings: Settings, client: AsyncClient
) -> AsyncIterator[AsyncClient]:
    app: FastAPI = create_app(github_settings, launcher=RecordingLauncher())
    transport = ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        AsyncClient(
            transport=transport,
            base_url="http://test",
            headers={"Authorization": client.headers["Authorization"]},
        ) as http,
    ):
        yield http


def created_issue(request: Request) -> Response:
    body = json.loads(request.data)
    number = 4242
    answer = {"number": number, "title": body["title"],
              "html_url": f"https://github.com/acme/data-platform/issues/{number}"}  # fmt: skip
    return Response(json.dumps(answer), status=201, content_type="application/json")


async def timeline_verbs(client: AsyncClient, incident_id: int) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = (
        await client.get(f"/api/incidents/{incident_id}/timeline")
    ).json()["entries"]
    return entries


async def test_a_new_incident_gets_a_github_issue(
    github_client: AsyncClient, httpserver: HTTPServer
) -> None:
    httpserver.expect_oneshot_request(
        ISSUES, method="POST", headers={"Authorization": "Bearer ghp_test_token"}
    ).respond_with_handler(created_issue)

    response = await github_client.post("/api/incidents", json=incident_body(severity="sev1"))

    assert response.status_code == 201
    httpserver.check_assertions()
    sent = json.loads(httpserver.log[0][0].data)
    assert sent["title"].startswith("[sev1] ")
    assert sent["labels"] == ["incident"]
    assert f"incident **{response.json()['id']}**" in sent["body"]
    incident = (await github_client.get(f"/api/incidents/{response.json()['id']}")).json()
    assert incident["issue_url"] == "https://github.com/acme/data-platform/issues/4242"
    entries = await timeline_verbs(github_client, incident["id"])
    assert [e["verb"] for e in entries] == ["create", "issue_opened"]


async def test_a_repeat_alert_opens_no_second_issue(
    github_client: AsyncClient, httpserver: HTTPServer
) -> None:
    httpserver.expect_oneshot_request(ISSUES, method="POST").respond_with_handler(created_issue)
    body = incident_body()

    await github_client.post("/api/incidents", json=body)
    repeat = await github_client.post("/api/incidents", json=body)

    assert repeat.status_code == 200
    assert len(httpserver.log) == 1


async def test_github_failing_is_noted_and_never_blocks_the_incident(
    github_client: AsyncClient, httpserver: HTTPServer
) -> None:
    httpserver.expect_oneshot_request(ISSUES, method="POST").respond_with_data(
        '{"message": "Bad credentials"}', status=401, content_type="application/json"
    )

    response = await github_client.post("/api/incidents", json=incident_body())

    assert response.status_code == 201
    incident = (await github_client.get(f"/api/incidents/{response.json()['id']}")).json()
    assert incident["issue_url"] is None
    failed = (await timeline_verbs(github_client, incident["id"]))[-1]
    assert failed["verb"] == "issue_open_failed"
    assert "HTTP 401" in failed["notes"]
    assert "ghp_test_token" not in failed["notes"]


async def test_incidents_opened_by_checks_get_issues_too(
    github_settings: Settings, client: AsyncClient, db: Database, httpserver: HTTPServer
) -> None:
    httpserver.expect_oneshot_request(ISSUES, method="POST").respond_with_handler(created_issue)
    spec = load_checks(github_settings.checks_file)["triage_cost"]
    failing = Measurement(
        check_id=spec.id, started_at=datetime.now(UTC), duration_ms=1.0,
        threshold=spec.threshold, value=99.0, passed=False,
    )  # fmt: skip

    run = await record(spec, failing, db, github_settings)

    incident = (await client.get(f"/api/incidents/{run.incident_id}")).json()
    assert incident["issue_url"] == "https://github.com/acme/data-platform/issues/4242"


async def test_a_check_run_from_the_api_opens_its_issue_after_answering(
    github_client: AsyncClient, client: AsyncClient, httpserver: HTTPServer
) -> None:
    """The run is answered first; its incident's issue follows (a background task), so a slow
    GitHub never holds up `POST /api/checks/{id}/run`."""
    httpserver.expect_oneshot_request(ISSUES, method="POST").respond_with_handler(created_issue)

    run = (await github_client.post("/api/checks/planner_canary/run")).json()

    assert run["passed"] is False
    incident = (await client.get(f"/api/incidents/{run['incident_id']}")).json()
    assert incident["issue_url"] == "https://github.com/acme/data-platform/issues/4242"
    httpserver.check_assertions()
