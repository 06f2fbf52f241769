"""What a notification says: an incident's facts, its acknowledge timer and a link to it."""

from datetime import datetime

from models.incident import Incident
from models.sla import TimerStatus


def subject(incident: Incident) -> str:
    return (
        f"[{incident.severity.value.upper()}] {incident.summary} "
        f"(incident #{incident.id}, {incident.status.value})"
    )


def body(incident: Incident, *, public_url: str | None, acknowledge: TimerStatus | None) -> str:
    lines = [
        incident.summary,
        "",
        f"Severity: {incident.severity.value}",
        f"Status:   {incident.status.value}",
        f"Kind:     {incident.kind.value}",
        f"Key:      {incident.key}",
        f"Opened:   {_time(incident.created_at)}",
        f"Seen:     {incident.occurrence_count} time(s), last {_time(incident.last_seen_at)}",
    ]
    if acknowledge is not None and acknowledge.due_at is not None:
        lines.append(f"Acknowledge by: {_time(acknowledge.due_at)} ({acknowledge.state.value})")
    if incident.details:
        lines += ["", "Details:"]
        lines += [f"  {name}: {value}" for name, value in sorted(incident.details.items())]
    if public_url:
        lines += ["", f"Open in console: {public_url.rstrip('/')}/#/incidents/{incident.id}"]
    return "\n".join(lines) + "\n"


def _time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")
