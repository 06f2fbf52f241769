"""What a Slack notification shows (Block Kit): the incident's facts, its acknowledge timer, and
buttons: Acknowledge while it is open, Open in console, and Approve / Deny for each approval
request still pending. The same function renders the first post and every update in place,
so the message always shows the incident as it is.

Button values carry the ids the interactivity endpoint (api/routes/slack.py) acts on:
`acknowledge` -> "<incident id>", `approve` / `deny` -> "<incident id>:<approval id>".
"""

from typing import Any

from models.access import ApprovalRequest
from models.enums import IncidentStatus
from models.incident import Incident
from models.sla import TimerStatus
from oncall.messages import subject

Block = dict[str, Any]
MAX_TEXT = 2900  # a section's text is at most 3000 characters
MAX_APPROVALS = 5  # a message holds at most 50 blocks; a few requests is what a person decides


def text_of(incident: Incident) -> str:
    """The notification's plain text (what Slack shows where blocks cannot be)."""
    return subject(incident)


def blocks(
    incident: Incident,
    *,
    pending: list[ApprovalRequest],
    public_url: str | None,
    acknowledge: TimerStatus | None,
) -> list[Block]:
    facts = [
        f"*Severity*\n{incident.severity.value}",
        f"*Status*\n{incident.status.value}",
        f"*Kind*\n{incident.kind.value}",
        f"*Key*\n`{_plain(incident.key)[:200]}`",
        f"*Seen*\n{incident.occurrence_count} time(s)",
    ]
    if incident.acknowledged_by:
        facts.append(f"*Acknowledged by*\n{_plain(incident.acknowledged_by)[:100]}")
    elif acknowledge is not None and acknowledge.due_at is not None:
        due = acknowledge.due_at.strftime("%Y-%m-%d %H:%M UTC")
        facts.append(f"*Acknowledge by*\n{due} ({acknowledge.state.value})")
    out: list[Block] = [
        {"type": "header", "text": _plain_text(f"#{incident.id} {incident.summary}"[:150])},
        {"type": "section", "fields": [_markdown(f) for f in facts]},
    ]
    if incident.details:
        lines = [f"{_plain(str(k))}: {_plain(str(v))}" for k, v in sorted(incident.details.items())]
        out.append({"type": "section", "text": _markdown("\n".join(lines)[:MAX_TEXT])})
    buttons: list[Block] = []
    if incident.status is IncidentStatus.OPEN:
        buttons.append(_button("Acknowledge", "acknowledge", str(incident.id), style="primary"))
    if public_url:
        link = f"{public_url.rstrip('/')}/#/incidents/{incident.id}"
        buttons.append({**_button("Open in console", "open", str(incident.id)), "url": link})
    if buttons:
        out.append({"type": "actions", "block_id": "incident", "elements": buttons})
    for request in pending[:MAX_APPROVALS]:
        out += _approval(incident.id, request)
    return out


def _approval(incident_id: int, request: ApprovalRequest) -> list[Block]:
    what = "roll back action" if request.rollback_of else "run"
    target = f" #{request.rollback_of}" if request.rollback_of else ""
    asked = (
        f"*Approval needed*: {what}{target} `{request.action_type}` "
        f"asked by {_plain(request.requested_by)[:100]}"
    )
    if request.reason:
        asked += f"\n>{_plain(request.reason)[:500]}"
    value = f"{incident_id}:{request.id}"
    return [
        {"type": "section", "text": _markdown(asked)},
        {
            "type": "actions",
            "block_id": f"approval-{request.id}",
            "elements": [
                _button("Approve", "approve", value, style="primary"),
                _button("Deny", "deny", value, style="danger"),
            ],
        },
    ]


def _button(label: str, action_id: str, value: str, style: str | None = None) -> Block:
    button: Block = {
        "type": "button",
        "text": _plain_text(label),
        "action_id": action_id,
        "value": value,
    }
    if style:
        button["style"] = style
    return button


def _plain_text(text: str) -> Block:
    return {"type": "plain_text", "text": text or "-", "emoji": False}


def _markdown(text: str) -> Block:
    return {"type": "mrkdwn", "text": text or "-"}


def _plain(text: str) -> str:
    """Text from an incident shown as itself: no mentions, links or formatting it did not mean
    (Slack's escaping of &, < and >)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
