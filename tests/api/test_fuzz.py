"""Schemathesis against the generated OpenAPI document of a live API, signed in as an admin and
as a viewer: no input it generates gets a 5xx, every status answered is documented, and every
answer, errors included (api/openapi.py declares their envelope), matches its schema and
content type. As the admin, invalid input must also be refused."""

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path

import httpx

from models.enums import Role
from tests.api.conftest import LiveServer
from tests.auth import issue_at
from tests.factories import incident_body

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
]


def schemathesis(live: LiveServer, token: str, *options: str) -> str:
    """The run's output; fails the test unless it passed."""
    command = [
        str(SCHEMATHESIS if SCHEMATHESIS.exists() else shutil.which("schemathesis")),
        "run", f"{live.url}/openapi.json",
        "--header", f"Authorization: Bearer {token}",
        "--seed", "20261126", "--workers", "2", "--no-color",
        # only the seed decides what is generated: no examples replayed from earlier runs
        "--generation-database", "none",
        "--exclude-path", "/api/sse/events",  # a stream never ends: tests/api/test_sse.py
        # they read Prefect, which these tests have not: a 503 (tests/pipelines/ has one)
        "--exclude-path-regex", "^/api/prefect/",
        *options,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-6000:]
    assert "generated" in result.stdout
    return result.stdout


def test_as_an_admin_generated_requests_find_no_5xx_and_no_schema_violation(
    live: LiveServer,
) -> None:
    output = schemathesis(
        live, live.token,
        "--checks", ",".join([*CHECKS, "negative_data_rejection"]),
        "--max-examples", "10",
        # it would revoke its own token (id 1) and spend the rest of the run signed out
        "--exclude-path", "/api/tokens/{token_id}/revoke",
    )  # fmt: skip

    assert "401 Unauthorized" not in output  # it was signed in throughout


def test_as_a_viewer_every_refusal_is_a_documented_403(live: LiveServer) -> None:
    token = asyncio.run(issue_at(live.database_url, "viewer@x.io", Role.VIEWER))

    output = schemathesis(
        live, token, "--checks", ",".join(CHECKS), "--phases", "fuzzing", "--max-examples", "5"
    )

    assert "403 Forbidden" in output  # schemathesis lists the operations that refused it
    assert "401 Unauthorized" not in output


async def test_an_execute_the_fuzzer_reaches_is_started_not_a_503(live: LiveServer) -> None:
    """What the fuzzer does when a generated execute passes validation (an incident it created,
    an action it was offered), made on purpose: the live server starts the run with the
    tests' launcher, as every other API test does, so the answer does not depend on whether
    this machine has a Prefect server (it once was a 503 "PREFECT_API_URL is not set")."""
    async with httpx.AsyncClient(base_url=live.url, headers=live.auth, timeout=30) as http:
        incident = (await http.post("/api/incidents", json=incident_body())).json()
        url = f"/api/playbooks/incidents/{incident['id']}/actions/execute"
        response = await http.post(url, json={"action_type": "rerun_eval"})

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "scheduled"
    assert response.json()["flow_run_id"]
