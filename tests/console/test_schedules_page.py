"""The console's Schedules page in a real browser against the real stack: who is on call now and
next, an override added through its form (and shown on call), cancelled with its button; and
the incident page's People card (who is on call, who was paged)."""

import re
from collections.abc import AsyncIterator

import pytest
from httpx import AsyncClient
from playwright.async_api import Dialog, expect

from deployments.notifier import Notifier
from models.db import connect
from models.enums import Role
from oncall.schedules import load_oncall
from tests.auth import bearer
from tests.console.conftest import Console, Visitor


@pytest.fixture
async def api(console: Console) -> AsyncIterator[AsyncClient]:
    token = await console.token("schedules-api@x.io", Role.ADMIN)
    async with AsyncClient(base_url=console.url, headers=bearer(token), timeout=30) as http:
        yield http


async def test_an_override_added_on_the_schedules_page_is_on_call_until_cancelled(
    visitor: Visitor, api: AsyncClient
) -> None:
    people = {person["name"] for person in (await api.get("/api/oncall")).json()["people"]}
    shown = re.compile("|".join(map(re.escape, people)))  # (a hand-off may come meanwhile)
    page = await visitor.open_as("oscar@x.io", Role.RESPONDER, "/#/schedules")
    await expect(page.locator("[data-nav=schedules]")).to_have_class(re.compile("current"))
    row = page.locator("table.schedules tr[data-schedule=ml-platform]")
    await expect(row.locator(".duty.now .person")).to_contain_text(shown)
    await expect(row.locator(".duty.next .person")).to_contain_text(shown)

    form = page.locator("form#override-form")
    await form.locator("select[name=schedule]").select_option("ml-platform")
    await form.locator("select[name=person]").select_option("ada")
    await form.get_by_label("4 h").check()
    await form.locator("[name=reason]").fill("browser: covering a flight")
    await form.locator("button[data-do=add-override]").click()

    await expect(form.locator(".form-done")).to_contain_text("Added override #")
    stored = [
        o
        for o in (await api.get("/api/oncall/overrides")).json()["overrides"]
        if o["reason"] == "browser: covering a flight"
    ]
    assert len(stored) == 1
    override = stored[0]
    assert (override["schedule"], override["person"]["id"], override["created_by"]) == (
        "ml-platform",
        "ada",
        "oscar@x.io",
    )
    await expect(row.locator(".duty.now .person")).to_contain_text("Ada Lovelace")
    made = str(override["id"])
    await expect(row.locator(".duty.now")).to_have_attribute("data-override-id", made)
    listed = page.locator(f"#override-list tr[data-override-id='{override['id']}']")
    await expect(listed).to_have_attribute("data-state", "active")
    await expect(listed.locator(".created-by")).to_have_text("oscar@x.io")

    said: list[str] = []

    async def accept(dialog: Dialog) -> None:
        said.append(dialog.message)
        await dialog.accept()

    page.on("dialog", accept)
    await listed.locator("button[data-do=cancel-override]").click()

    await expect(listed).to_have_count(0)
    await expect(row.locator(".duty.now")).to_have_attribute("data-override-id", "")
    await expect(row.locator(".duty.now .person")).to_contain_text(shown)
    cancelled = (await api.get("/api/oncall/overrides", params={"state": "cancelled"})).json()
    assert override["id"] in [o["id"] for o in cancelled["overrides"]]
    assert [message.split("?")[0] for message in said] == [f"Cancel override #{made}"]


async def test_a_viewer_sees_who_is_on_call_and_no_form(visitor: Visitor) -> None:
    page = await visitor.open_as("vera@x.io", Role.VIEWER, "/#/schedules")
    await expect(page.locator("table.schedules tr[data-schedule=data-platform]")).to_have_count(1)
    await expect(page.locator("form#override-form")).to_have_count(0)
    await expect(page.locator(".schedules-page")).to_contain_text("need the responder role")


async def test_the_incident_page_says_who_is_on_call_and_who_was_paged(
    visitor: Visitor, api: AsyncClient, console: Console
) -> None:
    made = await api.post(
        "/api/incidents",
        json={"kind": "alert", "key": "browser-pager", "severity": "sev1", "summary": "paged"},
    )
    assert made.status_code in (200, 201), made.text
    incident = made.json()
    page = await visitor.open_as("pat@x.io", Role.VIEWER, f"/#/incidents/{incident['id']}")
    people = page.locator(".card.people")
    await expect(people.locator("ul.on-call li[data-schedule=data-platform]")).to_contain_text(
        re.compile("Ada Lovelace|Grace Hopper|Linus Pauling")
    )

    settings = console.stack.settings.model_copy(update={"database_url": console.database_url})
    database = connect(console.database_url)
    # the stack's own `intervene services` pages it too; a pass here (idempotent: one page per
    # step however many run) makes it so now (no SMTP server is set: the email waits, pending)
    try:
        oncall = load_oncall(settings.oncall_file)
        await Notifier(database, settings, oncall).pass_once()
    finally:
        await database.dispose()
    await page.reload()
    rows = people.locator("table.notifications tbody tr")
    row = rows.filter(has_text="email")
    await expect(row).to_have_count(1)
    await expect(row).to_have_attribute("data-status", "pending")
    await expect(row).to_contain_text("data-urgent · step 1")
    # whoever is on call this week: by Slack too when the file gives their Slack id
    said = (await api.get(f"/api/incidents/{incident['id']}/notifications")).json()
    await expect(rows).to_have_count(len(said["notifications"]))
    await expect(rows.filter(has_text="slack U0")).to_have_count(
        sum(n["medium"] == "slack" for n in said["notifications"])
    )
