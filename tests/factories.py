"""Keyword-only factories with full defaults; they go through the HTTP API like a client would
(but for `create_incident_at`, whose times the API would not take)."""

import itertools
from datetime import datetime, timedelta
from typing import Any

from httpx import AsyncClient

from models.db import Database, transaction
from models.enums import IncidentKind, Severity, Verb
from models.services import incidents

_keys = itertools.count(1)

# How to reach each status from a new (open) incident.
PATH_TO: dict[str, list[str]] = {
    "open": [],
    "acknowledged": ["acknowledge"],
    "mitigated": ["acknowledge", "mitigate"],
    "resolved": ["acknowledge", "mitigate", "resolve"],
    "closed": ["acknowledge", "mitigate", "resolve", "close"],
}


def incident_body(
    *,
    kind: str = "invariant",
    key: str | None = None,
    severity: str = "sev2",
    summary: str = "Data freshness violation for inbox.triage",
    details: dict[str, Any] | None = None,
    playbooks: list[str] | None = None,
    issue_url: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "kind": kind,
        "key": key or f"INV_test_{next(_keys)}",
        "severity": severity,
        "summary": summary,
        "details": details
        if details is not None
        else {"invariant": {"id": "data_freshness_inbox", "threshold": 300, "actual": 1800}},
        "playbooks": playbooks if playbooks is not None else ["rerun_eval", "rerun_dbt"],
        "issue_url": issue_url,
        "metadata": metadata if metadata is not None else {"agent": "inbox.triage"},
    }


async def create_incident(client: AsyncClient, **overrides: Any) -> dict[str, Any]:
    response = await client.post("/api/incidents", json=incident_body(**overrides))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def verb_body(verb: str, *, who: str = "engineer@example.com") -> dict[str, Any]:
    if verb == "acknowledge":
        return {"acknowledged_by": who, "notes": "Investigating"}
    if verb == "assign":
        return {"assigned_to": who}
    return {"notes": f"{verb} by test", "actor": who}


async def apply_verb(client: AsyncClient, incident_id: int, verb: str) -> Any:
    return await client.post(f"/api/incidents/{incident_id}/{verb}", json=verb_body(verb))


async def create_incident_in(client: AsyncClient, status: str, **overrides: Any) -> dict[str, Any]:
    incident = await create_incident(client, **overrides)
    for verb in PATH_TO[status]:
        response = await apply_verb(client, incident["id"], verb)
        assert response.status_code == 200, response.text
    return incident


async def create_incident_at(
    database: Database,
    *,
    created_at: datetime,
    severity: str = "sev2",
    key: str | None = None,
    after: dict[str, timedelta] | None = None,
) -> int:
    """An incident with known times, through the service (HTTP cannot backdate): created at
    `created_at`, then each verb of `after` applied that long after creation, in order."""
    async with transaction(database.writer) as session:
        incident, _ = await incidents.create_incident(
            session,
            new=incidents.NewIncident(
                kind=IncidentKind.INVARIANT,
                key=key or f"INV_at_{next(_keys)}",
                severity=Severity(severity),
                summary="An incident with known times",
            ),
            actor="tests",
            at=created_at,
        )
        for verb, delay in (after or {}).items():
            await incidents.transition_incident(
                session,
                incident_id=incident.id,
                verb=Verb(verb),
                actor="tests",
                at=created_at + delay,
                changes={"acknowledged_by": "tests"} if verb == "acknowledge" else None,
            )
        return incident.id
