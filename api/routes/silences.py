"""Silences: maintenance windows over alerts from other tools (scheduled ahead or from now)."""

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from api.auth import PrincipalDep, on_behalf
from api.deps import SessionDep
from api.schemas.silences import SilenceCreate, SilenceList, SilenceRead
from models.base import utcnow
from models.errors import BadRequest
from models.services import silences as service
from models.services.silences import Held, SilenceState

router = APIRouter(prefix="/silences", tags=["silences"])

SilenceId = Annotated[int, Path(ge=1, le=2**63 - 1, description="Silence ID")]


@router.get("")
async def list_silences(
    session: SessionDep,
    state: SilenceState | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**31)] = 0,
) -> SilenceList:
    """Silences, newest first: by default those not expired (pending and active)."""
    now = utcnow()
    rows, total = await service.list_silences(
        session, state=state, at=now, limit=limit, offset=offset
    )
    held = await service.held_by(session, [silence.id for silence in rows])
    return SilenceList(
        silences=[SilenceRead.of(s, now, held.get(s.id, Held())) for s in rows],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_silence(
    body: SilenceCreate, session: SessionDep, principal: PrincipalDep
) -> SilenceRead:
    """Silence the alerts that match, from now (or `starts_at`) until `ends_at` (or for
    `duration_seconds`): they are counted and visible, but open nothing and notify no one."""
    body = on_behalf(body, "created_by", principal)
    now = utcnow()
    starts_at, ends_at = body.window(now)
    if ends_at <= max(starts_at, now):
        raise BadRequest(
            "The silence would be over before it starts: ends_at must be after now and starts_at",
            details={"starts_at": starts_at.isoformat(), "ends_at": ends_at.isoformat()},
        )
    if ends_at - starts_at > service.MAX_DURATION:
        raise BadRequest(
            f"A silence lasts at most {service.MAX_DURATION.days} days",
            details={"max_days": service.MAX_DURATION.days},
        )
    silence = await service.create_silence(
        session,
        matchers=body.matchers.model_dump(mode="json", exclude_defaults=True),
        starts_at=starts_at,
        ends_at=ends_at,
        reason=body.reason,
        created_by=body.created_by,
        at=now,
    )
    return SilenceRead.of(silence, now, Held())


@router.get("/{silence_id}")
async def get_silence(silence_id: SilenceId, session: SessionDep) -> SilenceRead:
    """One silence, with the alerts it holds or held."""
    silence = await service.get_silence(session, silence_id)
    held = await service.held_by(session, [silence_id])
    holds = await service.holds_of(session, silence_id)
    return SilenceRead.of(silence, utcnow(), held.get(silence_id, Held()), holds)


@router.delete("/{silence_id}")
async def end_silence(
    silence_id: SilenceId, session: SessionDep, principal: PrincipalDep
) -> SilenceRead:
    """End a silence now (idempotent): an alert it held that still fires opens its incident."""
    now = utcnow()
    silence = await service.end_silence(session, silence_id, by=principal.name, at=now)
    held = await service.held_by(session, [silence_id])
    return SilenceRead.of(silence, now, held.get(silence_id, Held()))
