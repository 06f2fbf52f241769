"""The reconciler against a real Prefect server: silence counts from when a run really started,
a run still queued is never judged dead, and another installation's runs are never adopted.

Each test records its actions in a database of its own, which the stack's worker (and its own
reconciler) never reads: only the `reconcile_once` called here decides.
"""

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest
from prefect import get_client
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import StateType
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.states import Pending, Running

from deployments.reconciler import reconcile_once
from models.base import utcnow
from models.db import Database, connect, transaction
from models.enums import ActionStatus, IncidentKind, Severity
from models.installation import action_run_tags
from models.migrate import upgrade
from models.services.actions import NewAction, advance_action, record_action
from models.services.incidents import NewIncident, create_incident
from models.services.installation import installation_id
from models.settings import Settings
from tests.stack import Stack

pytestmark = [
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

QUEUED_FOR = timedelta(minutes=5)  # longer than any stale-heartbeat setting below


@pytest.fixture
def own_url(fresh_database_url: Callable[[], str]) -> str:
    url = fresh_database_url()
    upgrade(url)
    return url


@pytest.fixture
async def own_database(own_url: str) -> AsyncIterator[Database]:
    database = connect(own_url)
    yield database
    await database.dispose()


@pytest.fixture
async def prefect(stack: Stack) -> AsyncIterator[PrefectClient]:
    with temporary_settings({PREFECT_API_URL: stack.env["PREFECT_API_URL"]}):
        async with get_client() as client:
            yield client


def settings_for(stack: Stack, url: str, stale: float) -> Settings:
    return stack.settings.model_copy(update={"database_url": url, "stale_heartbeat_seconds": stale})


async def queued_action(database: Database, *, created_ago: timedelta) -> int:
    """An execute recorded `created_ago`, scheduled then, and not heard of since."""
    at = utcnow() - created_ago
    async with transaction(database.writer) as session:
        new = NewIncident(kind=IncidentKind.INVARIANT, key="INV_queued", severity=Severity.SEV2,
                          summary="queued")  # fmt: skip
        incident, _ = await create_incident(session, new=new, actor="test", at=at)
        action = await record_action(
            session,
            new=NewAction(
                incident_id=incident.id, action_type="rerun_dbt", params={}, dry_run=False,
                requested_by="test", message="m", details={}, changes=[],
                estimated_duration=1, estimated_cost=0.0, requires_approval=False,
            ),
            status=ActionStatus.PENDING,
            at=at,
        )  # fmt: skip
        return action.id


async def flow_run_for(
    prefect: PrefectClient, database: Database, action_id: int, state: Any, *, scheduled_at: Any
) -> str:
    """A flow run of the rerun_dbt deployment in `state` (never Scheduled: the stack's worker
    must not pick it up), recorded on the action as the API records a launch."""
    deployment = await prefect.read_deployment_by_name("rerun_dbt/rerun_dbt")
    run = await prefect.create_flow_run_from_deployment(
        deployment.id, state=state, parameters={"action_id": action_id, "params": {}},
        tags=["reconciler-test"],
    )  # fmt: skip
    async with transaction(database.writer) as session:
        await advance_action(
            session, action_id=action_id, status=ActionStatus.SCHEDULED, at=scheduled_at,
            flow_run_id=str(run.id),
        )  # fmt: skip
    return str(run.id)


async def status_of(database: Database, action_id: int) -> tuple[str, str | None]:
    from models.action import Action

    async with transaction(database.reader) as session:
        action = await session.get(Action, action_id, populate_existing=True)
        assert action is not None
        return action.status, action.message


async def test_an_action_that_waited_in_the_queue_is_not_judged_dead_as_it_starts(
    stack: Stack, prefect: PrefectClient, own_database: Database, own_url: str
) -> None:
    """Before: silence was measured from the action's updated_at when no heartbeat existed
    yet, so an execute that had waited five minutes for dbt's one-at-a-time limit was marked
    crashed (and its Prefect run forced to Crashed) the moment it started."""
    action_id = await queued_action(own_database, created_ago=QUEUED_FOR)
    queued_at = utcnow() - QUEUED_FOR
    run_id = await flow_run_for(prefect, own_database, action_id, Pending(), scheduled_at=queued_at)
    patient = settings_for(stack, own_url, stale=60)

    assert await reconcile_once(own_database, prefect, patient) == []  # queued: never dead
    assert await status_of(own_database, action_id) == ("scheduled", "m")

    await prefect.set_flow_run_state(run_id, Running(), force=True)  # it starts only now
    repairs = await reconcile_once(own_database, prefect, patient)

    assert [(r.status, r.reason) for r in repairs] == [
        (ActionStatus.RUNNING, "Running (reported by the reconciler)")
    ]
    assert (await status_of(own_database, action_id))[0] == "running"
    run = await prefect.read_flow_run(run_id)
    assert run.state is not None
    assert run.state.type is StateType.RUNNING

    # From then on the usual rule holds: a run that stays silent past the limit has died.
    strict = settings_for(stack, own_url, stale=1)
    deadline = time.monotonic() + 60
    while (await status_of(own_database, action_id))[0] == "running":
        assert time.monotonic() < deadline, "a silent running action was never marked crashed"
        await asyncio.sleep(0.5)
        await reconcile_once(own_database, prefect, strict)
    status, message = await status_of(own_database, action_id)
    assert status == "crashed"
    assert message is not None
    assert message.startswith("No heartbeat for")
    run = await prefect.read_flow_run(run_id)
    assert run.state is not None
    assert run.state.type is StateType.CRASHED


async def test_a_run_of_another_installation_is_never_taken_for_ours(
    stack: Stack, prefect: PrefectClient, own_database: Database, own_url: str
) -> None:
    """Two installations on one Prefect server: a run tagged with the same action id but
    another installation's id is not this action's run (before, the reconciler adopted it)."""
    theirs = await queued_action(own_database, created_ago=QUEUED_FOR)
    ours = await queued_action(own_database, created_ago=QUEUED_FOR)
    async with transaction(own_database.writer) as session:
        installation = await installation_id(session)
    deployment = await prefect.read_deployment_by_name("rerun_dbt/rerun_dbt")
    other = "00000000-0000-4000-8000-000000000000"
    from prefect.states import Cancelled

    for owner, action_id in ((other, theirs), (installation, ours)):
        await prefect.create_flow_run_from_deployment(
            deployment.id, state=Cancelled(), parameters={"action_id": action_id, "params": {}},
            tags=action_run_tags(owner, action_id, incident_id=1),
        )  # fmt: skip

    await reconcile_once(own_database, prefect, settings_for(stack, own_url, stale=60))

    assert (await status_of(own_database, theirs))[0] == "failed"
    assert "Never started" in str((await status_of(own_database, theirs))[1])
    assert (await status_of(own_database, ours))[0] == "cancelled"
