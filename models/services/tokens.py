"""API tokens: created (the secret shown once), looked up by their hash, listed, revoked."""

import hashlib
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models.access import ApiToken
from models.base import utcnow
from models.enums import Role
from models.errors import NotFound

SECRET_PREFIX = "ivt_"  # noqa: S105  (a marker that makes leaked tokens easy to spot, not a secret)
# A secret as it can appear in a URL: token_urlsafe's alphabet, any character of it or of the
# prefix percent-escaped (`%69vt_...` reaches the server as `ivt_...` all the same)
_SECRET_IN_TEXT = re.compile(
    r"(?:i|%69)(?:v|%76)(?:t|%74)(?:_|%5[fF])(?:[\w-]|%[0-9A-Fa-f]{2})+", re.ASCII
)
MASKED = SECRET_PREFIX + "***"


def mask_secrets(text: str) -> str:
    """`text` with everything that looks like a token's secret replaced by `ivt_***`."""
    return _SECRET_IN_TEXT.sub(MASKED, text) if "ivt" in text or "%" in text else text


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class NewToken:
    token: ApiToken
    secret: str  # shown once, never stored


async def create_token(
    session: AsyncSession, *, name: str, role: Role, created_by: str
) -> NewToken:
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        name=name,
        role=role.value,
        secret_hash=hash_secret(secret),
        prefix=secret[:10],
        created_by=created_by,
    )
    session.add(token)
    await session.flush()
    return NewToken(token=token, secret=secret)


async def find_active(session: AsyncSession, secret: str) -> ApiToken | None:
    token = await session.scalar(
        select(ApiToken).where(ApiToken.secret_hash == hash_secret(secret))
    )
    return token if token is not None and token.revoked_at is None else None


async def list_tokens(session: AsyncSession) -> list[ApiToken]:
    return list(await session.scalars(select(ApiToken).order_by(ApiToken.id)))


async def revoke_token(session: AsyncSession, token_id: int) -> ApiToken:
    token = await session.get(ApiToken, token_id, with_for_update=True)
    if token is None:
        raise NotFound(f"Token {token_id} not found", details={"token_id": token_id})
    if token.revoked_at is None:
        token.revoked_at = utcnow()
    return token


async def touch(session: AsyncSession, token_id: int) -> None:
    await session.execute(
        update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=utcnow())
    )
