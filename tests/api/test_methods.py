"""Every path answers for all its methods: a 405 lists each method the path serves in `Allow`
(not only those of the first route tried), and HEAD answers wherever GET does, with GET's
status and headers and no body. For every route of the app, as FastAPI lists them."""

import re
from collections import defaultdict
from typing import Any

from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from httpx import AsyncClient

from tests.factories import create_incident

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
STREAMS = {"/api/sse/events"}  # a GET never ends: only its HEAD is asked
PER_ANSWER = {"date", "x-request-id", "x-ratelimit-remaining", "x-ratelimit-reset"}
# Content-Length is compared where the body is the same from one answer to the next; others
# count the HEAD before the GET (/metrics), time their own answer (/api/health) or say "now"
FIXED_BODIES = {"/", "/console/{path}", "/openapi.json", "/docs", "/redoc"}


def served(app: FastAPI) -> dict[str, set[str]]:
    """Each path template with every method some route serves on it (HEAD wherever GET: the
    API promises it); a mount (the console's files) as its prefix + /{path}."""
    paths: dict[str, set[str]] = defaultdict(set)
    for route in iter_route_contexts(app.routes):
        assert route.path is not None
        if route.methods is None:  # StaticFiles
            paths[route.path + "/{path}"] |= {"GET", "HEAD"}
        else:
            paths[route.path] |= set(route.methods)
    for methods in paths.values():
        if "GET" in methods:
            methods.add("HEAD")
    return dict(paths)


async def urls(client: AsyncClient, app: FastAPI) -> dict[str, str]:
    """A URL per path template: with the ids of real rows where one is cheap to make (so HEAD
    and GET answer 200 there), a row that does not exist elsewhere (both 404)."""
    incident = await create_incident(client)
    ids = {"incident_id": incident["id"], "check_id": next(iter(app.state.checks.specs)),
           "path": "console.js"}  # fmt: skip
    found = {}
    for template in served(app):
        found[template] = re.sub(r"\{(\w+)(:\w+)?\}", lambda m: str(ids.get(m[1], 2**40)), template)
    return found


async def test_a_405_names_every_method_of_its_path(client: AsyncClient, app: FastAPI) -> None:
    paths = served(app)
    wrong: dict[str, Any] = {}

    for template, url in (await urls(client, app)).items():
        for method in sorted(set(METHODS) - paths[template]):
            response = await client.request(method, url)
            allowed = set(response.headers.get("allow", "").split(", "))
            if response.status_code != 405 or allowed != paths[template]:
                wrong[f"{method} {url}"] = (response.status_code, response.headers.get("allow"))
            elif method != "HEAD":
                assert response.json()["error"]["code"] == "method_not_allowed"

    assert wrong == {}
    assert paths["/api/incidents"] == {"GET", "HEAD", "POST"}  # the issue's own example
    assert paths["/api/webhooks/{webhook_id}"] == {"DELETE", "GET", "HEAD"}


async def test_head_answers_as_get_without_the_body(client: AsyncClient, app: FastAPI) -> None:
    wrong: dict[str, Any] = {}

    for template, url in (await urls(client, app)).items():
        if "GET" not in served(app)[template]:
            continue
        head = await client.head(url)
        if head.content != b"":
            wrong[url] = ("a body", head.content[:80])
        if template in STREAMS:
            kind = head.headers["content-type"].split(";")[0]
            if (head.status_code, kind) != (200, "text/event-stream"):
                wrong[url] = (head.status_code, kind)
            continue
        get = await client.get(url)
        varying = PER_ANSWER | (set() if template in FIXED_BODIES else {"content-length"})
        expected = {k: v for k, v in get.headers.items() if k not in varying}
        got = {k: v for k, v in head.headers.items() if k not in varying}
        if head.status_code != get.status_code or got != expected:
            differ = set(got.items()) ^ set(expected.items())
            wrong[url] = (head.status_code, get.status_code, differ)
        if "content-length" in get.headers and "content-length" not in head.headers:
            wrong[url] = "no content-length"

    assert wrong == {}
