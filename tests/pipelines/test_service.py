"""Recording finished pipeline runs (models/services/pipelines.py) on the real databases: one
incident per deployment, each flow run counted once however often it is reported, resolved by
a later completed run only."""

import uuid
from dataclasses import replace
from datetime import timedelta

from sqlalchemy import select

from models.base import utcnow
from models.db import Database, transaction
from models.enums import IncidentStatus, Severity
from models.event import Event
from models.incident import Incident
from models.services.incidents import IncidentCap
from models.services.pipelines import Outcome, PipelineRun, record_failure, record_success

START = utcnow()


def failed(deployment: str, minutes: int = 0, **changes: object) -> PipelineRun:
    run = PipelineRun(
        flow_run_id=str(uuid.uuid4()),
        flow_name=deployment.split("/")[0],
        deployment=deployment,
        state_type="FAILED",
        state_name="Failed",
        message="Flow run encountered an exception: source not ready",
        parameters={"day": "2026-12-01"},
        tags=["etl"],
        end_time=START + timedelta(minutes=minutes),
        flow_run_url="http://prefect.example/runs/flow-run/x",
        name="brave-otter",
    )
    return replace(run, **changes)  # type: ignore[arg-type]


def completed(deployment: str, minutes: int) -> PipelineRun:
    return failed(deployment, minutes, state_type="COMPLETED", state_name="Completed")


async def fail(
    db: Database, run: PipelineRun, cap: IncidentCap | None = None
) -> tuple[Outcome, int | None]:
    async with transaction(db.writer) as session:
        taken = await record_failure(session, run, severity=Severity.SEV2, cap=cap)
    return taken.outcome, taken.incident_id


async def succeed(db: Database, run: PipelineRun) -> tuple[Outcome, int | None]:
    async with transaction(db.writer) as session:
        taken = await record_success(session, run)
    return taken.outcome, taken.incident_id


async def incident(db: Database, incident_id: int | None) -> Incident:
    async with transaction(db.reader) as session:
        found = await session.get(Incident, incident_id)
        assert found is not None
        return found


async def test_a_failed_run_opens_one_incident_per_deployment_and_repeats_count(
    db: Database,
) -> None:
    first = failed("etl/opens")
    outcome, opened = await fail(db, first)
    again, counted = await fail(
        db, failed("etl/opens", 1, state_type="CRASHED", state_name="Crashed")
    )
    other, elsewhere = await fail(db, failed("etl/other"))

    assert (outcome, again, other) == (Outcome.OPENED, Outcome.COUNTED, Outcome.OPENED)
    assert counted == opened != elsewhere
    found = await incident(db, opened)
    assert found.kind.value == "pipeline"
    assert found.key == "PIPELINE_etl/opens"
    assert found.occurrence_count == 2
    assert found.severity is Severity.SEV2
    assert found.summary == "Prefect flow etl, deployment etl/opens: run Failed"
    assert found.playbooks == ["retry_flow_run"]
    pipeline = found.details["pipeline"]
    assert pipeline["state"] == "Crashed"  # the latest failure is what a retry re-runs
    assert {k: pipeline[k] for k in ("flow_name", "deployment", "parameters", "tags")} == {
        "flow_name": "etl", "deployment": "etl/opens", "parameters": {"day": "2026-12-01"},
        "tags": ["etl"],
    }  # fmt: skip
    assert pipeline["message"].endswith("source not ready")
    assert first.flow_run_id in pipeline["seen_runs"]
    async with transaction(db.reader) as session:
        kinds = list(await session.scalars(select(Event.type).where(Event.incident_id == opened)))
    assert list(kinds) == ["incident_created", "incident_updated"]


async def test_a_run_reported_again_changes_nothing(db: Database) -> None:
    run = failed("etl/replayed")
    _, opened = await fail(db, run)

    replays = [await fail(db, run) for _ in range(3)]

    assert replays == [(Outcome.SEEN, opened)] * 3
    assert (await incident(db, opened)).occurrence_count == 1


async def test_a_later_completed_run_resolves_and_an_earlier_one_does_not(db: Database) -> None:
    run = failed("etl/resolves", 10)
    _, opened = await fail(db, run)

    before = await succeed(db, completed("etl/resolves", 5))  # a replayed older success
    after = await succeed(db, completed("etl/resolves", 11))
    nothing = await succeed(db, completed("etl/resolves", 12))
    replayed = await fail(db, run)  # the failure replayed after it was resolved

    assert before == (Outcome.SEEN, opened)
    assert after == (Outcome.RESOLVED, opened)
    assert nothing == (Outcome.IGNORED, None)
    assert replayed == (Outcome.SEEN, opened)
    resolved = await incident(db, opened)
    assert resolved.status is IncidentStatus.RESOLVED
    async with transaction(db.reader) as session:
        last = (await session.scalars(resolved.timeline.select())).all()[-1]
    assert last.verb == "resolve"
    assert last.actor == "prefect"
    assert "completed; resolved automatically" in (last.notes or "")


async def test_a_new_failure_after_resolution_opens_a_new_incident(db: Database) -> None:
    _, first = await fail(db, failed("etl/again", 0))
    await succeed(db, completed("etl/again", 1))

    outcome, second = await fail(db, failed("etl/again", 2))

    assert outcome is Outcome.OPENED
    assert second != first


async def test_the_per_key_cap_refuses_a_flood_without_an_error(db: Database) -> None:
    cap = IncidentCap(limit=1)
    await fail(db, failed("etl/capped", 0), cap)
    await succeed(db, completed("etl/capped", 1))

    outcome, incident_id = await fail(db, failed("etl/capped", 2), cap)

    assert (outcome, incident_id) == (Outcome.IGNORED, None)
