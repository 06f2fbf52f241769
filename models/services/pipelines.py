"""Pipeline incidents: a failed or crashed run of one of the platform's Prefect deployments
opens one (or counts a repeat on the active one of its deployment); a completed run of that
deployment resolves it.

Which runs are watched is decided above (pipelines/watch.py); here a run is recorded, exactly
once: Prefect's event stream replays about a minute on every reconnect, and an automation may
call twice, so each incident remembers the flow runs it has seen (`details.pipeline.seen_runs`)
and a completed run resolves only an incident whose failure came before it. Events go out
through the incident's own methods, in the caller's transaction.
"""

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models.base import utcnow
from models.enums import ACTIVE_STATUSES, IncidentKind, Severity, Verb
from models.errors import RateLimited
from models.incident import Incident
from models.services.incidents import (
    IncidentCap,
    NewIncident,
    create_incident,
    transition_incident,
)

ACTOR = "prefect"
PLAYBOOK = "retry_flow_run"
SEEN_KEPT = 50  # flow run ids an incident remembers (the replay window holds far fewer)
LOOKBACK = 5  # recent incidents of a key searched for a replayed run


class Outcome(StrEnum):
    OPENED = "opened"
    COUNTED = "counted"
    RESOLVED = "resolved"
    IGNORED = "ignored"
    SEEN = "seen"  # this flow run was recorded already (a replay)
    SETTLED = "settled"  # one of Intervene's own action runs: the action took the run's end


@dataclass(frozen=True)
class PipelineRun:
    """A finished flow run of a deployment, as read from Prefect."""

    flow_run_id: str
    flow_name: str
    deployment: str  # `<flow>/<deployment>`
    state_type: str  # FAILED, CRASHED, COMPLETED
    state_name: str
    message: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    end_time: datetime | None = None
    flow_run_url: str | None = None
    name: str = ""

    @property
    def key(self) -> str:
        return pipeline_key(self.deployment)

    def described(self) -> dict[str, Any]:
        return {
            "flow_name": self.flow_name,
            "deployment": self.deployment,
            "flow_run_id": self.flow_run_id,
            "flow_run_url": self.flow_run_url,
            "state": self.state_name or self.state_type.title(),
            "message": self.message,
            "parameters": self.parameters,
            "tags": self.tags,
            "ended_at": self.end_time.isoformat() if self.end_time else None,
        }


@dataclass(frozen=True)
class Taken:
    outcome: Outcome
    incident_id: int | None
    reason: str


def pipeline_key(deployment: str) -> str:
    """One active incident per deployment: `PIPELINE_<flow>/<deployment>`."""
    return f"PIPELINE_{deployment}"


async def record_failure(
    session: AsyncSession,
    run: PipelineRun,
    *,
    severity: Severity,
    cap: IncidentCap | None = None,
) -> Taken:
    """Open the deployment's pipeline incident for a failed or crashed run, or count it on the
    active one; a run seen before changes nothing."""
    at = run.end_time or utcnow()
    recent = await _recent(session, run.key)
    for incident in recent:
        if run.flow_run_id in _pipeline(incident).get("seen_runs", []):
            return Taken(Outcome.SEEN, incident.id, f"flow run {run.flow_run_id} already recorded")
    state = run.state_name or run.state_type.title()
    new = NewIncident(
        kind=IncidentKind.PIPELINE,
        key=run.key,
        severity=severity,
        summary=f"Prefect flow {run.flow_name}, deployment {run.deployment}: run {state}",
        details={"pipeline": run.described() | {"seen_runs": [run.flow_run_id]}},
        playbooks=[PLAYBOOK],
        metadata={"flow_run_id": run.flow_run_id, "deployment": run.deployment},
    )
    try:
        incident, created = await create_incident(session, new=new, actor=ACTOR, cap=cap, at=at)
    except RateLimited as capped:
        return Taken(Outcome.IGNORED, None, capped.message)
    if created:
        return Taken(Outcome.OPENED, incident.id, f"flow run {run.flow_run_id} {state}")
    seen = [*_pipeline(incident).get("seen_runs", []), run.flow_run_id][-SEEN_KEPT:]
    # the latest failure is what a retry re-runs; a new dict, so the JSON column is written
    incident.details = {**incident.details, "pipeline": run.described() | {"seen_runs": seen}}
    await session.flush()
    return Taken(Outcome.COUNTED, incident.id, f"flow run {run.flow_run_id} {state} again")


async def record_success(session: AsyncSession, run: PipelineRun) -> Taken:
    """Resolve the deployment's active pipeline incident: its next run completed. A completed
    run that ended before the failure it would resolve (a replayed event) changes nothing."""
    active = await session.scalar(
        select(Incident)
        .where(
            Incident.kind == IncidentKind.PIPELINE,
            Incident.key == run.key,
            Incident.status.in_(ACTIVE_STATUSES),
        )
        .with_for_update()
    )
    if active is None:
        return Taken(Outcome.IGNORED, None, f"no active incident for {run.deployment}")
    failed_at = _pipeline(active).get("ended_at")
    if run.end_time and failed_at and run.end_time <= datetime.fromisoformat(failed_at):
        return Taken(
            Outcome.SEEN, active.id, f"flow run {run.flow_run_id} ended before the failure"
        )
    label = f" {run.name}" if run.name else ""
    await transition_incident(
        session,
        incident_id=active.id,
        verb=Verb.RESOLVE,
        actor=ACTOR,
        notes=f"Flow run{label} ({run.flow_run_id}) of {run.deployment} completed; "
        "resolved automatically",
        at=run.end_time or utcnow(),
    )
    return Taken(Outcome.RESOLVED, active.id, f"flow run {run.flow_run_id} completed")


async def _recent(session: AsyncSession, key: str) -> list[Incident]:
    """The key's latest incidents, the active one locked first if any."""
    return list(
        await session.scalars(
            select(Incident)
            .where(Incident.kind == IncidentKind.PIPELINE, Incident.key == key)
            .order_by(Incident.created_at.desc(), Incident.id.desc())
            .limit(LOOKBACK)
            .with_for_update()
        )
    )


def _pipeline(incident: Incident) -> dict[str, Any]:
    found = incident.details.get("pipeline") if isinstance(incident.details, dict) else None
    return found if isinstance(found, dict) else {}
