"""Incidents: list, read, open (external alerts), and walk the lifecycle."""

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Body, Path, Query, Request, Response, status

from api.auth import PrincipalDep, on_behalf
from api.deps import SessionDep, SlaClockDep, get_database, get_settings, get_sla_clock
from api.routes.automation import PoliciesDep
from api.schemas.automation import IncidentDetail
from api.schemas.incidents import (
    AcknowledgeRequest,
    AcknowledgeResponse,
    AssignRequest,
    IncidentCounts,
    IncidentCreate,
    IncidentList,
    IncidentRead,
    NoteRequest,
    NotesRequest,
    Timeline,
    TimelineEntryRead,
    incident_list_json,
)
from integrations.issue_opener import IssueOpener
from models.access import Principal
from models.enums import IncidentKind, IncidentStatus, Severity, Verb
from models.services import alert_holds
from models.services import incidents as service
from remediation import view

router = APIRouter(prefix="/incidents", tags=["incidents"])

IncidentId = Annotated[int, Path(ge=1, le=2**63 - 1, description="Incident ID")]
OptionalNotes = Annotated[NotesRequest | None, Body()]
Search = Annotated[
    str | None,
    Query(min_length=1, max_length=200, description="Text in the key, summary or details"),
]


@router.get("", response_model=IncidentList)
async def list_incidents(
    session: SessionDep,
    clock: SlaClockDep,
    status_: Annotated[IncidentStatus | None, Query(alias="status")] = None,
    severity: Severity | None = None,
    kind: IncidentKind | None = None,
    q: Search = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**31)] = 0,
) -> Response:
    """List incidents, newest first, filtered by status, severity and kind, and by `q`: text
    found in the key, the summary or the details (an alert's labels), whatever the case."""
    page = await service.list_incidents(
        session, status=status_, severity=severity, kind=kind, q=q, limit=limit, offset=offset
    )
    content = incident_list_json(page.rows, clock, total=page.total, limit=limit, offset=offset)
    return Response(content, media_type="application/json")


@router.get("/counts")
async def count_incidents(
    session: SessionDep,
    severity: Severity | None = None,
    kind: IncidentKind | None = None,
    q: Search = None,
) -> IncidentCounts:
    """How many incidents are in each status, filtered by severity, kind and `q` (the board's
    tabs)."""
    by_status = await service.count_by_status(session, severity=severity, kind=kind, q=q)
    return IncidentCounts(by_status=by_status, total=sum(by_status.values()))


@router.post("", status_code=status.HTTP_201_CREATED, responses={200: {"model": IncidentRead}})
async def create_incident(
    body: IncidentCreate,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    response: Response,
    background: BackgroundTasks,
) -> IncidentRead:
    """Open an incident (201), or count a repeat on the active one of that kind and key (200)."""
    # read here, not injected: FastAPI runs a plain-function dependency on a worker thread,
    # three thread hops on the path every alert sender repeats
    settings, database, clock = get_settings(request), get_database(request), get_sla_clock(request)
    body = on_behalf(body, "reported_by", principal)
    incident, created = await service.create_incident(
        session,
        new=service.NewIncident(
            kind=body.kind,
            key=body.key,
            severity=body.severity,
            summary=body.summary,
            details=body.details,
            playbooks=body.playbooks,
            issue_url=str(body.issue_url) if body.issue_url else None,
            metadata=body.metadata,
        ),
        actor=body.reported_by,
        cap=service.IncidentCap(
            limit=settings.incident_cap_per_key,
            window=settings.incident_cap_window,
        ),
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    else:  # after the response, hence after the commit: the alert never waits for GitHub
        background.add_task(IssueOpener(settings).open_for, database, [incident.id])
    return IncidentRead.of(incident, clock)


@router.get("/{incident_id}", response_model=IncidentDetail)
async def get_incident(
    incident_id: IncidentId, session: SessionDep, clock: SlaClockDep, policies: PoliciesDep
) -> Response:
    """Read one incident, with its automatic remediation and the downstream failures that
    joined it, where it has them."""
    incident = await service.get_incident(session, incident_id)
    remediation = await view.incident_remediation(session, incident, policies)
    related = await alert_holds.related_to(session, incident_id)
    detail = IncidentDetail.read(incident, clock, remediation, related)
    return Response(detail.json_bytes(), media_type="application/json")


@router.get("/{incident_id}/timeline")
async def get_timeline(incident_id: IncidentId, session: SessionDep) -> Timeline:
    """Every change to the incident, oldest first."""
    entries = await service.list_timeline(session, incident_id)
    return Timeline(
        incident_id=incident_id,
        entries=[TimelineEntryRead.model_validate(entry) for entry in entries],
    )


@router.post("/{incident_id}/acknowledge")
async def acknowledge_incident(
    incident_id: IncidentId,
    session: SessionDep,
    principal: PrincipalDep,
    body: Annotated[AcknowledgeRequest | None, Body()] = None,
) -> AcknowledgeResponse:
    """Acknowledge an open incident: someone is on it."""
    body = on_behalf(body or AcknowledgeRequest(), "acknowledged_by", principal)
    incident = await service.transition_incident(
        session,
        incident_id=incident_id,
        verb=Verb.ACKNOWLEDGE,
        actor=body.acknowledged_by,
        notes=body.notes,
        changes={"acknowledged_by": body.acknowledged_by},
    )
    return AcknowledgeResponse.model_validate(incident)


@router.post("/{incident_id}/notes", status_code=status.HTTP_201_CREATED)
async def add_note(
    incident_id: IncidentId, body: NoteRequest, session: SessionDep, principal: PrincipalDep
) -> TimelineEntryRead:
    """A comment on the incident's timeline, in any status (responders and up)."""
    body = on_behalf(body, "actor", principal)
    entry = await service.add_note(session, incident_id, actor=body.actor, notes=body.notes)
    return TimelineEntryRead.model_validate(entry)


async def _transition(
    session: SessionDep,
    clock: SlaClockDep,
    incident_id: int,
    verb: Verb,
    body: NotesRequest | None,
    principal: Principal,
) -> IncidentRead:
    body = on_behalf(body or NotesRequest(), "actor", principal)
    incident = await service.transition_incident(
        session, incident_id=incident_id, verb=verb, actor=body.actor, notes=body.notes
    )
    return IncidentRead.of(incident, clock)


@router.post("/{incident_id}/mitigate")
async def mitigate_incident(
    incident_id: IncidentId,
    session: SessionDep,
    clock: SlaClockDep,
    principal: PrincipalDep,
    body: OptionalNotes = None,
) -> IncidentRead:
    """Mark the impact as mitigated (from open or acknowledged)."""
    return await _transition(session, clock, incident_id, Verb.MITIGATE, body, principal)


@router.post("/{incident_id}/resolve")
async def resolve_incident(
    incident_id: IncidentId,
    session: SessionDep,
    clock: SlaClockDep,
    principal: PrincipalDep,
    body: OptionalNotes = None,
) -> IncidentRead:
    """Resolve: the cause is fixed (from open, acknowledged or mitigated)."""
    return await _transition(session, clock, incident_id, Verb.RESOLVE, body, principal)


@router.post("/{incident_id}/close")
async def close_incident(
    incident_id: IncidentId,
    session: SessionDep,
    clock: SlaClockDep,
    principal: PrincipalDep,
    body: OptionalNotes = None,
) -> IncidentRead:
    """Close a resolved incident after its verification period."""
    return await _transition(session, clock, incident_id, Verb.CLOSE, body, principal)


@router.post("/{incident_id}/reopen")
async def reopen_incident(
    incident_id: IncidentId,
    session: SessionDep,
    clock: SlaClockDep,
    principal: PrincipalDep,
    body: OptionalNotes = None,
) -> IncidentRead:
    """Reopen a resolved incident whose problem came back."""
    return await _transition(session, clock, incident_id, Verb.REOPEN, body, principal)


@router.post("/{incident_id}/assign")
async def assign_incident(
    incident_id: IncidentId,
    body: AssignRequest,
    session: SessionDep,
    clock: SlaClockDep,
    principal: PrincipalDep,
) -> IncidentRead:
    """Assign (or, with null, unassign) an incident that is not closed. The timeline says to
    whom ("to ada@example.com" or "unassigned"), then the notes."""
    body = on_behalf(body, "actor", principal)
    whom = f"to {body.assigned_to}" if body.assigned_to else "unassigned"
    incident = await service.transition_incident(
        session,
        incident_id=incident_id,
        verb=Verb.ASSIGN,
        actor=body.actor,
        notes=f"{whom}\n{body.notes}" if body.notes else whom,
        changes={"assigned_to": body.assigned_to},
    )
    return IncidentRead.of(incident, clock)
