"""The console in a real browser against the real stack: live board, lifecycle, dry-run,
execute with its status changing live, the API's refusals shown as its message, and automatic
remediation (an incident's attempts, the switch)."""

import json
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from httpx import AsyncClient
from playwright.async_api import Locator, Page, expect

from models.base import utcnow
from models.db import connect, transaction
from models.enums import IncidentKind, Role, Severity
from models.remediation import Remediation
from models.services.incidents import NewIncident, create_incident
from tests.auth import bearer
from tests.console.conftest import Console, Visitor
from tests.stack import Stack


@pytest.fixture
async def api(console: Console) -> AsyncIterator[AsyncClient]:
    token = await console.token("api-writer@x.io", Role.ADMIN)
    async with AsyncClient(base_url=console.url, headers=bearer(token), timeout=30) as http:
        yield http


async def open_incident(api: AsyncClient, key: str, **fields: Any) -> dict[str, Any]:
    body = {"kind": "invariant", "key": key, "severity": "sev2", "summary": f"{key} is stale",
            "playbooks": ["rerun_dbt"]} | fields  # fmt: skip
    response = await api.post("/api/incidents", json=body)
    assert response.status_code == 201, response.text
    incident: dict[str, Any] = response.json()
    return incident


async def dry_run(page: Page, params: dict[str, Any] | str) -> Locator:
    """Fill rerun_dbt's params (JSON, or raw text) on the incident page and press Dry-run."""
    playbook = page.locator(".playbook[data-action-type=rerun_dbt]")
    text = params if isinstance(params, str) else json.dumps(params)
    await playbook.locator("textarea[name=params]").fill(text)
    await playbook.locator("button[data-do=dry-run]").click()
    return playbook


async def still_the_same_page(page: Page) -> bool:
    return bool(await page.evaluate("window.__loadedOnce === true"))


async def test_the_board_shows_a_new_incident_without_a_reload(
    visitor: Visitor, api: AsyncClient
) -> None:
    page = await visitor.open_as("watcher@x.io", Role.VIEWER)
    open_count = int(await page.locator("[data-status=open] strong").inner_text())

    incident = await open_incident(api, "INV_browser_board", severity="sev1")

    row = page.locator(f"tr[data-incident-id='{incident['id']}']")
    await expect(row).to_be_visible()
    await expect(row).to_contain_text("INV_browser_board is stale")
    await expect(row.locator("[data-severity=sev1]")).to_be_visible()
    await expect(page.locator("[data-status=open] strong")).to_have_text(str(open_count + 1))
    assert await still_the_same_page(page)


async def test_acknowledging_from_the_page_changes_its_status(
    visitor: Visitor, api: AsyncClient
) -> None:
    incident = await open_incident(api, "INV_browser_ack")
    page = await visitor.open_as("rita@x.io", Role.RESPONDER, f"/#/incidents/{incident['id']}")

    await page.click("button[data-verb=acknowledge]")

    await expect(page.locator("section.incident")).to_have_attribute("data-status", "acknowledged")
    await expect(page.locator("ol.timeline")).to_contain_text("acknowledge")
    stored = (await api.get(f"/api/incidents/{incident['id']}")).json()
    assert (stored["status"], stored["acknowledged_by"]) == ("acknowledged", "rita@x.io")
    assert await page.locator("button[data-verb=acknowledge]").count() == 0


# How each verb is sent, and the verbs that take an incident to each status from open.
BODY = {"acknowledge": {"acknowledged_by": "api-writer@x.io"}}
PATH_TO = {"open": [], "acknowledged": ["acknowledge"], "mitigated": ["mitigate"],
           "resolved": ["resolve"], "closed": ["resolve", "close"]}  # fmt: skip


async def incident_in(api: AsyncClient, status: str, key: str) -> int:
    incident = await open_incident(api, f"{key}_{status}")
    for verb in PATH_TO[status]:
        body = BODY.get(verb, {"actor": "api-writer@x.io"})
        response = await api.post(f"/api/incidents/{incident['id']}/{verb}", json=body)
        assert response.status_code == 200, response.text
    return int(incident["id"])


async def offered_verbs(page: Page, incident_id: int, status: str) -> set[str]:
    await page.evaluate(f"location.hash = '#/incidents/{incident_id}'")
    section = page.locator(f"section.incident[data-incident-id='{incident_id}']")
    await expect(section).to_have_attribute("data-status", status)
    buttons = page.locator("button[data-verb]")
    return set(await buttons.evaluate_all("buttons => buttons.map(b => b.dataset.verb)"))


async def test_the_buttons_on_an_incident_in_each_status_are_the_apis_transitions(
    visitor: Visitor, api: AsyncClient
) -> None:
    me = (await api.get("/api/me")).json()
    page = await visitor.open_as("tom@x.io", Role.RESPONDER)

    for status in me["statuses"]:
        incident_id = await incident_in(api, status, "INV_browser_verbs")
        offered = await offered_verbs(page, incident_id, status)

        expected = {verb for verb, rule in me["transitions"].items()
                    if rule["to"] is not None and status in rule["from"]}  # fmt: skip
        assert offered == expected, status
    assert await still_the_same_page(page)


async def test_the_console_keeps_no_copy_of_the_transitions(
    visitor: Visitor, api: AsyncClient
) -> None:
    """Whatever /api/me says the state machine is, the page offers: here, only close, and
    from open."""

    def only_close_from_open(me: dict[str, Any]) -> dict[str, Any]:
        me["transitions"] = {"close": {"from": ["open"], "to": "closed"}}
        return me

    incident_id = await incident_in(api, "open", "INV_browser_no_copy")
    page = await visitor.open_as("tess@x.io", Role.RESPONDER, me=only_close_from_open)

    assert await offered_verbs(page, incident_id, "open") == {"close"}


async def test_a_viewer_sees_no_buttons_that_change_anything(
    visitor: Visitor, api: AsyncClient
) -> None:
    incident = await open_incident(api, "INV_browser_viewer")
    page = await visitor.open_as("vic@x.io", Role.VIEWER, f"/#/incidents/{incident['id']}")

    await expect(page.locator(".playbook[data-action-type=rerun_dbt]")).to_be_visible()
    assert await page.locator("button[data-verb]").count() == 0
    assert await page.locator("button[data-do]").count() == 0  # no dry-run either
    assert await page.locator("textarea[name=params]").count() == 0


async def test_a_dry_run_preview_renders_the_plan(visitor: Visitor, api: AsyncClient) -> None:
    incident = await open_incident(api, "INV_browser_preview")
    page = await visitor.open_as("rita@x.io", Role.RESPONDER, f"/#/incidents/{incident['id']}")

    playbook = await dry_run(page, {"models": ["inbox_emails"]})

    plan = playbook.locator(".plan")
    await expect(plan).to_be_visible()
    await expect(plan).to_contain_text("inbox_emails")
    await expect(plan).to_contain_text("No approval needed")
    assert await plan.locator("ul.changes li").count() >= 1
    await expect(playbook.locator("button[data-do=execute]")).to_be_visible()
    history = (await api.get(f"/api/playbooks/incidents/{incident['id']}/actions/history")).json()
    assert [(a["dry_run"], a["status"]) for a in history["actions"]] == [(True, "dry_run_success")]


async def test_a_refused_request_shows_what_is_wrong_with_which_field(
    visitor: Visitor, api: AsyncClient
) -> None:
    incident = await open_incident(api, "INV_browser_bad_params")
    page = await visitor.open_as("rita@x.io", Role.RESPONDER, f"/#/incidents/{incident['id']}")

    await dry_run(page, {"models": ["nope_model"]})

    error = page.locator("#error")
    await expect(error).to_contain_text("validation_error")
    await expect(error).to_contain_text("body.params.models")
    await expect(error).to_contain_text("nope_model")
    await dry_run(page, "{not json")
    await expect(error).to_contain_text("Params are not valid JSON")


async def test_an_execute_shows_the_action_status_change_live(
    visitor: Visitor, api: AsyncClient, stack: Stack
) -> None:
    incident = await open_incident(api, "INV_browser_execute")
    page = await visitor.open_as("rita@x.io", Role.RESPONDER, f"/#/incidents/{incident['id']}")
    playbook = await dry_run(page, {"models": ["inbox_emails"]})
    executed = page.locator("table.history tbody tr:not([data-status^=dry_run])")

    stack.kill_worker()  # the run waits for a worker: the page must show it waiting first
    try:
        await playbook.locator("button[data-do=execute]").click()
        await expect(executed).to_have_count(1)
        assert await executed.get_attribute("data-status") in {"pending", "scheduled"}
    finally:
        stack.start_worker()

    await expect(executed).to_have_attribute("data-status", "success", timeout=120_000)
    link = executed.locator("a", has_text="Prefect UI")
    assert "/runs/flow-run/" in (await link.get_attribute("href") or "")
    assert await still_the_same_page(page)


async def test_a_forbidden_approval_shows_the_api_message(
    visitor: Visitor, api: AsyncClient
) -> None:
    incident = await open_incident(api, "INV_browser_forbidden")
    page = await visitor.open_as("ann@x.io", Role.APPROVER, f"/#/incidents/{incident['id']}")
    playbook = await dry_run(page, {"models": ["inbox_emails"], "full_refresh": True})
    await expect(playbook.locator(".plan")).to_contain_text("Requires approval")

    # separation of duties is on by default: an approver may not approve their own execution
    await playbook.locator("button[data-do=execute-approved]").click()

    error = page.locator("#error")
    await expect(error).to_be_visible()
    await expect(error).to_contain_text("forbidden")
    history = (await api.get(f"/api/playbooks/incidents/{incident['id']}/actions/history")).json()
    assert all(action["dry_run"] for action in history["actions"])  # nothing ran


async def test_the_board_catches_up_after_its_connection_drops(
    visitor: Visitor, console: Console
) -> None:
    page = await visitor.open_as("watcher@x.io", Role.VIEWER)
    console.stop()  # the API goes away: the stream drops
    try:
        await expect(page.locator("#live")).to_have_text("reconnecting…")
        # meanwhile another process (a check in the worker, say) opens an incident
        database = connect(console.database_url)
        try:
            async with transaction(database.writer) as session:
                new = NewIncident(
                    kind=IncidentKind.INVARIANT,
                    key="INV_browser_missed",
                    severity=Severity.SEV3,
                    summary="opened while the API was down",
                )
                incident, _ = await create_incident(session, new=new, actor="tests")
                incident_id = incident.id
        finally:
            await database.dispose()
    finally:
        console.start()

    await expect(page.locator("#live")).to_have_text("live", timeout=30_000)
    await expect(page.locator(f"tr[data-incident-id='{incident_id}']")).to_be_visible()
    assert await still_the_same_page(page)


async def test_a_revoked_token_signs_the_page_out_when_its_stream_drops(
    visitor: Visitor, console: Console, api: AsyncClient
) -> None:
    page = await visitor.open_as("leaver@x.io", Role.VIEWER)
    tokens = (await api.get("/api/tokens")).json()["tokens"]
    token_id = next(t["id"] for t in tokens if t["name"] == "leaver@x.io")
    assert (await api.post(f"/api/tokens/{token_id}/revoke")).status_code == 200

    console.stop()  # the open stream drops; reconnecting with the revoked token is refused
    console.start()

    await expect(page.locator("#sign-in-form")).to_be_visible(timeout=30_000)
    await expect(page.locator("#error")).to_contain_text("sign in again")
    assert await page.evaluate("sessionStorage.getItem('intervene.token')") is None


async def test_a_bad_token_is_refused_with_the_api_message(
    visitor: Visitor, console: Console
) -> None:
    page = await visitor.browser.new_page()
    await page.goto(console.url)
    await page.fill("input[name=token]", "ivt_not-a-token")
    await page.click("#sign-in-form button[type=submit]")

    await expect(page.locator("#error")).to_contain_text("unauthorized")
    await expect(page.locator("#sign-in-form")).to_be_visible()
    await page.close()


async def test_run_now_on_the_checks_page_shows_the_run_as_manual(visitor: Visitor) -> None:
    page = await visitor.open_as("checker@x.io", Role.RESPONDER, "/#/checks")
    row = page.locator("tr[data-check-id=e2e_always_failing]")

    # the check's schedule (every 15 s) may land between the run and the page showing it, and a
    # busy machine may take a while: clicked again until it shows, within a deadline
    deadline = time.monotonic() + 120
    while True:
        await row.locator("button", has_text="Run now").click()
        try:
            await expect(row).to_contain_text("(manual)", timeout=15_000)
            break
        except AssertionError:
            if time.monotonic() > deadline:
                raise
    await expect(row).to_contain_text("fail")
    # with a Prefect server, Run now runs the check's deployment: the run links to its flow run
    link = row.locator("a.flow-run")
    await expect(link).to_have_text("Prefect UI ↗")
    assert "/runs/flow-run/" in (await link.get_attribute("href") or "")


async def test_the_remediation_panel_and_the_paused_switch_are_shown(
    visitor: Visitor, api: AsyncClient, console: Console
) -> None:
    incident = await open_incident(api, "INV_browser_remediation")
    policy = {"action": "rerun_dbt", "params": {}, "mode": "auto", "verify": True,
              "max_attempts": 2, "rollback_on_failed_verification": False,
              "resolve_on_verify": True}  # fmt: skip
    database = connect(console.database_url)
    try:
        async with transaction(database.writer) as session:  # as the loop leaves a give-up
            now = utcnow()
            rows = [
                Remediation(
                    incident_id=incident["id"], key=f"invariant:{incident['key']}",
                    check_id="e2e_always_failing", attempt=n, step="ineffective",
                    action_type="rerun_dbt", params={}, policy=policy, trigger_run_id=n,
                    detected_at=now - timedelta(minutes=4), executed_at=now,
                    verify_check_run_id=4240 + n, outcome="ineffective: still fails",
                    gave_up=n == 2, finished_at=now,
                )
                for n in (1, 2)
            ]  # fmt: skip
            session.add_all(rows)
            await session.flush()
            remediation_id = rows[-1].id
    finally:
        await database.dispose()
    paused = await api.post("/api/automation/pause", json={"reason": "browser test"})
    assert paused.status_code == 200, paused.text
    try:
        page = await visitor.open_as("rita@x.io", Role.RESPONDER, f"/#/incidents/{incident['id']}")

        panel = page.locator(".card.remediation")
        await expect(panel).to_have_attribute("data-held", "true")
        await expect(panel).to_contain_text("rerun_dbt")
        await expect(panel).to_contain_text("2 of 2")
        await expect(panel).to_contain_text("check run #4242 still fails")
        row = panel.locator(f"tr[data-remediation-id='{remediation_id}']")
        await expect(row).to_have_attribute("data-step", "ineffective")
        await expect(row).to_contain_text("#4242")
        switch = page.locator("#automation")
        await expect(switch).to_have_attribute("data-paused", "true")
        await expect(switch).to_have_text("automation paused by api-writer@x.io")

        await panel.locator("button[data-do=retry-remediation]").click()

        await expect(panel).to_have_attribute("data-held", "false")
        await expect(panel).to_contain_text("released by rita@x.io")
        assert await panel.locator("button[data-do=retry-remediation]").count() == 0
        admin = await visitor.open_as("root@x.io", Role.ADMIN, "/#/automation")
        await expect(admin.locator(".automation-page")).to_have_attribute("data-paused", "true")
        await expect(admin.locator(".automation-page")).to_contain_text("browser test")
        await admin.locator("button[data-do=resume]").click()
        await expect(admin.locator(".automation-page")).to_have_attribute("data-paused", "false")
        await expect(admin.locator("#automation")).to_have_text("automation running")
    finally:
        await api.post("/api/automation/resume")  # the stack is shared: leave it running
