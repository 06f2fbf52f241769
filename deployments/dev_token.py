"""The local admin token that `intervene dev` creates and prints."""

import asyncio
from pathlib import Path

from models import migrate
from models.db import connect, transaction
from models.enums import Role
from models.services.tokens import create_token, find_active
from models.settings import DEFAULT_DATA_DIR

DEV_TOKEN_FILE = DEFAULT_DATA_DIR / "dev-token"


def dev_token(url: str, path: Path = DEV_TOKEN_FILE) -> str:
    """The local admin token of `intervene dev`: kept in .intervene/dev-token (mode 600) and
    reused while it is valid, so a restart does not change it."""
    migrate.upgrade(url)
    kept = path.read_text().strip() if path.exists() else None
    secret = asyncio.run(_valid_or_new(url, kept))
    if secret != kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.chmod(0o600)  # an older file may have been readable by others
        path.write_text(secret + "\n")
    return secret


async def _valid_or_new(url: str, kept: str | None) -> str:
    database = connect(url)
    try:
        if kept:
            async with transaction(database.reader) as session:
                if await find_active(session, kept) is not None:
                    return kept
        async with transaction(database.writer) as session:
            new = await create_token(
                session, name="local-admin", role=Role.ADMIN, created_by="intervene dev"
            )
        return new.secret
    finally:
        await database.dispose()
