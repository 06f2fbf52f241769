"""The incident report: GET it as Markdown (or `?format=json`, the same facts as data); PUT
what people wrote in it (root cause, follow-ups), versioned on the timeline."""

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response

from api.auth import PrincipalDep, on_behalf
from api.deps import SessionDep, get_settings
from api.openapi import Error
from api.report import markdown, report_of
from api.schemas.reports import IncidentReport, ReportWrite, ReportWriting
from models.base import utcnow
from models.services import reports as service

router = APIRouter(prefix="/incidents", tags=["incidents"])

IncidentId = Annotated[int, Path(ge=1, le=2**63 - 1, description="Incident ID")]


@router.get(
    "/{incident_id}/report",
    response_model=IncidentReport,
    responses={200: {"content": {"text/markdown": {}}, "description": "Markdown, or JSON"}},
)
async def get_report(
    incident_id: IncidentId,
    session: SessionDep,
    request: Request,
    format_: Annotated[Literal["markdown", "json"], Query(alias="format")] = "markdown",
) -> Response:
    """The incident's report: summary, impact window against the SLA targets, the check's
    measurements around it, every action with its plan, approver, duration and result, who did
    what, who was told, and the root cause and follow-ups people wrote."""
    now = utcnow()
    facts = await service.report_facts(session, incident_id, now)
    report = report_of(facts, get_settings(request).sla_targets, now)
    if format_ == "json":
        return Response(report.model_dump_json(), media_type="application/json")
    return Response(markdown(report), media_type="text/markdown; charset=utf-8")


@router.put(
    "/{incident_id}/report",
    responses={409: {"model": Error, "description": "Someone saved another version meanwhile"}},
)
async def put_report(
    incident_id: IncidentId, body: ReportWrite, session: SessionDep, principal: PrincipalDep
) -> ReportWriting:
    """Save the root cause and follow-ups as the report's next version (409 when
    `base_version` is not the current one: someone saved meanwhile)."""
    body = on_behalf(body, "actor", principal)
    saved = await service.save_text(
        session,
        incident_id,
        root_cause=body.root_cause,
        follow_ups=body.follow_ups,
        actor=body.actor,
        base_version=body.base_version,
    )
    return ReportWriting.model_validate(saved, from_attributes=True)
