"""The real PrefectLauncher when there is no Prefect to talk to: a clear 503, the action kept."""

import time
from collections.abc import AsyncIterator

import pytest
from httpx import ASGITransport, AsyncClient
from prefect.settings import PREFECT_API_URL, temporary_settings

from api.launcher import PrefectLauncher
from api.main import create_app
from models.settings import Settings
from tests.auth import bearer, issue
from tests.factories import create_incident

pytestmark = [
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


@pytest.fixture
async def unreachable_client(settings: Settings) -> AsyncIterator[AsyncClient]:
    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        app = create_app(settings, launcher=PrefectLauncher())
        async with app.router.lifespan_context(app):
            transport = ASGITransport(app=app)
            headers = bearer(await issue(app.state.db))
            async with AsyncClient(
                transport=transport, base_url="http://test", headers=headers
            ) as http:
                yield http


async def test_unreachable_prefect_is_a_503_and_the_action_is_recorded_failed(
    unreachable_client: AsyncClient, client: AsyncClient
) -> None:
    incident = await create_incident(client)
    started = time.monotonic()

    response = await unreachable_client.post(
        f"/api/playbooks/incidents/{incident['id']}/actions/execute",
        json={"action_type": "rerun_dbt", "params": {"task_id": "t", "models": ["inbox_emails"]}},
    )

    assert time.monotonic() - started < 20
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "unavailable"
    assert "could not be started" in error["message"]
    history = (
        await client.get(f"/api/playbooks/incidents/{incident['id']}/actions/history")
    ).json()["actions"]
    assert [a["status"] for a in history] == ["failed"]
    assert history[0]["message"].startswith("Failed to start: Prefect could not start")
