"""Tokens for tests: made through the real service, sent as the real header."""

from models.db import Database, connect, transaction
from models.enums import Role
from models.services.tokens import create_token

TESTER = "lead@x.io"  # the default test client's principal (an admin)


async def issue(database: Database, name: str = TESTER, role: Role = Role.ADMIN) -> str:
    async with transaction(database.writer) as session:
        return (await create_token(session, name=name, role=role, created_by="tests")).secret


async def issue_at(database_url: str, name: str = TESTER, role: Role = Role.ADMIN) -> str:
    database = connect(database_url)
    try:
        return await issue(database, name, role)
    finally:
        await database.dispose()


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}
