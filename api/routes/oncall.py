"""Who is on call now and next, for each schedule of the on-call file (INTERVENE_ONCALL_FILE),
and the overrides that put someone else on call for a while (made, listed, cancelled; every
change in the audit log, the Gate's, and on the override: by whom)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, status

from api.auth import PrincipalDep
from api.deps import SessionDep
from api.schemas.moments import Moment
from api.schemas.oncall import (
    OnCallRead,
    OverrideCreate,
    OverrideList,
    OverrideRead,
    PoliciesRead,
)
from models.base import utcnow
from models.errors import BadRequest, InvalidParams
from models.services import oncall_overrides as service
from models.services.oncall_overrides import MAX_DURATION, OverrideState
from oncall.rotation import on_call
from oncall.schedules import OnCallFile

router = APIRouter(prefix="/oncall", tags=["oncall"])


async def get_oncall(request: Request) -> OnCallFile:
    """async: FastAPI runs a plain-function dependency on a worker thread."""
    oncall: OnCallFile = request.app.state.oncall
    return oncall


OnCallDep = Annotated[OnCallFile, Depends(get_oncall)]
At = Annotated[
    Moment | None,
    Query(description="The instant to ask about, ISO 8601; without an offset, UTC (default: now)"),
]
OverrideId = Annotated[int, Path(ge=1, le=2**63 - 1, description="Override ID")]


@router.get("")
async def get_on_call(oncall: OnCallDep, session: SessionDep, at: At = None) -> OnCallRead:
    """For each schedule, who is on call at `at` (now by default), overrides applied, and who is
    next, with the times of their duty."""
    instant = at or utcnow()
    return OnCallRead.of(oncall, instant, await service.in_force(session, instant))


@router.get("/policies")
async def get_policies(oncall: OnCallDep) -> PoliciesRead:
    """The escalation policies, in the order they are tried, and the channels their steps may
    post to."""
    return PoliciesRead(policies=list(oncall.policies), channels=list(oncall.channels))


@router.get("/overrides")
async def list_overrides(
    oncall: OnCallDep,
    session: SessionDep,
    schedule: Annotated[str | None, Query(max_length=64)] = None,
    state: OverrideState | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**31)] = 0,
) -> OverrideList:
    """Overrides by start time: by default those to come or under way."""
    now = utcnow()
    rows, total = await service.list_overrides(
        session, schedule=schedule, state=state, at=now, limit=limit, offset=offset
    )
    return OverrideList(
        overrides=[OverrideRead.of(row, oncall, now) for row in rows],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.post("/overrides", status_code=status.HTTP_201_CREATED)
async def create_override(
    body: OverrideCreate, oncall: OnCallDep, session: SessionDep, principal: PrincipalDep
) -> OverrideRead:
    """Put `person` on call for `schedule` for a window, in place of the rotation's person
    (the newest override wins where two overlap). Recorded with the caller as its author."""
    schedule = oncall.schedule(body.schedule)
    problems = []
    if schedule is None:
        known = ", ".join(s.name for s in oncall.schedules) or "none"
        problems.append(("schedule", f"unknown schedule {body.schedule!r} (schedules: {known})"))
    if oncall.person(body.person) is None:
        known = ", ".join(p.id for p in oncall.people) or "none"
        problems.append(("person", f"unknown person {body.person!r} (people: {known})"))
    if problems:
        raise InvalidParams(
            [{"loc": ("body", f), "msg": m, "type": "value_error"} for f, m in problems]
        )
    assert schedule is not None
    now = utcnow()
    starts_at, ends_at = body.window(now)
    details = {"starts_at": starts_at.isoformat(), "ends_at": ends_at.isoformat()}
    if ends_at <= max(starts_at, now):
        raise BadRequest(
            "The override would be over before it starts: ends_at must be after now and starts_at",
            details=details,
        )
    if ends_at - starts_at > MAX_DURATION:
        raise BadRequest(
            f"An override lasts at most {MAX_DURATION.days} days: change the rotation instead",
            details=details,
        )
    covers = on_call(schedule, max(starts_at, now))[0].person_id
    override = await service.create_override(
        session,
        schedule=schedule.name,
        person=body.person,
        covers=covers,
        starts_at=starts_at,
        ends_at=ends_at,
        reason=body.reason,
        created_by=principal.name,
        at=now,
    )
    return OverrideRead.of(override, oncall, now)


@router.delete("/overrides/{override_id}")
async def cancel_override(
    override_id: OverrideId, oncall: OnCallDep, session: SessionDep, principal: PrincipalDep
) -> OverrideRead:
    """Cancel an override (idempotent): the rotation's person is on call again for its window."""
    now = utcnow()
    override = await service.cancel_override(session, override_id, by=principal.name, at=now)
    return OverrideRead.of(override, oncall, now)
