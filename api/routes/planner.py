"""GET /api/planner: which planner version serves how much traffic, and what changed it."""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from api.deps import SessionDep
from models.services import planner as service

router = APIRouter(prefix="/planner", tags=["planner"])


class PlannerChangeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor: str
    action_id: int | None
    change: str
    before: dict[str, Any]
    after: dict[str, Any]


class PlannerRead(BaseModel):
    active_version: str | None
    stable_version: str | None
    canary_version: str | None
    traffic: dict[str, int]
    updated_at: datetime | None
    history: list[PlannerChangeRead]


@router.get("")
async def get_planner(
    session: SessionDep, history: Annotated[int, Query(ge=0, le=500)] = 20
) -> PlannerRead:
    """The planner's traffic by version (what agents should use) and its latest changes."""
    state = await service.get_state(session)
    changes = await service.list_changes(session, limit=history) if history else []
    return PlannerRead(
        active_version=state.active_version if state else None,
        stable_version=state.stable_version if state else None,
        canary_version=state.canary_version if state else None,
        traffic={k: int(v) for k, v in state.traffic.items()} if state else {},
        updated_at=state.updated_at if state else None,
        history=[PlannerChangeRead.model_validate(c) for c in changes],
    )
