"""The incident page in Chromium against the live stack: details as readable fields in their
units, metadata folded away, assign and every lifecycle step with notes, and the timeline's
icons and filters."""

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from httpx import AsyncClient
from playwright.async_api import expect

from models.enums import Role
from tests.auth import bearer
from tests.console.conftest import Console, Visitor
from tests.console.test_search_notes import open_incident


@pytest.fixture
async def api(console: Console) -> AsyncIterator[AsyncClient]:
    token = await console.token("incident-page-api@x.io", Role.ADMIN)
    async with AsyncClient(base_url=console.url, headers=bearer(token), timeout=30) as http:
        yield http


async def timeline(api: AsyncClient, incident_id: int) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = (
        await api.get(f"/api/incidents/{incident_id}/timeline")
    ).json()["entries"]
    return entries


async def test_details_read_as_fields_in_their_units_and_metadata_is_folded(
    visitor: Visitor, api: AsyncClient
) -> None:
    measured = {"id": "data_freshness_inbox", "threshold": 300, "actual": 322.4225118160248,
                "comparison": "<=", "unit": "seconds"}  # fmt: skip
    incident = await open_incident(
        api,
        "DETAILS_browser",
        "inbox.triage: Seconds since the newest email",
        details={
            "invariant": measured,
            "runbook": "https://runbooks.example.com/freshness",
            "labels": {"team": "data", "env": "prod"},
        },
        metadata={"agent": "inbox.triage", "check_id": "data_freshness_inbox"},
    )
    budget = await open_incident(
        api,
        "DETAILS_budget_browser",
        "inbox.triage: p95 latency",
        details={
            "budget": {
                "id": "triage_latency",
                "type": "latency_p95_ms",
                "threshold": 1000,
                "actual": 1840.5,
            }
        },
    )
    page = await visitor.open_as("dee@x.io", Role.VIEWER, f"/#/incidents/{incident['id']}")

    group = page.locator(".detail-group[data-group=invariant]")
    await expect(group.locator(".measured")).to_have_text("5 min 22 s (must be <= 5 min 00 s)")
    await expect(group).to_contain_text("data_freshness_inbox")
    link = page.locator("a[href='https://runbooks.example.com/freshness']")
    await expect(link).to_have_text("https://runbooks.example.com/freshness")
    await expect(page.locator(".label-chip[data-label=team]")).to_have_text("team=data")
    assert await page.locator("section.incident pre.json").count() == 0  # no raw JSON

    folded = page.locator("details.metadata")
    await expect(folded).not_to_have_attribute("open", "")
    await expect(folded.locator("dd", has_text="inbox.triage")).to_be_hidden()
    await folded.locator("summary").click()
    await expect(folded.locator("dd", has_text="inbox.triage")).to_be_visible()

    await page.evaluate(f"location.hash = '#/incidents/{budget['id']}'")
    await expect(page.locator(".detail-group[data-group=budget] .measured")).to_have_text(
        "1,840.5 ms (threshold 1,000 ms)"
    )


async def test_assign_and_each_step_take_notes_onto_the_timeline(
    visitor: Visitor, api: AsyncClient
) -> None:
    incident = await open_incident(api, "ASSIGN_browser", "Assign from the page")
    person = (await api.get("/api/oncall")).json()["people"][0]
    page = await visitor.open_as("amy@x.io", Role.RESPONDER, f"/#/incidents/{incident['id']}")
    card = page.locator(".card.lifecycle")
    notes = card.locator("textarea[name=lifecycle-notes]")

    await notes.fill("Taking this: I know the export")
    await card.locator("button[data-do=take]").click()
    await expect(card.locator(".assignee")).to_have_text("amy@x.io")
    await expect(notes).to_have_value("")
    last = (await timeline(api, incident["id"]))[-1]
    assert (last["verb"], last["actor"]) == ("assign", "amy@x.io")
    assert last["notes"] == "to amy@x.io\nTaking this: I know the export"

    await card.locator("input[name=assigned_to]").fill(person["email"])
    await notes.fill("Handing over to the data team")
    await card.locator("button[data-do=assign]").click()
    await expect(card.locator(".assignee")).to_have_text(person["email"])
    stored = (await api.get(f"/api/incidents/{incident['id']}")).json()
    assert stored["assigned_to"] == person["email"]

    await notes.fill("Seen: the export job is stuck")
    await card.locator("button[data-verb=acknowledge]").click()
    section = page.locator(f"section.incident[data-incident-id='{incident['id']}']")
    await expect(section).to_have_attribute("data-status", "acknowledged")
    last = (await timeline(api, incident["id"]))[-1]
    assert (last["verb"], last["actor"], last["notes"]) == (
        "acknowledge",
        "amy@x.io",
        "Seen: the export job is stuck",
    )
    await expect(page.locator("ol.timeline li[data-verb=acknowledge]")).to_contain_text(
        "Seen: the export job is stuck"
    )

    await card.locator("button[data-do=unassign]").click()
    await expect(card.locator(".assignee")).to_have_text("nobody")
    assert (await api.get(f"/api/incidents/{incident['id']}")).json()["assigned_to"] is None


async def test_the_timeline_shows_an_icon_per_kind_and_filters_stay_through_live_updates(
    visitor: Visitor, api: AsyncClient
) -> None:
    incident = await open_incident(api, "TIMELINE_browser", "Timeline kinds")
    incident_id = incident["id"]
    await api.post(f"/api/incidents/{incident_id}/notes", json={"notes": "first note"})
    await api.post(f"/api/incidents/{incident_id}/acknowledge", json={"notes": "on it"})
    page = await visitor.open_as("tim@x.io", Role.RESPONDER, f"/#/incidents/{incident_id}")
    entries = page.locator("ol.timeline li")

    await expect(entries).to_have_count(3)  # create, note, acknowledge
    await expect(page.locator("ol.timeline li[data-kind=note] .timeline-icon")).to_have_text("✎")
    await expect(page.locator("ol.timeline li[data-verb=acknowledge] .timeline-icon")).to_have_text(
        "◉"
    )

    await page.locator(".timeline-filters input[data-kind=note]").uncheck()
    await expect(entries).to_have_count(2)
    await expect(page.locator("ol.timeline li[data-kind=note]")).to_have_count(0)

    # a change elsewhere redraws the page: the filter stays, the new note stays hidden
    await api.post(f"/api/incidents/{incident_id}/mitigate", json={"notes": "export restarted"})
    await expect(page.locator("ol.timeline li[data-verb=mitigate]")).to_be_visible()
    await api.post(f"/api/incidents/{incident_id}/notes", json={"notes": "second note"})
    await expect(page.locator("section.incident")).to_have_attribute("data-status", "mitigated")
    await expect(page.locator(".timeline-filters input[data-kind=note]")).not_to_be_checked()
    await expect(page.locator(".timeline-filters label.kind-note")).to_contain_text(
        re.compile(r"Notes\s*2")
    )
    await expect(page.locator("ol.timeline li[data-kind=note]")).to_have_count(0)

    await page.locator(".timeline-filters input[data-kind=note]").check()
    await expect(page.locator("ol.timeline li[data-kind=note]")).to_have_count(2)
