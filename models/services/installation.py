"""Reading this installation's id (models/installation.py)."""

from uuid import uuid4

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from models.base import utcnow
from models.installation import Installation

_KNOWN: dict[str, str] = {}  # database URL -> its id, which never changes once made


async def installation_id(session: AsyncSession) -> str:
    """The id; a database whose tables were made without the migrations gets one now. Read
    once per database and process (the reconciler and every hook ask)."""
    database = str(session.get_bind().engine.url)  # password masked: a key, never shown
    if database in _KNOWN:
        return _KNOWN[database]
    _KNOWN[database] = await _read_or_make(session)
    return _KNOWN[database]


async def _read_or_make(session: AsyncSession) -> str:
    found = await session.scalar(select(Installation.installation_id).where(Installation.id == 1))
    if found is not None:
        return found
    try:
        async with session.begin_nested():
            session.add(Installation(id=1, installation_id=str(uuid4()), created_at=utcnow()))
    except IntegrityError:  # another process made it first
        pass
    made = await session.scalar(select(Installation.installation_id).where(Installation.id == 1))
    assert made is not None
    return made
