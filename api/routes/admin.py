"""Admin: API tokens (create, list, revoke) and the audit log."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, StringConstraints
from sqlalchemy import select

from api.auth import AdminDep, Authenticator
from api.deps import SessionDep
from api.schemas.incidents import Body, Person
from api.schemas.moments import Moment, When
from models.access import ApiToken, AuditEntry
from models.db import Database, transaction
from models.enums import Role
from models.services.tokens import create_token, list_tokens, revoke_token

router = APIRouter(tags=["admin"])

TokenId = Annotated[int, Path(ge=1, le=2**63 - 1)]


class TokenCreate(Body):
    name: Person
    role: Role


class TokenRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    role: str
    prefix: str
    created_at: datetime
    created_by: str
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(TokenRead):
    token: str  # shown once


class TokenList(BaseModel):
    tokens: list[TokenRead]


class AuditRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    principal: str | None
    role: str | None
    client: str | None
    method: str
    path: str
    status: int
    request_id: str | None


class AuditList(BaseModel):
    entries: list[AuditRead]


@router.post("/tokens", status_code=201)
async def create(body: TokenCreate, admin: AdminDep, session: SessionDep) -> TokenCreated:
    """A new token; its secret is in this answer only."""
    new = await create_token(session, name=body.name, role=body.role, created_by=admin.name)
    return TokenCreated(**TokenRead.model_validate(new.token).model_dump(), token=new.secret)


@router.get("/tokens")
async def list_(_admin: AdminDep, session: SessionDep) -> TokenList:
    return TokenList(tokens=[TokenRead.model_validate(t) for t in await list_tokens(session)])


@router.post("/tokens/{token_id}/revoke")
async def revoke(token_id: TokenId, _admin: AdminDep, request: Request) -> TokenRead:
    database: Database = request.app.state.db
    async with transaction(database.writer) as session:
        token: ApiToken = await revoke_token(session, token_id)
    authenticator: Authenticator = request.app.state.authenticator
    authenticator.forget()  # after the commit: this process at once, the others within
    return TokenRead.model_validate(token)  # INTERVENE_AUTH_CACHE_SECONDS


Text = Annotated[str, StringConstraints(max_length=500)]


@router.get("/audit")
async def audit(
    _admin: AdminDep,
    session: SessionDep,
    principal: Text | None = None,
    method: Annotated[str | None, StringConstraints(max_length=10)] = None,
    path_prefix: Text | None = None,
    since: Annotated[Moment | None, When] = None,
    until: Annotated[Moment | None, When] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditList:
    """State-changing requests, newest first, filtered by who, what and when."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if principal is not None:
        query = query.where(AuditEntry.principal == principal)
    if method is not None:
        query = query.where(AuditEntry.method == method.upper())
    if path_prefix is not None:
        query = query.where(AuditEntry.path.startswith(path_prefix, autoescape=True))
    if since is not None:
        query = query.where(AuditEntry.at >= since)
    if until is not None:
        query = query.where(AuditEntry.at < until)
    return AuditList(entries=[AuditRead.model_validate(e) for e in await session.scalars(query)])
