"""The console's pages for alerts from other tools, in a real browser against the real stack:
silences (added through the form, listed, ended with their button, the alerts they hold), an
alert incident's source and rule, its related failures, and the shortcut that silences it."""

import re
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest
from httpx import AsyncClient
from playwright.async_api import Dialog, Locator, Page, expect

from alerts.intake import take
from alerts.rules import load_rules
from models.alert import Alert, Signal, Source
from models.base import utcnow
from models.db import connect, transaction
from models.enums import Role
from models.services.incidents import IncidentCap
from playbooks.catalog import SUGGESTABLE
from tests.auth import bearer
from tests.console.conftest import Console, Visitor

SLOW = 30_000  # what the page shows without an event (held counts) it re-reads every 10 s


@pytest.fixture
async def api(console: Console) -> AsyncIterator[AsyncClient]:
    token = await console.token("alerts-api@x.io", Role.ADMIN)
    async with AsyncClient(base_url=console.url, headers=bearer(token), timeout=30) as http:
        yield http


async def silences(api: AsyncClient, **query: str) -> list[dict[str, Any]]:
    answer = await api.get("/api/silences", params=query)
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["silences"]
    return found


def accept_dialogs(page: Page) -> list[str]:
    """Accept every confirm() the page asks; what each said is kept."""
    said: list[str] = []

    async def accept(dialog: Dialog) -> None:
        said.append(dialog.message)
        await dialog.accept()

    page.on("dialog", accept)
    return said


def firing(key: str, **labels: str) -> dict[str, Any]:
    """An Alertmanager webhook (version 4) carrying one firing alert of `key` (its dedup_key)."""
    all_labels = {"alertname": key.split(":")[0], "dedup_key": key, "severity": "critical"}
    all_labels |= labels
    started = utcnow().isoformat(timespec="milliseconds").replace("+00:00", "Z")
    alert = {"status": "firing", "labels": all_labels, "startsAt": started,
             "annotations": {"summary": f"{key} is firing"}, "endsAt": "0001-01-01T00:00:00Z",
             "fingerprint": key.replace(":", "")}  # fmt: skip
    return {"version": "4", "status": "firing", "receiver": "intervene", "alerts": [alert],
            "groupLabels": {}, "commonLabels": all_labels, "commonAnnotations": {},
            "externalURL": "http://alertmanager.test", "groupKey": key}  # fmt: skip


async def post_alert(api: AsyncClient, key: str) -> dict[str, Any]:
    answer = await api.post("/api/integrations/alertmanager", json=firing(key))
    assert answer.status_code == 200, answer.text
    [taken] = answer.json()["taken"]
    return dict(taken)


async def add_silence(api: AsyncClient, matchers: dict[str, Any], reason: str) -> dict[str, Any]:
    body = {"matchers": matchers, "duration_seconds": 3600, "reason": reason}
    answer = await api.post("/api/silences", json=body)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def row_of(page: Page, silence_id: int) -> Locator:
    return page.locator(f"#silence-list tr[data-silence-id='{silence_id}']")


async def test_a_silence_added_through_the_form_is_listed_and_ended_with_its_button(
    visitor: Visitor, api: AsyncClient
) -> None:
    page = await visitor.open_as("sally@x.io", Role.RESPONDER, "/#/silences")
    await expect(page.locator("[data-nav=silences]")).to_have_class(re.compile("current"))
    form = page.locator("form#silence-form")

    await form.locator("[name=key]").fill("BrowserForm:*")
    await form.locator("select[name=source]").select_option("alertmanager")
    await form.locator("textarea[name=labels]").fill("team=data\n  instance = db-* \n")
    await form.get_by_label("4 h").check()
    await form.locator("[name=reason]").fill("browser: disk migration on db-*")
    await form.locator("button[data-do=add-silence]").click()

    await expect(form.locator(".form-done")).to_contain_text("Added silence #")
    [stored] = [s for s in await silences(api) if s["reason"] == "browser: disk migration on db-*"]
    assert stored["matchers"] == {"key": "BrowserForm:*", "source": "alertmanager",
                                  "labels": {"team": "data", "instance": "db-*"}}  # fmt: skip
    assert stored["created_by"] == "sally@x.io"
    assert stored["state"] == "active"
    window = datetime.fromisoformat(stored["ends_at"]) - datetime.fromisoformat(stored["starts_at"])
    assert window.total_seconds() == 4 * 3600
    row = row_of(page, stored["id"])
    await expect(row).to_have_attribute("data-state", "active")
    await expect(row.locator("[data-matcher=key]")).to_have_text("key matches BrowserForm:*")
    await expect(row.locator("[data-matcher=source]")).to_have_text("source is alertmanager")
    await expect(row.locator("[data-matcher='label instance']")).to_contain_text("db-*")
    await expect(row.locator(".ends")).to_contain_text(re.compile(r"ends in (4\.0 h|240 min)"))
    await expect(row).to_contain_text("sally@x.io")
    await expect(row.locator("td.held-alerts")).to_have_text("0")
    await expect(form.locator("[name=key]")).to_have_value("")  # the form is ready for another

    said = accept_dialogs(page)
    await row.locator("button[data-do=end-silence]").click()

    await expect(row).to_have_count(0)  # the list shows active and pending ones by default
    ended = (await api.get(f"/api/silences/{stored['id']}")).json()
    assert (ended["state"], ended["ended_by"]) == ("expired", "sally@x.io")
    assert said == [f"End silence #{stored['id']} now? Alerts it holds that still fire open "
                    "their incidents."]  # fmt: skip
    await page.locator("#silence-list select[name=state]").select_option("expired")
    await expect(row).to_have_attribute("data-state", "expired")
    await expect(row.locator(".ended-by")).to_have_text("ended by sally@x.io")
    await expect(row.locator(".ends")).to_contain_text("ended ")
    assert await row.locator("button[data-do=end-silence]").count() == 0


async def test_what_the_api_refuses_is_shown_next_to_the_form(
    visitor: Visitor, api: AsyncClient
) -> None:
    before = len(await silences(api))
    page = await visitor.open_as("sally@x.io", Role.RESPONDER, "/#/silences")
    form = page.locator("form#silence-form")
    errors = form.locator(".form-errors")

    await form.locator("[name=reason]").fill("no matcher at all")
    await form.locator("button[data-do=add-silence]").click()

    await expect(errors).to_contain_text("validation_error")
    await expect(errors.locator("li[data-field='body.matchers']")).to_contain_text(
        "give at least one matcher"
    )
    await expect(form.locator("fieldset[name=matchers]")).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#error")).to_be_hidden()  # next to the form, not in the banner

    await form.locator("[name=key]").fill("BrowserRefused:*")
    await form.locator("textarea[name=labels]").fill("team=" + "x" * 201)  # at most 200
    await form.locator("button[data-do=add-silence]").click()
    await expect(errors.locator("li[data-field='body.matchers.labels.team']")).to_be_visible()
    await expect(form.locator("[name=labels]")).to_have_attribute("aria-invalid", "true")
    await expect(form.locator("fieldset[name=matchers]")).not_to_have_attribute(
        "aria-invalid", "true"
    )

    await form.locator("textarea[name=labels]").fill("team=data\nnonsense")
    await form.locator("button[data-do=add-silence]").click()
    await expect(errors).to_contain_text("Labels, line 2: write name=value")

    await form.locator("textarea[name=labels]").fill("")
    await form.get_by_label("until").check()  # a custom end, but no time given
    await form.locator("button[data-do=add-silence]").click()
    await expect(errors).to_contain_text("Pick when the silence ends")
    await form.get_by_label("1 h").check()
    await form.locator("[name=ends_at]").fill("2020-01-05T10:00")  # typing a time picks it
    await expect(form.get_by_label("until")).to_be_checked()
    await form.locator("button[data-do=add-silence]").click()
    await expect(errors).to_contain_text("The silence would be over before it starts")
    await expect(errors).to_contain_text("(bad_request, 400)")
    assert len(await silences(api)) == before  # nothing was added


async def test_a_silenced_alert_is_counted_on_the_page_and_opens_when_the_silence_ends(
    visitor: Visitor, api: AsyncClient
) -> None:
    silence = await add_silence(
        api, {"key": "BrowserHeld:*", "source": "alertmanager"}, "browser: held count"
    )
    page = await visitor.open_as("sally@x.io", Role.RESPONDER, "/#/silences")
    row = row_of(page, silence["id"])
    await expect(row.locator("td.held-alerts")).to_have_text("0")

    for _ in range(3):
        taken = await post_alert(api, "BrowserHeld:db-1")
        assert (taken["outcome"], taken["silence_id"]) == ("silenced", silence["id"])

    await expect(row.locator("td.held-alerts")).to_have_text("1", timeout=SLOW)  # live
    await expect(row.locator("td.suppressed")).to_have_text("3")
    await row.locator("td.held-alerts a").click()
    detail = page.locator(f"section.silence-page[data-silence-id='{silence['id']}']")
    held = detail.locator("table.held-alerts tr[data-key='BrowserHeld:db-1']")
    await expect(held).to_have_attribute("data-firing", "true")
    await expect(held.locator("td.occurrences")).to_have_text("3")
    await expect(held).to_contain_text("alertmanager")
    await expect(held.locator("td.opened")).to_have_text("—")

    accept_dialogs(page)
    await detail.locator("button[data-do=end-silence]").click()

    await expect(detail).to_have_attribute("data-state", "expired")
    # the services release it: still firing, it opens its incident, linked from the row
    link = held.locator("td.opened a")
    await expect(link).to_be_visible(timeout=SLOW)
    await link.click()
    incident = page.locator("section.incident")
    await expect(incident).to_be_visible()
    facts = incident.locator("dl.facts").first
    await expect(facts.locator("[data-source=alertmanager]")).to_be_visible()
    await expect(incident.locator(".card.related")).to_have_count(0)  # nothing joined it

    await incident.locator("a[data-do=silence-alert]").click()

    form = page.locator("form#silence-form")
    await expect(form.locator("[name=key]")).to_have_value("BrowserHeld:db-1")
    await expect(form.locator("select[name=source]")).to_have_value("alertmanager")
    await expect(form.locator(".prefilled")).to_contain_text("incident #")
    await expect(form.locator("[name=reason]")).to_be_focused()
    reason = "browser: silenced from its incident"
    await form.locator("[name=reason]").fill(reason)
    await form.locator("button[data-do=add-silence]").click()
    await expect(form.locator(".form-done")).to_contain_text("Added silence #")
    [again] = [s for s in await silences(api) if s["reason"] == reason]
    assert again["matchers"] == {"key": "BrowserHeld:db-1", "source": "alertmanager"}
    assert page.url.endswith("#/silences")  # the prefill is used up
    await api.delete(f"/api/silences/{again['id']}")  # the stack is shared: leave no silence


def downstream(candidate: tuple[str, ...], of: tuple[str, ...]) -> bool:
    """A toy lineage: raw -> model.a -> model.b."""
    order = ["source.raw", "model.a", "model.b"]
    return any(
        order.index(c) > order.index(o) for c in candidate for o in of if c in order and o in order
    )


async def ingest_dbt(console: Console, *alerts: Alert) -> list[Any]:
    """Take dbt alerts as `intervene ingest dbt` does, with the app's rules and a toy lineage."""
    rules = load_rules(console.stack.settings.alert_rules_file, SUGGESTABLE)
    cap = IncidentCap(limit=50, window=console.stack.settings.incident_cap_window)
    database = connect(console.database_url)
    try:
        async with transaction(database.writer) as session:
            intake = await take(session, alerts, rules=rules, cap=cap, downstream=downstream)
    finally:
        await database.dispose()
    return intake.taken


def dbt_test(key: str, *nodes: str, signal: Signal = Signal.FIRING) -> Alert:
    return Alert(source=Source.DBT, key=key, signal=signal, summary=f"dbt test {key} failed",
                 at=utcnow(), nodes=nodes)  # fmt: skip


async def test_a_dbt_incident_shows_its_source_rule_and_related_failures(
    visitor: Visitor, console: Console
) -> None:
    upstream_key = "test.intervene_demo.browser_raw_fresh"
    below_key = "test.intervene_demo.browser_b_not_null"
    [opened] = await ingest_dbt(console, dbt_test(upstream_key, "source.raw"))
    below = dbt_test(below_key, "model.b")
    joined = await ingest_dbt(console, below, below)
    assert [t.outcome.value for t in joined] == ["related", "related"]
    assert opened.incident_id is not None

    page = await visitor.open_as("sally@x.io", Role.RESPONDER, f"/#/incidents/{opened.incident_id}")

    facts = page.locator("section.incident dl.facts").first
    await expect(facts.locator("[data-source=dbt]")).to_have_text("dbt")
    await expect(facts.locator("code.rule")).to_have_text("warehouse-tests")
    card = page.locator(".card.related")
    await expect(card.locator("h2")).to_contain_text("Related failures")
    row = card.locator(f"tr[data-key='{below_key}']")
    await expect(row).to_have_attribute("data-firing", "true")
    await expect(row).to_contain_text("still failing")
    await expect(row.locator("td").nth(1)).to_have_text("dbt")
    await expect(row.locator("td").nth(2)).to_have_text("2")
    await expect(row.locator("time")).to_have_count(2)  # first and last seen
    shortcut = page.locator("a[data-do=silence-alert]")
    await expect(shortcut).to_have_attribute("href", re.compile(r"key=test\.intervene_demo"))

    await ingest_dbt(console, dbt_test(below_key, "model.b", signal=Signal.RESOLVED))
    await page.evaluate("location.hash = '#/'")
    await page.evaluate(f"location.hash = '#/incidents/{opened.incident_id}'")

    await expect(row).to_have_attribute("data-firing", "false")
    await expect(row).to_contain_text("no longer failing")


async def test_a_viewer_reads_silences_but_changes_none(visitor: Visitor, api: AsyncClient) -> None:
    matchers = {"kind": "alert", "key": "BrowserViewer:*"}
    silence = await add_silence(api, matchers, "browser: a viewer looks")
    try:
        page = await visitor.open_as("vic@x.io", Role.VIEWER, "/#/silences")

        await expect(row_of(page, silence["id"])).to_contain_text("kind is alert")
        assert await page.locator("form#silence-form").count() == 0
        assert await page.locator("button[data-do=end-silence]").count() == 0
        await expect(page.locator(".silences-page")).to_contain_text("need the responder role")
    finally:
        await api.delete(f"/api/silences/{silence['id']}")  # the stack is shared
