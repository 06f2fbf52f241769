"""Alerts from the tools a platform already runs: Alertmanager and Grafana webhooks, PagerDuty
Events API v2 (anything that can page PagerDuty at a custom URL), dbt's artifacts.

Each request's alerts are parsed (integrations/), routed by the rules and taken in the
request's one transaction (alerts/intake.py): a 2xx means they are stored. One bad alert of a
batch is reported and the others are taken; a payload with nothing to take is a 422 (the
PagerDuty endpoint answers PagerDuty's own 400 instead).
"""

import asyncio
import json
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import JSONResponse

from alerts import dbt
from alerts.intake import Intake, take
from alerts.rules import AlertRules
from api.auth import LOCAL_ADMIN, Authenticator
from api.deps import SessionDep, SettingsDep, get_settings
from api.metrics import Metrics
from api.schemas.integrations import AlertsTaken, PagerDutyAccepted, PagerDutyRefused
from integrations import alertmanager, pagerduty
from integrations.dbt_results import ArtifactError
from models.access import Principal
from models.alert import Alert, Refusal
from models.base import utcnow
from models.enums import Role
from models.errors import InvalidParams
from models.services.alert_intake import Downstream
from models.services.incidents import IncidentCap
from models.settings import Settings

router = APIRouter(prefix="/integrations", tags=["integrations"])
# its senders cannot set headers: the routing key in the body is the token
pagerduty_router = APIRouter(prefix="/integrations", tags=["integrations"])

BODY_MAX = 512 * 1024  # PagerDuty's own limit on an event; an Alertmanager group is smaller


async def get_alert_rules(request: Request) -> AlertRules:
    """async: FastAPI runs a plain-function dependency on a worker thread."""
    rules: AlertRules = request.app.state.alert_rules
    return rules


AlertRulesDep = Annotated[AlertRules, Depends(get_alert_rules)]
Payload = Annotated[Any, Body(description="The sender's own JSON, as it sends it")]


def cap_of(settings: Settings) -> IncidentCap:
    return IncidentCap(limit=settings.incident_cap_per_key, window=settings.incident_cap_window)


async def _take(
    request: Request,
    session: SessionDep,
    source: str,
    alerts: list[Alert],
    refused: list[Refusal],
    rules: AlertRules,
    settings: Settings,
    downstream: Downstream | None = None,
) -> Intake:
    metrics: Metrics = request.app.state.metrics
    for _ in refused:
        metrics.alert_refused(source, "invalid")
    if not alerts:
        if refused:
            raise _invalid([(r.field, r.message) for r in refused])
        return Intake(taken=[], refused=refused)
    intake = await take(
        session, alerts, rules=rules, cap=cap_of(settings), refused=refused, downstream=downstream
    )
    for outcome, count in intake.outcomes().items():
        metrics.alerts_taken(source, outcome.value, count)
    return intake


def _invalid(problems: list[tuple[str, str]]) -> InvalidParams:
    return InvalidParams(
        [
            {"loc": ("body",) if field == "body" else ("body", field), "msg": message}
            | {"type": "value_error"}
            for field, message in problems
        ]
    )


@router.post("/alertmanager")
async def receive_alertmanager(
    payload: Payload, request: Request, session: SessionDep, rules: AlertRulesDep
) -> AlertsTaken:
    """Alertmanager's webhook (version 4) or Grafana's webhook contact point: each alert opens,
    counts or resolves the incident of its key (`dedup_key` label, else alertname and
    fingerprint), unless a silence, its rule's threshold or lineage holds it."""
    settings = get_settings(request)  # not injected: no worker thread for it (get_alert_rules)
    try:
        parsed = alertmanager.parse_webhook(
            payload, received_at=utcnow(), text=await request.body()
        )
    except alertmanager.PayloadError as exc:
        request.app.state.metrics.alert_refused("alertmanager", "invalid")
        raise _invalid([(exc.field, exc.message)]) from exc
    source = parsed.source.value
    intake = await _take(request, session, source, parsed.alerts, parsed.refused, rules, settings)
    return AlertsTaken.of(source, intake, parsed.truncated)


@router.post("/dbt/run-results")
async def receive_dbt_results(
    payload: Payload,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    rules: AlertRulesDep,
) -> AlertsTaken:
    """dbt's own artifact, as dbt wrote it: `run_results.json` of dbt test / dbt build, or
    `sources.json` of dbt source freshness. One incident per failing test, failed model or stale
    source (keyed by its unique id, `rerun_dbt` suggested with its models); passing results
    resolve what failing ones opened; a failure downstream (the project's manifest) of one with
    an active incident joins it."""
    manifest = await asyncio.to_thread(dbt.manifest_of, settings)
    try:
        parsed = dbt.parse(payload, manifest, utcnow())
    except ArtifactError:
        request.app.state.metrics.alert_refused("dbt", "invalid")
        raise
    intake = await _take(
        request,
        session,
        "dbt",
        parsed.alerts,
        parsed.refused,
        rules,
        settings,
        dbt.downstream(manifest),
    )
    return AlertsTaken.of("dbt", intake, positions=parsed.positions, ignored=parsed.ignored)


@pagerduty_router.post(
    "/pagerduty/v2/enqueue",
    status_code=202,
    response_model=None,
    responses={
        202: {"model": PagerDutyAccepted, "description": "Taken (stored before the answer)"},
        400: {"model": PagerDutyRefused, "description": "An invalid event, in PagerDuty's shape"},
        401: {"model": PagerDutyRefused, "description": "The routing_key is no known token"},
        403: {"model": PagerDutyRefused, "description": "The token may not create incidents"},
    },
)
async def enqueue_pagerduty(
    request: Request, session: SessionDep, settings: SettingsDep, rules: AlertRulesDep
) -> JSONResponse:
    """PagerDuty Events API v2: trigger, acknowledge or resolve the incident of `dedup_key`.
    `routing_key` is an Intervene token that may create incidents (responder or above)."""
    metrics: Metrics = request.app.state.metrics
    raw = await request.body()
    try:
        if len(raw) > BODY_MAX:
            raise pagerduty.InvalidEvent([f"Event is larger than {BODY_MAX} bytes"])
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        document = None
    try:
        if document is None:
            raise pagerduty.InvalidEvent(["Malformed JSON"])
        event = pagerduty.parse_event(document, received_at=utcnow())
    except pagerduty.InvalidEvent as exc:
        metrics.alert_refused("pagerduty", "invalid")
        return JSONResponse(exc.body, status_code=400)
    principal = await _routing_principal(request, event.routing_key)
    if principal is None or not principal.allows(Role.RESPONDER):
        metrics.alert_refused("pagerduty", "unauthorized")
        status, said = (401, "unknown or revoked") if principal is None else (403, "not allowed")
        return JSONResponse(
            {
                "status": "invalid routing key" if principal is None else "forbidden",
                "message": f"The routing_key is {said}: it must be an Intervene token that "
                "may create incidents (responder or above)",
                "errors": ["'routing_key' " + said],
            },
            status_code=status,
        )
    request.state.principal = principal  # the audit log names the token
    await _take(request, session, "pagerduty", [event.alert], [], rules, settings)
    return JSONResponse(pagerduty.success_body(event.dedup_key), status_code=202)


async def _routing_principal(request: Request, routing_key: str) -> Principal | None:
    authenticator: Authenticator = request.app.state.authenticator
    if not authenticator.enabled:
        return LOCAL_ADMIN
    return await authenticator.principal(routing_key)
