"""GET /api/oncall on the demo file, and `intervene oncall` saying the same; a bad file stops
the app at start."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from api.main import create_app
from checks.config import ConfigError
from models.settings import Settings

CLI = [sys.executable, "-m", "intervene_cli", "oncall"]
MONDAY_EARLY = "2026-12-07T08:59:59+01:00"  # a second before data-platform's hand-off


async def test_who_is_on_call_now_and_next_for_each_schedule(client: AsyncClient) -> None:
    answer = await client.get("/api/oncall", params={"at": MONDAY_EARLY})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["at"] == "2026-12-07T07:59:59Z"
    data, ml = body["schedules"]
    assert (data["name"], data["time_zone"]) == ("data-platform", "Europe/Paris")
    assert data["now"] == {
        "person": {
            "id": "ada",
            "name": "Ada Lovelace",
            "email": "ada@example.com",
            "slack_user_id": "U0ADA0001",
        },
        "starts_at": "2026-11-30T08:00:00Z",
        "ends_at": "2026-12-07T08:00:00Z",
        "override_id": None,
    }
    assert data["next"]["person"]["id"] == "grace"
    assert data["next"]["starts_at"] == "2026-12-07T08:00:00Z"
    assert (ml["now"]["person"]["id"], ml["next"]["person"]["id"]) == ("grace", "edsger")


async def test_without_at_it_is_now(client: AsyncClient) -> None:
    body = (await client.get("/api/oncall")).json()
    for schedule in body["schedules"]:
        assert schedule["now"]["starts_at"] <= body["at"] < schedule["now"]["ends_at"]


async def test_an_instant_is_iso_8601_and_utc_without_an_offset(client: AsyncClient) -> None:
    answer = await client.get("/api/oncall", params={"at": "2026-12-07T07:59:59"})
    assert answer.json()["at"] == "2026-12-07T07:59:59Z"
    for wrong in ("0.5", "tomorrow", "2026-13-07T08:00:00Z"):
        answer = await client.get("/api/oncall", params={"at": wrong})
        assert answer.status_code == 422, wrong
        assert answer.json()["error"]["code"] == "validation_error"


async def test_it_needs_a_token(app: FastAPI) -> None:
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as anyone:
        answer = await anyone.get("/api/oncall")
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "unauthorized"


def test_a_file_with_an_error_stops_the_app_at_start(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "oncall.yml"
    path.write_text("people: []\nschedules:\n  - name: x\n    rotation: {members: [nobody]}\n")
    with pytest.raises(ConfigError, match=r"oncall.yml:4: schedules.0.rotation.start"):
        create_app(settings.model_copy(update={"oncall_file": path}))


async def test_the_cli_prints_what_the_api_answers_overrides_included(
    client: AsyncClient, database_url: str
) -> None:
    made = await client.post(
        "/api/oncall/overrides",
        json={"schedule": "ml-platform", "person": "ada", "duration_seconds": 3600},
    )
    assert made.status_code == 201, made.text
    at = made.json()["starts_at"]
    api = (await client.get("/api/oncall", params={"at": at})).json()
    env = {"INTERVENE_DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"}
    printed = subprocess.run(
        [*CLI, "--at", at.replace("Z", "+00:00"), "--json"],
        env=env, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert json.loads(printed.stdout) == api
    assert api["schedules"][1]["now"]["override_id"] == made.json()["id"]
    printed = subprocess.run(
        [*CLI, "--at", MONDAY_EARLY], env=env, capture_output=True, text=True, timeout=120
    )
    assert printed.stdout.splitlines()[:3] == [
        "data-platform (Europe/Paris)",
        "  now   Ada Lovelace <ada@example.com>  until Mon 2026-12-07 09:00 CET",
        "  next  Grace Hopper <grace@example.com>  from Mon 2026-12-07 09:00 CET",
    ]
