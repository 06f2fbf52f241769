"""Acting from Slack: the buttons of a notification (oncall/slack_message.py) land here.

Slack signs each request with the app's signing secret; a request without a valid signature,
or signed more than five minutes ago (a replay), is a 401 and changes nothing. The Slack user
who clicked must be a person of the on-call file (by `slack_user_id`); that person acts with
the file's role for them, by the same services as the API: Acknowledge needs a responder,
Approve / Deny an approver, and the two-person rule holds (whoever asked for an execution
cannot approve it: name API tokens after the person's id, so one person is one name). The
audit log names the person; the timeline says it came from Slack. Whoever Slack names but the
file does not know, or whose role falls short, is told so in a message only they see.

The answer is an empty 200 once the change is committed (Slack shows an error without an
answer within 3 s); the notification itself is rewritten by the notifier's next pass.
"""

import asyncio
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request, Response

from api.deps import SettingsDep
from api.openapi import Error
from integrations.slack import SlackFailed, interaction, signed_by_slack, slack_api
from models.access import Principal
from models.db import Database, transaction
from models.enums import Role, Verb
from models.errors import BadRequest, DomainError, Forbidden, NotFound, Unauthorized
from models.services.incidents import transition_incident
from models.settings import Settings
from oncall.schedules import OnCallFile
from playbooks.approvals import Approvals

log = logging.getLogger("intervene.slack")

router = APIRouter(prefix="/integrations/slack", tags=["integrations"])

FROM_SLACK = "from Slack"
NEEDS = {"acknowledge": Role.RESPONDER, "approve": Role.APPROVER, "deny": Role.APPROVER}


@dataclass(frozen=True)
class Click:
    user: str  # Slack's user id
    channel: str | None  # where the message is (to answer there, to that user only)
    action: str  # acknowledge | approve | deny | open
    incident_id: int
    approval_id: int | None

    @classmethod
    def of(cls, payload: dict[str, Any]) -> "Click":
        try:
            user = str(payload["user"]["id"])
            [action] = payload["actions"][:1]
            name, value = str(action["action_id"]), str(action.get("value", ""))
            ids = [int(part) for part in value.split(":")]
        except (KeyError, TypeError, ValueError) as exc:
            raise BadRequest("Not a Slack button click that Intervene sent") from exc
        where = payload.get("channel")
        channel = str(where["id"]) if isinstance(where, dict) and where.get("id") else None
        if len(ids) not in (1, 2) or not all(0 < i < 2**63 for i in ids):
            raise BadRequest("Not a Slack button click that Intervene sent")
        return cls(user, channel, name, ids[0], ids[1] if len(ids) == 2 else None)


@router.post(
    "/interactions",
    status_code=200,
    response_class=Response,
    responses={
        400: {"model": Error, "description": "Signed, but not a click Intervene sent"},
        401: {"model": Error, "description": "Not signed by Slack, or signed too long ago"},
        404: {"model": Error, "description": "INTERVENE_SLACK_SIGNING_SECRET is not set"},
    },
)
async def slack_interaction(request: Request, settings: SettingsDep) -> Response:
    """A button clicked in a Slack notification (Slack's interactivity request)."""
    if settings.slack_signing_secret is None:
        raise NotFound("Slack interactivity is not configured (INTERVENE_SLACK_SIGNING_SECRET)")
    raw = await request.body()
    timestamp = request.headers.get("x-slack-request-timestamp", "")
    signature = request.headers.get("x-slack-signature", "")
    if not signed_by_slack(
        settings.slack_signing_secret.get_secret_value(), raw, timestamp, signature
    ):
        raise Unauthorized(
            "The request is not signed by Slack, or was signed more than 5 minutes ago",
            details={"scheme": "slack-signature"},
        )
    try:
        [payload] = parse_qs(raw.decode(), strict_parsing=True)["payload"]
        click = Click.of(interaction(payload))
    except (KeyError, ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("Expected a form with one `payload` holding Slack's JSON") from exc
    if click.action == "open":  # a link button: Slack opens the console itself
        return Response(status_code=200)
    oncall: OnCallFile = request.app.state.oncall
    person = oncall.by_slack(click.user)
    if person is None:
        await _tell(settings, click, "Intervene does not know you (no person of its on-call file"
                    f" has Slack id {click.user}): nothing was done.")  # fmt: skip
        return Response(status_code=200)
    principal = Principal(name=person.id, role=person.role)
    request.state.principal = principal  # the audit log names the person
    try:
        said = await _act(request, principal, click)
    except DomainError as exc:  # refused as the API would refuse it: only the clicker is told
        said = f"Not done: {exc.message}"
    await _tell(settings, click, said)
    return Response(status_code=200)


async def _act(request: Request, principal: Principal, click: Click) -> str:
    needed = NEEDS.get(click.action)
    if needed is None:
        raise BadRequest(f"Unknown button {click.action!r}")
    if not principal.allows(needed):
        raise Forbidden(f"{principal.name} is a {principal.role}; {click.action} needs {needed}")
    if click.action == "acknowledge":
        database: Database = request.app.state.db
        async with transaction(database.writer) as session:
            await transition_incident(
                session,
                incident_id=click.incident_id,
                verb=Verb.ACKNOWLEDGE,
                actor=principal.name,
                notes=FROM_SLACK,
                changes={"acknowledged_by": principal.name},
            )
        return f"Incident #{click.incident_id} acknowledged by {principal.name}."
    if click.approval_id is None:
        raise BadRequest("An approval button names its request")
    approvals: Approvals = request.app.state.approvals
    if click.action == "approve":
        _, action = await approvals.approve(
            click.incident_id, click.approval_id, principal, FROM_SLACK
        )
        return f"Approved: action #{action.id} ({action.action_type}) is {action.status}."
    await approvals.reject(click.incident_id, click.approval_id, principal, FROM_SLACK)
    return f"Denied approval request #{click.approval_id}."


async def _tell(settings: Settings, click: Click, text: str) -> None:
    """A message only the clicker sees; Slack being down loses it, never the change."""
    slack = slack_api(settings)
    if slack is None or click.channel is None:
        return
    try:
        await asyncio.to_thread(slack.whisper, click.channel, click.user, text)
    except SlackFailed as exc:
        log.warning("could not tell %s: %s", click.user, exc)
