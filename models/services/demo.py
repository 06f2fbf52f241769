"""Demo incidents for a first run, so the board is not empty. Added only to an empty database.

Two are what the shipped checks will find again (their keys match, so the checks count
occurrences on them); the first is an external alert, as a monitoring system would send.
"""

from datetime import timedelta

from sqlalchemy import func, select

from models.base import utcnow
from models.db import connect, transaction
from models.enums import IncidentKind, Severity, Verb
from models.incident import Incident
from models.services.incidents import NewIncident, create_incident, transition_incident
from models.services.planner import set_traffic

DEMO_INCIDENTS = [
    NewIncident(
        kind=IncidentKind.INVARIANT,
        key="INV_triage_label_drift",
        severity=Severity.SEV2,
        summary="Triage label mix drifted: 'urgent' at 31% of emails (usual 4%), external alert",
        details={"invariant": {"id": "triage_label_drift", "threshold": 0.1, "actual": 0.31}},
        playbooks=["rerun_dbt", "rerun_eval"],
        metadata={"agent": "inbox.triage", "auto_created": False, "source": "grafana"},
    ),
    NewIncident(
        kind=IncidentKind.BUDGET,
        key="BUDGET_inbox.triage_latency_p95_ms",
        severity=Severity.SEV2,
        summary="p95 latency budget blown for inbox.triage (1840 ms > 1000 ms)",
        details={
            "budget": {
                "id": "triage_latency",
                "type": "latency_p95_ms",
                "threshold": 1000,
                "actual": 1840,
            }
        },
        playbooks=["clear_cache", "rerun_eval"],
        metadata={"agent": "inbox.triage", "auto_created": True},
    ),
    NewIncident(
        kind=IncidentKind.PLANNER,
        key="PLANNER_v1.2.3",
        severity=Severity.SEV2,
        summary="Canary planner v1.2.3 regressed: accuracy -6.1 points against stable v1.2.2",
        details={"planner": {"canary": "v1.2.3", "stable": "v1.2.2", "accuracy_drop": 6.1}},
        playbooks=["rollback_planner", "reduce_traffic"],
        metadata={"agent": "planner", "auto_created": True},
    ),
]


async def seed_demo(database_url: str) -> int:
    """Insert the demo incidents if there are none; returns how many were added."""
    database = connect(database_url)
    try:
        async with transaction(database.writer) as session:
            if await session.scalar(select(func.count()).select_from(Incident)):
                return 0
            start = utcnow() - timedelta(minutes=len(DEMO_INCIDENTS) * 7)
            for n, new in enumerate(DEMO_INCIDENTS):
                at = start + timedelta(minutes=n * 7)
                incident, _ = await create_incident(session, new=new, actor="demo", at=at)
                if new.kind is IncidentKind.BUDGET:
                    await transition_incident(
                        session,
                        incident_id=incident.id,
                        verb=Verb.ACKNOWLEDGE,
                        actor="oncall@example.com",
                        notes="Looking at the search cluster",
                        changes={"acknowledged_by": "oncall@example.com"},
                        at=at + timedelta(minutes=2),
                    )
            await set_traffic(
                session,
                traffic={"v1.2.2": 80, "v1.2.3": 20},
                change="demo: canary at 20%",
                actor="demo",
                at=start,
                stable_version="v1.2.2",
                canary_version="v1.2.3",
            )
            return len(DEMO_INCIDENTS)
    finally:
        await database.dispose()
