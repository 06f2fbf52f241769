"""GET /api/sse/events: the live, resumable event stream."""

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request

from api.auth import token_recheck
from api.sse import Broadcaster, EventStream, check_position, heartbeat, stream
from models.enums import EventType
from models.errors import BadRequest

router = APIRouter(prefix="/sse", tags=["events"])

EventId = Annotated[int | None, Query(ge=0, le=2**63 - 1)]
HeaderEventId = Annotated[int | None, Header(alias="Last-Event-ID", ge=0, le=2**63 - 1)]
KNOWN_TYPES = frozenset(t.value for t in EventType)


def _types(raw: str | None) -> frozenset[str] | None:
    if raw is None or not raw.strip():
        return None
    wanted = frozenset(part.strip() for part in raw.split(",") if part.strip())
    unknown = sorted(wanted - KNOWN_TYPES)
    if unknown:
        raise BadRequest(
            f"Unknown event type(s): {', '.join(unknown)}",
            details={"unknown": unknown, "known": sorted(KNOWN_TYPES)},
        )
    return wanted


@router.get(
    "/events",
    response_class=EventStream,
    responses={200: {"content": {"text/event-stream": {}}, "description": "The event stream"}},
)
async def stream_events(
    request: Request,
    last_event_id_header: HeaderEventId = None,
    last_event_id: EventId = None,
    types: Annotated[str | None, Query(description="Comma-separated event types")] = None,
    incident_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> EventStream:
    """Events in commit order; reconnect with Last-Event-ID (or ?last_event_id=) to resume.
    The stream ends once its token is revoked (checked at each heartbeat)."""
    broadcaster: Broadcaster = request.app.state.broadcaster
    settings = broadcaster.settings
    resume_from = last_event_id_header if last_event_id_header is not None else last_event_id
    wanted = _types(types)
    await broadcaster.refresh()
    reset, resume_from = await check_position(broadcaster, resume_from)
    return EventStream(
        lambda connection: stream(
            broadcaster,
            last_event_id=resume_from,
            types=wanted,
            incident_id=incident_id,
            reset=reset,
            connection=connection,
            still_allowed=token_recheck(request),
        ),
        headers={"Cache-Control": "no-cache"},
        ping=settings.sse_heartbeat_seconds,
        ping_message_factory=heartbeat,
    )
