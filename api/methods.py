"""Methods by path, whatever routes serve them: a 405 names every one in `Allow`, and HEAD is
answered wherever GET is, as that GET without its body (RFC 9110 9.3.2).

FastAPI makes a route per decorator: `/api/incidents` is a GET route and a POST route, and the
router answers a method neither serves from the first route it tried, whose `Allow` named its own
methods only (GET). Nor does a route declared for GET serve HEAD (Starlette's own routes do).
"""

from fastapi.routing import iter_route_contexts
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def served(scope: Scope) -> tuple[set[str], bool]:
    """The methods the app's routes serve on this request's path (HEAD wherever GET), and
    whether something that serves its own methods (a mount: the console's files) matches it."""
    path = scope["path"]  # as the metrics' route templates match it
    methods: set[str] = set()
    mounted = False
    for route in iter_route_contexts(getattr(scope.get("app"), "routes", [])):
        regex = getattr(route, "path_regex", None)
        if regex is None or not regex.match(path):
            continue
        if route.methods is None:
            mounted = True
        else:
            methods |= route.methods
    if "GET" in methods:
        methods.add("HEAD")
    return methods, mounted


def allowed(scope: Scope, named: str | None) -> str:
    """`Allow` for a 405 on this request's path: every method served there, with those the
    refusing route named (a mount's, which only it knows)."""
    methods, _ = served(scope)
    methods |= {m.strip() for m in (named or "").split(",") if m.strip()}
    return ", ".join(sorted(methods))


class HeadAsGet:
    """HEAD on a path a route serves GET on is that GET, answered with its status and headers
    (Content-Length included) and no body; an event stream ends after its headers. Every HEAD
    answer passing through loses its body (a 404's or 405's envelope too).

    Inside the other middleware (the Gate, the metrics and the logs see HEAD): only the router
    and the route see GET."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        methods, mounted = served(scope)
        if "GET" in methods and not mounted:
            scope = dict(scope, method="GET")
        done = False

        async def send_headers_only(message: Message) -> None:
            nonlocal done
            if done:
                return
            if message["type"] == "http.response.body":
                done = True
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        async def receive_until_done() -> Message:
            if done:  # a stream waiting for its client to go: it is gone
                return {"type": "http.disconnect"}
            return await receive()

        await self.app(scope, receive_until_done, send_headers_only)
