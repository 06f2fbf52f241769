"""Stats: how many incidents, how fast they were handled, how often the SLA held."""

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import SessionDep, SettingsDep
from api.schemas.stats import Stats
from models.base import utcnow
from models.services.stats import incident_stats

router = APIRouter(prefix="/stats", tags=["stats"])


@router.get("")
async def get_stats(
    session: SessionDep,
    settings: SettingsDep,
    days: Annotated[int, Query(ge=1, le=365, description="Window length, ending now")] = 7,
    top: Annotated[int, Query(ge=1, le=50, description="Length of each noisiest-keys list")] = 10,
) -> Stats:
    """Counts, MTTA, MTTR, SLA compliance and noisiest keys of the last `days` days' incidents.

    An incident belongs to the window by its creation time, whatever happened to it since;
    its SLA timers are judged as of now.
    """
    until = utcnow()
    since = until - timedelta(days=days)
    stats = await incident_stats(
        session, since=since, until=until, targets=settings.sla_targets, top=top
    )
    return Stats.of(stats)
