"""The headers every answer carries, whoever sends it: the Gate adds them to what passes through
it and to its own refusals, and the last-resort 500 (answered outside every middleware, by
Starlette's ServerErrorMiddleware) adds them itself, from what the Gate noted in the scope."""

from starlette.types import Scope

Headers = list[tuple[bytes, bytes]]

SECURITY_HEADERS: Headers = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
]
API_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
CONSOLE_CSP = (  # the console loads only its own files and talks only to its own API
    b"content-security-policy",
    b"default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    b"form-action 'self'; frame-ancestors 'none'",
)
# API answers hold incidents, audit entries, new tokens' secrets: no cache keeps them (an
# answer that sets its own Cache-Control, the event stream's no-cache, keeps it)
NO_STORE = (b"cache-control", b"no-store")
RATE_LIMIT_STATE = "rate_limit_headers"  # the Gate's X-RateLimit-* for this request


def answer_headers(scope: Scope, headers: Headers) -> Headers:
    """`headers` with the security headers, the path's CSP, no-store under /api, and the
    X-RateLimit-* the Gate counted for this request (none for unlimited paths)."""
    path = scope["path"]
    added = [*headers, *SECURITY_HEADERS]
    if path.startswith("/api"):
        added.append(API_CSP)
        if not any(name.lower() == b"cache-control" for name, _ in headers):
            added.append(NO_STORE)
    elif path == "/" or path.startswith("/console/"):
        added.append(CONSOLE_CSP)
    added += (scope.get("state") or {}).get(RATE_LIMIT_STATE, [])
    return added


def incident_quota_headers(limit: int, remaining: int, reset: int) -> dict[str, str]:
    """The per-incident dry-run and execute quota, beside (never instead of) X-RateLimit-*,
    which always describe the per-address budget."""
    return {
        "X-Incident-RateLimit-Limit": str(limit),
        "X-Incident-RateLimit-Remaining": str(remaining),
        "X-Incident-RateLimit-Reset": str(reset),
    }
