"""The audit log: one row per state-changing request (the API's Gate) or command (the CLI)."""

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from models.access import AuditEntry
from models.services.tokens import mask_secrets


def _text(value: str | None, size: int) -> str | None:
    """Fits the column; NUL (which PostgreSQL cannot store) shown as \\0."""
    return None if value is None else value.replace("\x00", "\\0")[:size]


async def record_entry(
    session: AsyncSession,
    *,
    principal: str | None,
    role: str | None,
    client: str,
    method: str,
    path: str,
    status: int,
    request_id: str | None = None,
) -> None:
    # one INSERT statement, not an object for the unit of work: every write request pays it
    await session.execute(
        insert(AuditEntry).values(
            principal=_text(principal, 320),
            role=_text(role, 20),
            client=_text(client, 100),
            method=_text(method, 10),
            path=_text(mask_secrets(path), 500),  # a token sent in the URL is not kept
            status=status,
            request_id=_text(request_id, 64),
        )
    )
