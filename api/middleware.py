"""What every request passes through (`Gate`): the per-address rate limit (with its headers on
every answer), the body size cap, security headers, and the audit log of changes.

Plain ASGI middleware: nothing here buffers a response, so the SSE stream flows through.
"""

import ipaddress
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_to_bytes

from limits import parse
from limits.aio.strategies import FixedWindowRateLimiter
from limits.storage import storage_from_string
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import READ_METHODS, Authenticator, bearer_secret
from api.errors import envelope_bytes
from api.headers import RATE_LIMIT_STATE, answer_headers
from api.metrics import Metrics
from models.access import Principal
from models.db import Database, transaction
from models.services.audit import record_entry
from models.settings import Settings

log = logging.getLogger("intervene.api")

# Not counted: the health probe (load balancers call it all day) and the console's static
# files (its API calls are counted like any other client's).
UNLIMITED_PATHS = frozenset({"/api/health", "/"})
UNLIMITED_PREFIXES = ("/console/",)
WARN_EVERY_SECONDS = 60.0  # the rate-limit store being down, logged at most this often

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def client_address(scope: Scope, trusted: list[Network]) -> str:
    """The peer's address; behind a trusted proxy, the first untrusted hop of X-Forwarded-For,
    read right to left over every such header (the left part is whatever the client claimed).
    A hop that is not an address ends the walk: the last trusted hop is used."""
    peer = str((scope.get("client") or ("unknown", 0))[0])
    if not trusted or not _within(peer, trusted):
        return peer
    forwarded = ",".join(
        v.decode("latin-1") for k, v in scope["headers"] if k == b"x-forwarded-for"
    )
    address = peer
    for hop in reversed([part.strip() for part in forwarded.split(",") if part.strip()]):
        parsed = _address(hop)
        if parsed is None:
            break
        address = parsed
        if not _within(parsed, trusted):
            break
    return address


def _address(hop: str) -> str | None:
    """An IP address from a forwarded hop (`1.2.3.4`, `1.2.3.4:5678`, `[::1]:80`, `::1`)."""
    candidate = hop
    if hop.startswith("["):
        candidate = hop[1 : hop.find("]")] if "]" in hop else hop
    elif hop.count(":") == 1:
        candidate = hop.split(":")[0]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return None


def _within(address: str, networks: list[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def _not_utf8(scope: Scope) -> str | None:
    """Which part of the URL as sent is not UTF-8 once percent-decoded (`%ff`), if one is:
    the server decodes it with U+FFFD in place of what it cannot read, so a route would
    otherwise act on a value the client never sent."""
    raw = {"path": scope.get("raw_path"), "query": scope.get("query_string")}
    for part, value in raw.items():
        if value and b"%" in value:
            try:
                unquote_to_bytes(value.replace(b"+", b" ")).decode("utf-8")
            except UnicodeDecodeError:
                return part
    return None


def trusted_networks(settings: Settings) -> list[Network]:
    return [ipaddress.ip_network(entry, strict=False) for entry in settings.trusted_proxies]


class RateLimit:
    """INTERVENE_RATE_LIMIT per client address, counted in memory or in Redis (shared by every
    API process). If the counter store cannot be reached, requests pass uncounted (fail open),
    with a warning at most once a minute: a Redis outage must not take the API down, nor
    flood its log with a traceback per request."""

    def __init__(self, settings: Settings) -> None:
        self.item = parse(settings.rate_limit)
        uri = settings.rate_limit_storage
        self.limiter = FixedWindowRateLimiter(
            storage_from_string(uri if uri.startswith("async+") else f"async+{uri}")
        )
        self.namespace = settings.rate_limit_namespace
        self._warned_at: float | None = None
        self._uncounted = 0  # requests passed uncounted since the last warning

    async def count(self, key: str) -> tuple[bool, list[tuple[bytes, bytes]], int]:
        """Whether `key` may go on, the X-RateLimit-* headers, and the seconds until reset."""
        try:
            allowed = await self.limiter.hit(self.item, self.namespace, key)
            stats = await self.limiter.get_window_stats(self.item, self.namespace, key)
        except Exception:  # the store is down: the API stays up
            self._store_down()
            return True, [], 0
        reset = math.ceil(stats.reset_time)
        headers = [
            (b"x-ratelimit-limit", str(self.item.amount).encode()),
            (b"x-ratelimit-remaining", str(max(stats.remaining, 0)).encode()),
            (b"x-ratelimit-reset", str(reset).encode()),
        ]
        return allowed, headers, max(1, reset - int(time.time()))

    def _store_down(self) -> None:
        now = time.monotonic()
        if self._warned_at is not None and now - self._warned_at < WARN_EVERY_SECONDS:
            self._uncounted += 1
            return
        log.warning(
            "rate-limit store unreachable: requests pass uncounted (%d more since the"
            " last warning)",
            self._uncounted,
            exc_info=True,
        )
        self._warned_at, self._uncounted = now, 0


@dataclass(frozen=True)
class Refusal:
    """An answer the Gate gives itself, before the app sees the request."""

    status: int
    code: str
    message: str
    details: dict[str, Any]
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)

    async def send(self, send: Send) -> None:
        body = envelope_bytes(self.code, self.message, self.details)
        await send(
            {
                "type": "http.response.start",
                "status": self.status,
                "headers": [
                    *self.headers,
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class Gate:
    """One middleware (one wrapper around `send`, which every SSE frame passes through):
    the rate limit (X-RateLimit-* on every answer; 429 with Retry-After past it), NUL in the
    URL or a URL that is not UTF-8 once unescaped refused (400), bodies capped at
    INTERVENE_MAX_BODY_BYTES (413), security headers, and the audit log: every request that
    may change something (a 429 aside) is recorded with who (token name), from where, what and
    the status, committed before its answer starts. The Gate's own refusals go out through the
    same wrapper as the app's answers, so they carry the same headers."""

    def __init__(self, app: ASGIApp, settings: Settings, metrics: Metrics | None = None) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body = settings.max_body_bytes
        self.trusted = trusted_networks(settings)
        self.rate_limit = RateLimit(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        key = client_address(scope, self.trusted)
        state = scope.setdefault("state", {})
        state["client_address"] = key
        allowed, retry_after = True, 0
        path = scope["path"]
        if path not in UNLIMITED_PATHS and not path.startswith(UNLIMITED_PREFIXES):
            allowed, state[RATE_LIMIT_STATE], retry_after = await self.rate_limit.count(key)
        # A 429 is counted (intervene_rate_limit_refusals_total), not audited: writing a row
        # for each would turn a flood the limit holds off into database writes.
        audit = allowed and scope["method"] not in READ_METHODS and path.startswith("/api")
        audited = False

        async def send_guarded(message: Message) -> None:
            nonlocal audited
            if message["type"] == "http.response.start":
                message["headers"] = answer_headers(scope, list(message.get("headers", [])))
                if audit:
                    # committed before the answer's first byte (the change itself committed
                    # before the route returned): a client told 2xx finds the change in the
                    # log even if this process dies the next instant
                    audited = True
                    await self._audit(scope, message["status"])
            await send(message)

        try:
            refusal = self._refusal(scope, key, allowed, retry_after)
            if refusal is not None:
                await refusal.send(send_guarded)
            else:
                await self.app(scope, self._counted(receive), send_guarded)
        finally:
            if audit and not audited:  # no answer passed here: the last-resort 500, outside us
                await self._audit(scope, 500)

    def _refusal(self, scope: Scope, key: str, allowed: bool, retry_after: int) -> Refusal | None:
        if not allowed:
            if self.metrics is not None:
                self.metrics.refused("client_address")
            return Refusal(
                429,
                "rate_limited",
                f"Rate limit of {self.rate_limit.item} exceeded for {key}",
                {"limit": self.rate_limit.item.amount, "retry_after": retry_after},
                [(b"retry-after", str(retry_after).encode())],
            )
        if "\x00" in scope["path"] or b"%00" in scope.get("query_string", b""):
            return Refusal(
                400,
                "bad_request",
                "NUL characters are not accepted in URLs",
                {"path": scope["path"].replace("\x00", "\\0")},
            )
        if (part := _not_utf8(scope)) is not None:
            return Refusal(
                400, "bad_request", f"The URL's {part} is not UTF-8 once unescaped", {"part": part}
            )
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            return Refusal(
                413,
                "payload_too_large",
                f"Request body larger than {self.max_body} bytes",
                {"max_bytes": self.max_body},
                [(b"connection", b"close")],
            )  # the rest is not read
        return None

    def _counted(self, receive: Receive) -> Receive:
        """`receive` that stops a body (chunked, no Content-Length) once it passes the cap."""
        received = 0

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise HTTPException(413, f"Request body larger than {self.max_body} bytes")
            return message

        return counted_receive

    async def _audit(self, scope: Scope, status: int) -> None:
        """Who (the token's name: the request's principal, or for a request refused before it
        was authenticated, whoever this process knows the token as), from where, what, the
        status. A failed write keeps the answer (sent after it) but is logged as an error and
        counted."""
        app = scope.get("app")
        database: Database | None = getattr(getattr(app, "state", None), "db", None)
        if database is None:
            return
        state = scope.get("state") or {}
        principal: Principal | None = state.get("principal") or self._known(app, scope)
        request_id = next(
            (v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), None
        )
        # One INSERT: on PostgreSQL the reads' autocommit engine commits it as it runs, without
        # a BEGIN and a COMMIT round trip of their own (every write request pays this one).
        factory = database.reader if database.dialect == "postgresql" else database.writer
        try:
            async with transaction(factory) as session:
                await record_entry(
                    session,
                    principal=principal.name if principal else None,
                    role=principal.role.value if principal else None,
                    client=state.get("client_address") or client_address(scope, self.trusted),
                    method=scope["method"],
                    path=scope["path"],
                    status=status,
                    request_id=request_id,
                )
        except Exception:  # never turns an answered request into an error
            if self.metrics is not None:
                self.metrics.audit_failures.inc()
            log.exception(
                "AUDIT ENTRY LOST: %s %s answered %d but not recorded",
                scope["method"],
                scope["path"],
                status,
            )

    @staticmethod
    def _known(app: Any, scope: Scope) -> Principal | None:
        authenticator: Authenticator | None = getattr(app.state, "authenticator", None)
        authorization = next(
            (v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"), None
        )
        secret = bearer_secret(authorization)
        if authenticator is None or secret is None:
            return None
        return authenticator.known(secret)
