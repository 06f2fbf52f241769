"""Dependencies, as `Annotated` aliases that keep route signatures short."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import READ_METHODS
from api.schemas.incidents import SlaClock
from models.base import utcnow
from models.db import Database
from models.settings import Settings
from playbooks.service import Playbooks


def get_database(request: Request) -> Database:
    database: Database = request.app.state.db
    return database


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request: committed when the route returns, rolled back if it raises.

    Writes start as writers (SQLite: `BEGIN IMMEDIATE`) so concurrent changes queue up.
    """
    database = get_database(request)
    factory = database.reader if request.method in READ_METHODS else database.writer
    async with factory() as session, session.begin():
        yield session


def get_playbooks(request: Request) -> Playbooks:
    playbooks: Playbooks = request.app.state.playbooks
    return playbooks


def get_sla_clock(request: Request) -> SlaClock:
    """The configured SLA targets and the time of this request, for incidents' `sla`."""
    return SlaClock(plans=request.app.state.sla_plans, now=utcnow())


# scope="function": commit before the response is sent, so a 200 means it is stored.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
PlaybooksDep = Annotated[Playbooks, Depends(get_playbooks)]
SlaClockDep = Annotated[SlaClock, Depends(get_sla_clock)]
