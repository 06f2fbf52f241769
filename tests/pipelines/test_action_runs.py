"""Intervene's own action runs reported finished (Prefect's events, or the automation's webhook):
the action takes its run's end at once, without the reconciler; only its own run can end it."""

import uuid
from dataclasses import replace

from httpx import AsyncClient

from integrations.prefect_api import FlowRunInfo
from models.action import Action
from models.base import utcnow
from models.db import Database, transaction
from models.enums import ActionStatus, IncidentKind, Severity
from models.installation import action_run_tags
from models.services.actions import NewAction, advance_action, record_action
from models.services.incidents import NewIncident, create_incident
from models.services.installation import installation_id
from models.services.pipelines import Outcome
from models.settings import Settings
from pipelines.intake import take


async def scheduled_action(db: Database, key: str) -> tuple[int, int, str, list[str]]:
    """An executed action whose flow run was launched: (action, incident, run id, run tags)."""
    run_id = str(uuid.uuid4())
    async with transaction(db.writer) as session:
        new = NewIncident(kind=IncidentKind.INVARIANT, key=key, severity=Severity.SEV2,
                          summary="stale")  # fmt: skip
        incident, _ = await create_incident(session, new=new, actor="test", at=utcnow())
        action = await record_action(
            session,
            new=NewAction(
                incident_id=incident.id, action_type="rerun_dbt", params={}, dry_run=False,
                requested_by="test", message="m", details={}, changes=[],
                estimated_duration=1, estimated_cost=0.0, requires_approval=False,
            ),
            status=ActionStatus.PENDING,
            at=utcnow(),
        )  # fmt: skip
        await advance_action(
            session, action_id=action.id, status=ActionStatus.RUNNING, at=utcnow(),
            flow_run_id=run_id,
        )  # fmt: skip
        tags = action_run_tags(await installation_id(session), action.id, incident.id)
    return action.id, incident.id, run_id, tags


def crashed(run_id: str, tags: list[str]) -> FlowRunInfo:
    return FlowRunInfo(
        id=run_id, name="rerun_dbt · incident 1 · action 1", flow_name="rerun_dbt",
        deployment="rerun_dbt/rerun_dbt", state_type="CRASHED", state_name="Crashed",
        message="Flow run could not be found by the zombie automation's heartbeat check",
        tags=tags, url=f"http://prefect.example/runs/flow-run/{run_id}",
    )  # fmt: skip


async def status_of(db: Database, action_id: int) -> tuple[str, str | None]:
    async with transaction(db.reader) as session:
        action = await session.get(Action, action_id)
        assert action is not None
        return action.status, action.message


async def test_a_crashed_action_run_ends_its_action_once(
    client: AsyncClient, db: Database, settings: Settings
) -> None:
    action_id, incident_id, run_id, tags = await scheduled_action(db, "INV_crashed_run")

    taken = await take(db, settings, crashed(run_id, tags))
    again = await take(db, settings, crashed(run_id, tags))

    assert (taken.outcome, taken.incident_id) == (Outcome.SETTLED, incident_id)
    assert await status_of(db, action_id) == (
        "crashed",
        "Flow run could not be found by the zombie automation's heartbeat check",
    )
    assert again.outcome is Outcome.SEEN  # a replayed event changes nothing
    history = await client.get(f"/api/playbooks/incidents/{incident_id}/actions/history")
    assert [entry["status"] for entry in history.json()["actions"]] == ["crashed"]


async def test_only_the_actions_own_finished_run_ends_it(db: Database, settings: Settings) -> None:
    action_id, _, run_id, tags = await scheduled_action(db, "INV_other_runs")

    refused = await take(
        db, settings, replace(crashed(str(uuid.uuid4()), tags), state_type="FAILED")
    )
    unfinished = await take(db, settings, replace(crashed(run_id, tags), state_type="RUNNING"))
    elsewhere = [tag for tag in tags if not tag.startswith("installation:")]
    foreign = await take(db, settings, crashed(run_id, [*elsewhere, "installation:another"]))

    assert refused.outcome is Outcome.IGNORED  # e.g. a Run from the Prefect UI, refused
    assert "is not the run of action" in refused.reason
    assert unfinished.outcome is Outcome.IGNORED
    assert foreign.outcome is Outcome.IGNORED  # another installation's: Intervene's own flow
    assert await status_of(db, action_id) == ("running", "m")


async def test_an_action_that_does_not_exist(db: Database, settings: Settings) -> None:
    _, _, _, tags = await scheduled_action(db, "INV_missing_action")
    tags = [tag if not tag.startswith("action:") else "action:999999" for tag in tags]

    taken = await take(db, settings, crashed(str(uuid.uuid4()), tags))

    assert (taken.outcome, taken.reason) == (Outcome.IGNORED, "action 999999 does not exist")
