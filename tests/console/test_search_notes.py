"""The board's search, with its filters in the URL, and notes on an incident's timeline, in
Chromium against the live stack."""

import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from httpx import AsyncClient
from playwright.async_api import expect

from models.check_run import CheckRun
from models.db import connect, transaction
from models.enums import Role
from tests.auth import bearer
from tests.console.conftest import Console, Visitor
from tests.console.test_browser import dry_run


@pytest.fixture
async def api(console: Console) -> AsyncIterator[AsyncClient]:
    token = await console.token("search-api@x.io", Role.ADMIN)
    async with AsyncClient(base_url=console.url, headers=bearer(token), timeout=30) as http:
        yield http


async def open_incident(api: AsyncClient, key: str, summary: str, **fields: Any) -> dict[str, Any]:
    body = {"kind": "invariant", "key": key, "severity": "sev3", "summary": summary} | fields
    answer = await api.post("/api/incidents", json=body)
    assert answer.status_code in (200, 201), answer.text
    return dict(answer.json())


async def test_a_search_link_reproduces_the_view_and_the_box_moves_the_url(
    visitor: Visitor, api: AsyncClient
) -> None:
    alpha = await open_incident(api, "SEARCH_alpha", "The alpha export is late")
    beta = await open_incident(api, "SEARCH_beta", "Latency budget blown",
                               details={"cluster": "es-beta-eu"})  # fmt: skip
    page = await visitor.open_as("sam@x.io", Role.VIEWER, "/#/?q=alpha%20export")

    rows = page.locator("table.incidents tbody tr")
    await expect(rows).to_have_count(1)
    await expect(page.locator(f"tr[data-incident-id='{alpha['id']}']")).to_be_visible()
    await expect(page.locator("input[name=q]")).to_have_value("alpha export")

    await page.fill("input[name=q]", "ES-BETA")  # a label's value, another case
    await page.press("input[name=q]", "Enter")
    await expect(page).to_have_url(re.compile(r"#/\?q=ES-BETA$"))
    await expect(page.locator(f"tr[data-incident-id='{beta['id']}']")).to_be_visible()
    await expect(rows).to_have_count(1)

    await page.select_option("select[name=severity]", "sev1")  # both are sev3
    await expect(page.locator("p.empty")).to_be_visible()
    assert "severity=sev1" in page.url
    assert "q=ES-BETA" in page.url


async def test_a_note_added_on_the_incident_page_lands_on_the_timeline(
    visitor: Visitor, api: AsyncClient
) -> None:
    incident = await open_incident(api, "NOTE_browser", "Notes from the page")
    page = await visitor.open_as("nora@x.io", Role.RESPONDER, f"/#/incidents/{incident['id']}")

    await page.fill("form.note-form textarea", "Upstream export late; paged the vendor")
    await page.click("button[data-do=add-note]")

    timeline = page.locator("ol.timeline")
    await expect(timeline).to_contain_text("Upstream export late; paged the vendor")
    await expect(page.locator("form.note-form textarea")).to_have_value("")
    entries = (await api.get(f"/api/incidents/{incident['id']}/timeline")).json()["entries"]
    assert (entries[-1]["verb"], entries[-1]["actor"]) == ("note", "nora@x.io")

    viewer = await visitor.open_as("vic@x.io", Role.VIEWER, f"/#/incidents/{incident['id']}")
    await expect(viewer.locator("ol.timeline")).to_contain_text("paged the vendor")
    await expect(viewer.locator("form.note-form")).to_have_count(0)


async def test_the_action_history_shows_the_dry_run_as_soon_as_it_is_planned(
    visitor: Visitor, api: AsyncClient
) -> None:
    incident = await open_incident(api, "HISTORY_browser", "History from the first dry-run",
                                   playbooks=["rerun_dbt"])  # fmt: skip
    page = await visitor.open_as("hal@x.io", Role.RESPONDER, f"/#/incidents/{incident['id']}")
    history = page.locator("#action-history")
    await expect(history.locator("p.no-actions")).to_have_text("No action yet.")

    await dry_run(page, {"task_id": "t-1", "models": ["inbox_emails"]})

    await expect(page.locator(".playbook[data-action-type=rerun_dbt] .plan")).to_be_visible()
    await expect(history.locator("table")).to_contain_text("rerun_dbt")
    await expect(history.locator("p.no-actions")).to_have_count(0)


async def test_the_report_page_draws_the_measurements_and_saves_the_root_cause(
    visitor: Visitor, api: AsyncClient, console: Console
) -> None:
    incident = await open_incident(api, "REPORT_browser", "Report from the page")
    opened = datetime.fromisoformat(incident["created_at"])
    database = connect(console.database_url)
    try:
        async with transaction(database.writer) as session:
            for minutes, value in ((-10, 120.0), (0, 322.4), (10, 180.0)):
                session.add(
                    CheckRun(
                        check_id="report_browser_check",
                        value=value,
                        threshold=300,
                        passed=value <= 300,
                        duration_ms=2.0,
                        incident_id=incident["id"] if minutes == 0 else None,
                        started_at=opened + timedelta(minutes=minutes),
                    )
                )
    finally:
        await database.dispose()
    page = await visitor.open_as("rhea@x.io", Role.RESPONDER, f"/#/incidents/{incident['id']}")
    await page.click("a[data-do=report]")

    report = page.locator("section.report")
    await expect(report.locator("tr[data-stage=opened]")).to_be_visible()
    await expect(report.locator("svg.measurements circle")).to_have_count(3)
    await expect(report.locator("svg.measurements circle.fail")).to_have_count(1)
    await expect(report.locator("svg.measurements line.threshold")).to_have_count(1)

    await report.locator("textarea[name=root_cause]").fill("The export's cron was disabled.")
    await report.locator("button[data-do=save-report]").click()
    await expect(report.locator(".report-version")).to_have_text("Version 1, by rhea@x.io")
    saved = (await api.get(f"/api/incidents/{incident['id']}/report?format=json")).json()
    assert saved["writing"]["root_cause"] == "The export's cron was disabled."
    await expect(report.locator("textarea[name=root_cause]")).to_have_value(
        "The export's cron was disabled."
    )
