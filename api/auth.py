"""Bearer tokens and roles.

Every route but /api/health needs a token: `Authorization: Bearer <token>`, or, on the SSE
stream only, `?access_token=` (a browser's EventSource cannot set headers). Reads need the
viewer role, every other method responder; routes that need more say so with `require()`.
With INTERVENE_AUTH=disabled every request acts as the local admin (the API warns at start).
"""

import logging
import re
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from typing import Annotated, Any, TypeVar

from cachetools import TTLCache
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from models.access import Principal
from models.base import utcnow
from models.db import Database, transaction
from models.enums import Role
from models.errors import Forbidden, Unauthorized
from models.services.tokens import find_active, hash_secret, mask_secrets, touch
from models.settings import Settings

BodyT = TypeVar("BodyT", bound=BaseModel)

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
TOUCH_EVERY = timedelta(minutes=5)  # last_used_at is a hint, not a log (the audit is)


_TOKEN_IN_URL = re.compile(r"(access(?:_|%5[fF])token=)[^&\s\"']+")


def redact(text: str) -> str:
    """`text` with the ?access_token= value, and anything that looks like a token anywhere
    (a path, another query parameter), masked."""
    return mask_secrets(_TOKEN_IN_URL.sub(r"\1***", text))


class RedactTokens(logging.Filter):
    """Tokens never reach the logs: in a URL (uvicorn's access lines, ours that name a path) or
    anywhere else in a line, masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args and isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


LOCAL_ADMIN = Principal(name="local", role=Role.ADMIN)


class Authenticator:
    """Token lookups by hash, remembered for a few seconds so a request costs no query.

    A lookup that began before a `forget()` may have read the token before it was revoked:
    the generation it began in tells, and such a result is used once but never remembered."""

    def __init__(self, database: Database, settings: Settings) -> None:
        self.database = database
        self.enabled = settings.auth == "enabled"
        self._seen: TTLCache[str, Principal] = TTLCache(
            maxsize=10_000, ttl=settings.auth_cache_seconds, timer=time.monotonic
        )
        self._generation = 0  # one more at each forget()

    async def principal(self, secret: str) -> Principal | None:
        key = hash_secret(secret)
        if (known := self._seen.get(key)) is not None:
            return known
        generation = self._generation
        async with transaction(self.database.reader) as session:
            token = await find_active(session, secret)
        if token is None:
            return None
        if token.last_used_at is None or utcnow() - token.last_used_at > TOUCH_EVERY:
            async with transaction(self.database.writer) as session:
                await touch(session, token.id)
        found = Principal(name=token.name, role=Role(token.role), token_id=token.id)
        if self._seen.ttl > 0 and generation == self._generation:
            self._seen[key] = found
        return found

    def known(self, secret: str) -> Principal | None:
        """The principal if this process looked the token up lately; never a query (the Gate
        names who sent a request it refuses, if it can, at no cost)."""
        return self._seen.get(hash_secret(secret))

    def forget(self) -> None:
        """After a revocation (committed): look every token up again, including those whose
        lookup is under way now."""
        self._generation += 1
        self._seen.clear()


def bearer_secret(header: str | None) -> str | None:
    """The token in an Authorization header's value, if it is a bearer token."""
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


def request_secret(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is not None:
        return bearer_secret(header)
    if request.url.path.endswith("/sse/events"):
        return request.query_params.get("access_token") or None
    return None


def token_recheck(request: Request) -> Callable[[], Awaitable[bool]] | None:
    """For an answer that outlives its request (the event stream): whether the request's token
    is still accepted, asked through the same cache as requests. None with auth disabled."""
    authenticator: Authenticator = request.app.state.authenticator
    secret = request_secret(request)
    if not authenticator.enabled or secret is None:
        return None

    async def still_allowed() -> bool:
        return await authenticator.principal(secret) is not None

    return still_allowed


# declares the scheme in the OpenAPI document (the Authorize button); request_secret reads it
BEARER = HTTPBearer(auto_error=False, description="An API token: intervene tokens create")


async def authenticate(
    request: Request,
    _declared: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
) -> Principal:
    """The principal of this request, kept on `request.state` for the audit log."""
    authenticator: Authenticator = request.app.state.authenticator
    if not authenticator.enabled:
        principal = LOCAL_ADMIN
    else:
        secret = request_secret(request)
        if secret is None:
            raise Unauthorized(
                "Authentication required: send Authorization: Bearer <token>",
                details={"scheme": "Bearer"},
            )
        found = await authenticator.principal(secret)
        if found is None:
            raise Unauthorized(
                "The token is unknown or revoked",
                details={"scheme": "Bearer", "error": "invalid_token"},
            )
        principal = found
    request.state.principal = principal
    needed = Role.VIEWER if request.method in READ_METHODS else Role.RESPONDER
    if not principal.allows(needed):
        raise Forbidden(
            f"The {principal.role} role may not {request.method} here (needs {needed})",
            details={"role": principal.role.value, "required_role": needed.value},
        )
    return principal


def require(role: Role) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A route dependency: the principal must hold `role` (or one above it)."""

    async def check(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if not principal.allows(role):
            raise Forbidden(
                f"This needs the {role} role; the token has {principal.role}",
                details={"role": principal.role.value, "required_role": role.value},
            )
        return principal

    return check


PrincipalDep = Annotated[Principal, Depends(authenticate)]
ApproverDep = Annotated[Principal, Depends(require(Role.APPROVER))]
AdminDep = Annotated[Principal, Depends(require(Role.ADMIN))]


def on_behalf(body: BodyT, field: str, principal: Principal) -> BodyT:
    """`body` with `field` (who did it: actor, requested_by, reported_by) set to the caller's
    token name when the client left it out, so timelines and histories name a person, not
    "api". A name the client gives is kept (a bot acting for someone). With auth disabled
    there is no one to name, and the default stays."""
    if field in body.model_fields_set or principal.token_id is None:
        return body
    return body.model_copy(update={field: principal.name})
