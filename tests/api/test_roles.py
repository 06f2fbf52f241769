"""Every role against every endpoint the app serves, from one table; and the table against the
app's routes, so a new route fails here until the table says who may call it.

For each endpoint: no token is a 401 with `WWW-Authenticate: Bearer`; each role below the one
it needs is a 403 `forbidden`, also when the request is invalid (the role is decided before
validation); and the role it needs gets the endpoint's own answer.
"""

import itertools
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from httpx import ASGITransport, AsyncClient, Response

from api.openapi import Error
from models.enums import Role
from tests.factories import create_incident
from tests.fakes import RecordingLauncher

READ, RESPOND, APPROVE, ADMIN = Role.VIEWER, Role.RESPONDER, Role.APPROVER, Role.ADMIN
RERUN = {"task_id": "task-1", "models": ["inbox_emails"], "full_refresh": False}
RUN = {"action_type": "rerun_dbt", "params": RERUN}
ASK = {"action_type": "rerun_dbt", "params": RERUN | {"full_refresh": True}}  # needs approval
NO_ALERTS = {"version": "4", "alerts": []}
RUN_RESULTS = "https://schemas.getdbt.com/dbt/run-results/v6.json"
NO_RESULTS = {"metadata": {"dbt_schema_version": RUN_RESULTS}, "results": []}
SILENCE = {"matchers": {"key": "roles*"}, "duration_seconds": 600, "reason": "roles"}
OVERRIDE = {"schedule": "data-platform", "person": "grace", "duration_seconds": 600}
HOOK = {"url": "http://127.0.0.1:9/hook", "event_types": ["incident_created"]}
ACTIONS = "/api/playbooks/incidents/{incident_id}/actions"
APPROVAL = f"{ACTIONS}/approvals/{{approval_id}}"
INCIDENT = "/api/incidents/{incident_id}"
WEBHOOK = "/api/webhooks/{webhook_id}"
FLOW_RUN = "5f0c2a8e-3b8e-4a3e-9d1c-2f6a8e9b7c10"

MakeClient = Callable[[str, Role], Awaitable[AsyncClient]]


class Endpoint(NamedTuple):
    method: str
    path: str  # the app's own template; its ids are filled with rows made for the request
    least: Role  # the least role that may call it
    answer: int  # what that role gets: the endpoint's own answer, after the role check
    body: dict[str, Any] | None = None
    params: dict[str, str] | None = None


ENDPOINTS = [
    Endpoint("GET", "/api/incidents", READ, 200),
    Endpoint("GET", "/api/incidents/counts", READ, 200),
    Endpoint("POST", "/api/incidents", RESPOND, 201,
             {"kind": "invariant", "key": "INV_roles", "severity": "sev3", "summary": "roles"}),
    Endpoint("GET", INCIDENT, READ, 200),
    Endpoint("GET", f"{INCIDENT}/timeline", READ, 200),
    Endpoint("POST", f"{INCIDENT}/acknowledge", RESPOND, 200, {"acknowledged_by": "al@x.io"}),
    Endpoint("POST", f"{INCIDENT}/mitigate", RESPOND, 200),
    Endpoint("POST", f"{INCIDENT}/resolve", RESPOND, 200),
    Endpoint("POST", f"{INCIDENT}/close", RESPOND, 400),  # an open incident cannot close
    Endpoint("POST", f"{INCIDENT}/reopen", RESPOND, 400),  # nor reopen
    Endpoint("POST", f"{INCIDENT}/assign", RESPOND, 200, {"assigned_to": "al@x.io"}),
    Endpoint("POST", f"{INCIDENT}/notes", RESPOND, 201, {"notes": "roles"}),
    Endpoint("GET", f"{INCIDENT}/report", READ, 200),
    Endpoint("PUT", f"{INCIDENT}/report", RESPOND, 200, {"root_cause": "roles"}),
    Endpoint("GET", ACTIONS, READ, 200),
    Endpoint("GET", f"{ACTIONS}/history", READ, 200),
    Endpoint("POST", f"{ACTIONS}/dry-run", RESPOND, 200, RUN),
    Endpoint("POST", f"{ACTIONS}/execute", RESPOND, 200, RUN),
    Endpoint("POST", f"{ACTIONS}/{{action_id}}/rollback", RESPOND, 400),  # a dry run's
    Endpoint("GET", f"{ACTIONS}/approvals", READ, 200),
    Endpoint("POST", f"{ACTIONS}/approvals", RESPOND, 201, ASK),
    Endpoint("GET", APPROVAL, READ, 200),
    Endpoint("POST", f"{APPROVAL}/approve", APPROVE, 200, {}),  # another asked for it
    Endpoint("POST", f"{APPROVAL}/reject", APPROVE, 200, {}),
    Endpoint("GET", "/api/sse/events", READ, 400, params={"types": "nope"}),  # 400: no stream
    Endpoint("GET", "/api/checks", READ, 200),
    Endpoint("GET", "/api/checks/{check_id}/runs", READ, 200),
    Endpoint("POST", "/api/checks/{check_id}/run", RESPOND, 200),
    Endpoint("GET", "/api/planner", READ, 200),
    # no Prefect server in these tests: the role's answer is the 503 `unavailable`
    Endpoint("POST", "/api/prefect/flow-runs/{flow_run_id}", RESPOND, 503),
    Endpoint("POST", "/api/prefect/flow-runs", RESPOND, 503, {"flow_run_id": FLOW_RUN}),
    Endpoint("GET", "/api/me", READ, 200),
    Endpoint("GET", "/api/stats", READ, 200),
    Endpoint("GET", "/api/tokens", ADMIN, 200),
    Endpoint("POST", "/api/tokens", ADMIN, 201, {"name": "x", "role": "viewer"}),
    Endpoint("POST", "/api/tokens/{token_id}/revoke", ADMIN, 200),
    Endpoint("GET", "/api/audit", ADMIN, 200),
    Endpoint("GET", "/api/webhooks", ADMIN, 200),
    Endpoint("POST", "/api/webhooks", ADMIN, 201, HOOK),
    Endpoint("GET", WEBHOOK, ADMIN, 200),
    Endpoint("DELETE", WEBHOOK, ADMIN, 204),
    Endpoint("POST", f"{WEBHOOK}/enable", ADMIN, 200),
    Endpoint("GET", f"{WEBHOOK}/deliveries", ADMIN, 200),
    Endpoint("POST", f"{WEBHOOK}/deliveries/{{delivery_id}}/redeliver", ADMIN, 404),  # none yet
    Endpoint("GET", "/api/automation", READ, 200),
    Endpoint("GET", "/api/oncall", READ, 200),
    Endpoint("GET", "/api/oncall/overrides", READ, 200),
    Endpoint("GET", "/api/oncall/policies", READ, 200),
    Endpoint("GET", f"{INCIDENT}/notifications", READ, 200),
    Endpoint("POST", "/api/oncall/overrides", RESPOND, 201, OVERRIDE),
    Endpoint("DELETE", "/api/oncall/overrides/{override_id}", RESPOND, 200),
    Endpoint("POST", "/api/automation/pause", ADMIN, 200),
    Endpoint("POST", "/api/automation/resume", ADMIN, 200),
    Endpoint("POST", f"{INCIDENT}/remediation/retry", RESPOND, 409),  # nothing held
    Endpoint("GET", "/api/silences", READ, 200),
    Endpoint("POST", "/api/silences", RESPOND, 201, SILENCE),
    Endpoint("GET", "/api/silences/{silence_id}", READ, 200),
    Endpoint("DELETE", "/api/silences/{silence_id}", RESPOND, 200),
    Endpoint("POST", "/api/integrations/alertmanager", RESPOND, 200, NO_ALERTS),
    Endpoint("POST", "/api/integrations/dbt/run-results", RESPOND, 200, NO_RESULTS),
    Endpoint("GET", "/metrics", READ, 200),  # INTERVENE_METRICS_AUTH=enabled, the default
]  # fmt: skip

# Open on purpose, so not in the table: the health probe (load balancers call it without a
# token), the console's page and static files (all they show comes from the API, with the
# user's token), and the OpenAPI document with its two viewers.
OPEN = {
    ("GET", "/api/health"),
    ("GET", "/"),
    ("MOUNT", "/console"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/docs/oauth2-redirect"),
    ("GET", "/redoc"),
    # PagerDuty's senders set no header: the routing key in the body is the token, checked by
    # the route (tests/api/test_integrations.py)
    ("POST", "/api/integrations/pagerduty/v2/enqueue"),
    # Slack signs its requests: the signature is checked by the route (tests/oncall/test_slack.py)
    ("POST", "/api/integrations/slack/interactions"),
}
OPEN_URLS = ["/api/health", "/", "/console/console.js", "/openapi.json", "/docs", "/redoc"]


def served(app: FastAPI) -> set[tuple[str, str]]:
    """Every (method, path template) the app answers; a mount (static files) as MOUNT."""
    found = set()
    for route in iter_route_contexts(app.routes):
        assert route.path is not None
        found |= {(method, route.path) for method in route.methods or {"MOUNT"}}
    return found - {("HEAD", path) for _, path in found}  # HEAD comes with GET


def test_the_table_names_every_route_the_app_serves(app: FastAPI) -> None:
    table = [(e.method, e.path) for e in ENDPOINTS]
    routes = served(app)

    assert routes - OPEN - set(table) == set()  # a new route: add it to ENDPOINTS
    assert set(table) - routes == set()  # a route that is gone
    assert len(table) == len(set(table))


_serial = itertools.count()


async def _ids(owner: AsyncClient, app: FastAPI, path: str) -> dict[str, Any]:
    """Rows for the ids `path` names, made by `owner` (an admin); only those it names."""
    ids: dict[str, Any] = {"delivery_id": 2**40, "check_id": next(iter(app.state.checks.specs))}
    ids["flow_run_id"] = FLOW_RUN
    n = next(_serial)
    if "{incident_id}" in path:
        ids["incident_id"] = (await create_incident(owner, key=f"INV_roles_{n}"))["id"]
    url = ACTIONS.format(incident_id=ids.get("incident_id"))
    if "{approval_id}" in path:
        ids["approval_id"] = (await owner.post(f"{url}/approvals", json=ASK)).json()["id"]
    if "{action_id}" in path:
        ids["action_id"] = (await owner.post(f"{url}/dry-run", json=RUN)).json()["action_id"]
    if "{token_id}" in path:
        spare = await owner.post("/api/tokens", json={"name": f"spare-{n}", "role": "viewer"})
        ids["token_id"] = spare.json()["id"]
    if "{webhook_id}" in path:
        ids["webhook_id"] = (await owner.post("/api/webhooks", json=HOOK)).json()["id"]
    if "{silence_id}" in path:
        ids["silence_id"] = (await owner.post("/api/silences", json=SILENCE)).json()["id"]
    if "{override_id}" in path:
        made = await owner.post("/api/oncall/overrides", json=OVERRIDE)
        ids["override_id"] = made.json()["id"]
    return ids


IDS = (
    "incident_id", "approval_id", "action_id", "token_id", "webhook_id", "delivery_id",
    "flow_run_id", "silence_id", "override_id",
)  # fmt: skip
BAD_PARAMS = {"limit": "0", "history": "-1", "days": "0"}


def _request(e: Endpoint, ids: dict[str, Any]) -> dict[str, Any]:
    return {"method": e.method, "url": e.path.format(**ids), "json": e.body, "params": e.params}


def _invalid(e: Endpoint) -> dict[str, Any]:
    """The request made invalid: ids out of range, unknown body fields, bad limits."""
    ids = dict.fromkeys(IDS, 0) | {"check_id": "x" * 200}
    body = {"bogus": [1]} if e.body is not None else None
    return _request(e, ids) | {"json": body, "params": BAD_PARAMS}


def _is_envelope(response: Response, code: str) -> bool:
    return Error.model_validate(response.json()).error.code == code


async def test_without_a_token_every_endpoint_is_401(strict_app: FastAPI) -> None:
    ids = dict.fromkeys(IDS, 1) | {"check_id": "data_freshness_inbox"}
    async with AsyncClient(transport=ASGITransport(app=strict_app), base_url="http://t") as http:
        for e in ENDPOINTS:
            valid = await http.request(**_request(e, ids))
            invalid = await http.request(**_invalid(e))
            for response in (valid, invalid):
                assert response.status_code == 401, (e.method, e.path, response.text)
                assert response.headers["www-authenticate"] == "Bearer"
                assert _is_envelope(response, "unauthorized")
        opened = [await http.get(url) for url in OPEN_URLS]

    assert [r.status_code for r in opened] == [200] * len(OPEN_URLS)


@pytest.mark.parametrize("role", list(Role))
async def test_each_role_against_each_endpoint(
    role: Role, strict_app: FastAPI, as_role: MakeClient, launcher: RecordingLauncher
) -> None:
    owner = await as_role("owner@x.io", Role.ADMIN)
    caller = await as_role(f"{role}@x.io", role)
    for e in ENDPOINTS:
        where = (role.value, e.method, e.path)
        response = await caller.request(**_request(e, await _ids(owner, strict_app, e.path)))
        if role.allows(e.least):
            assert response.status_code == e.answer, (*where, response.text)
            continue
        invalid = await caller.request(**_invalid(e))
        for refused in (response, invalid):
            assert refused.status_code == 403, (*where, refused.text)
            assert _is_envelope(refused, "forbidden")
            needed = Role(refused.json()["error"]["details"]["required_role"])
            assert not role.allows(needed)  # names a role the caller lacks
    runs = [e for e in ENDPOINTS if e.path.endswith(("/execute", "/approve"))]
    assert len(launcher.launches) == sum(role.allows(e.least) for e in runs)  # refused: none
