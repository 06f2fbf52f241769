"""The API's token cache and revocation: a lookup under way when a token is revoked must not
put it back into the cache (it would then be accepted for INTERVENE_AUTH_CACHE_SECONDS more)."""

import asyncio
from typing import Any

import pytest
from httpx import AsyncClient

import api.auth
from api.auth import Authenticator
from models.db import Database, transaction
from models.enums import Role
from models.services.tokens import find_active, revoke_token
from models.settings import Settings
from tests.auth import issue

DEADLINE_SECONDS = 30  # only a broken test waits this long: the wait ends at the state


async def test_a_lookup_under_way_at_a_revocation_is_not_remembered(
    db: Database,
    settings: Settings,
    client: AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    authenticator = Authenticator(db, settings)  # remembers tokens for 10 s
    secret = await issue(db, "racer@x.io", Role.VIEWER)
    writing_last_use = asyncio.Event()
    touch = api.auth.touch

    async def touch_and_tell(*args: Any, **kwargs: Any) -> None:
        writing_last_use.set()  # it read the token as active, and now writes its last use
        await touch(*args, **kwargs)

    monkeypatch.setattr(api.auth, "touch", touch_and_tell)
    async with transaction(db.writer) as session:
        token = await find_active(session, secret)
        assert token is not None
        await revoke_token(session, token.id)
        await session.flush()  # the revocation holds the row (or SQLite's write lock) to commit
        lookup = asyncio.create_task(authenticator.principal(secret))
        await asyncio.wait_for(writing_last_use.wait(), DEADLINE_SECONDS)
        # it read the token as active (the revocation is not committed) and waits to write
        # its last use: the moment the race needs
        assert not lookup.done()
    authenticator.forget()  # as POST /api/tokens/{id}/revoke does once it has committed

    during = await asyncio.wait_for(lookup, DEADLINE_SECONDS)
    after = await authenticator.principal(secret)

    assert during is not None
    assert during.name == "racer@x.io"  # read before the commit: this one request passes
    assert after is None  # but the cache did not keep it
