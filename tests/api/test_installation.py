"""Two installations on one Prefect server never share a flow run: keys and tags carry each
installation's id, and the state hooks ignore a run that is another installation's."""

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack

import pytest
from httpx import ASGITransport, AsyncClient

from api.main import create_app
from flows import hooks
from flows.admission import ForeignRun
from models.enums import ActionStatus
from models.installation import installation_tag
from models.settings import Settings, get_settings
from tests.auth import bearer, issue
from tests.factories import create_incident
from tests.fakes import RecordingLauncher

FOREIGN = installation_tag("00000000-0000-4000-8000-000000000000")
RERUN = {"action_type": "rerun_dbt", "params": {"task_id": "t", "models": ["inbox_emails"]}}


@pytest.fixture
async def installations(
    settings: Settings, fresh_database_url: Callable[[], str]
) -> AsyncIterator[list[tuple[AsyncClient, RecordingLauncher, str]]]:
    """Two apps, each on a new database of its own, as two teams would run them."""
    made = []
    async with AsyncExitStack() as stack:
        for _ in range(2):
            launcher = RecordingLauncher()
            url = fresh_database_url()
            app = create_app(settings.model_copy(update={"database_url": url}), launcher=launcher)
            await stack.enter_async_context(app.router.lifespan_context(app))
            client = await stack.enter_async_context(AsyncClient(
                transport=ASGITransport(app=app), base_url="http://test",
                headers=bearer(await issue(app.state.db)),
            ))  # fmt: skip
            made.append((client, launcher, url))
        yield made


async def test_the_same_action_id_in_two_installations_is_two_runs(
    installations: list[tuple[AsyncClient, RecordingLauncher, str]],
) -> None:
    launched = []
    for client, launcher, _ in installations:
        incident = await create_incident(client)
        response = await client.post(
            f"/api/playbooks/incidents/{incident['id']}/actions/execute", json=RERUN
        )
        assert response.status_code == 200, response.text
        launched.append((response.json()["action_id"], launcher.launches[-1]))

    (first_id, first), (second_id, second) = launched
    assert first_id == second_id  # both databases are new: the same ids
    assert first.key != second.key  # and yet two flow runs
    theirs = [tag for tag in first.tags if tag.startswith("installation:")]
    ours = [tag for tag in second.tags if tag.startswith("installation:")]
    assert len(theirs) == len(ours) == 1
    assert theirs != ours
    assert first.key == f"intervene-{theirs[0].removeprefix('installation:')}-action-{first_id}"


@pytest.fixture
async def executed_here(
    installations: list[tuple[AsyncClient, RecordingLauncher, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[tuple[AsyncClient, RecordingLauncher, int, int]]:
    """An execute in the first installation, whose database the flows' hooks then write to
    (as a worker of that installation would): its client, launcher, incident and action ids."""
    (client, launcher, url), _ = installations
    incident = await create_incident(client)
    started = await client.post(
        f"/api/playbooks/incidents/{incident['id']}/actions/execute", json=RERUN
    )
    monkeypatch.setenv("INTERVENE_DATABASE_URL", url)
    get_settings.cache_clear()
    yield client, launcher, incident["id"], started.json()["action_id"]
    get_settings.cache_clear()


async def test_hooks_ignore_a_run_of_another_installation(
    executed_here: tuple[AsyncClient, RecordingLauncher, int, int],
) -> None:
    client, launcher, incident_id, action_id = executed_here
    history = f"/api/playbooks/incidents/{incident_id}/actions/history"

    await hooks.record_state(action_id, ActionStatus.SUCCESS, tags=["intervene", FOREIGN])
    assert [a["status"] for a in (await client.get(history)).json()["actions"]] == ["scheduled"]

    await hooks.record_state(action_id, ActionStatus.SUCCESS, tags=launcher.launches[-1].tags)
    assert [a["status"] for a in (await client.get(history)).json()["actions"]] == ["success"]


async def test_a_flow_body_refuses_a_run_of_another_installation(
    executed_here: tuple[AsyncClient, RecordingLauncher, int, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Both installations' workers serve the same deployment names: a foreign run that reached
    this worker fails loudly (before, it returned 'nothing to do' and ended Completed, which its
    own reconciler then recorded as a success that never ran)."""
    from prefect.runtime import flow_run

    _, launcher, _, action_id = executed_here
    monkeypatch.setitem(flow_run.FIELDS, "tags", lambda: ["intervene", FOREIGN])
    with pytest.raises(ForeignRun, match="belongs to another installation"):
        await hooks.begin(action_id)

    monkeypatch.setitem(flow_run.FIELDS, "tags", lambda: launcher.launches[-1].tags)
    assert (await hooks.begin(action_id)).action_id == action_id
