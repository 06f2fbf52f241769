"""The console's Stats page in Chromium against the live stack: MTTA and MTTR bars per severity,
SLA compliance per severity and timer, the noisiest keys in the API's order, the window in the
URL, a key's link to the board filtered by it, and the empty state.

The stack's database is shared by the session's tests and changes meanwhile (the stack's check
fails every 15 s, SLA timers fall due), so the page is checked against the very answer it drew,
and the keys made here by their order among the others.
"""

import math
import re
from collections.abc import Awaitable
from datetime import datetime, timedelta
from typing import Any

import pytest
from playwright.async_api import Locator, Page, Route, expect

from models.base import utcnow
from models.db import connect, transaction
from models.enums import IncidentKind, Role, Severity, Verb
from models.services import incidents
from tests.console.conftest import Console, Visitor

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)


async def make_history(
    console: Console,
    *,
    kind: str,
    key: str,
    severity: str,
    created_at: datetime,
    repeats: int,
    then: list[tuple[Verb, timedelta]],
) -> int:
    """An incident with known times (HTTP cannot backdate): reported `repeats` more times a
    minute apart, then each verb of `then` applied that long after creation."""
    new = incidents.NewIncident(
        kind=IncidentKind(kind), key=key, severity=Severity(severity), summary=f"{key} again"
    )
    database = connect(console.database_url)
    try:
        async with transaction(database.writer) as session:
            incident, _ = await incidents.create_incident(
                session, new=new, actor="tests", at=created_at
            )
            for n in range(1, repeats + 1):
                await incidents.create_incident(
                    session, new=new, actor="tests", at=created_at + n * MINUTE
                )
            for verb, after in then:
                await incidents.transition_incident(
                    session,
                    incident_id=incident.id,
                    verb=verb,
                    actor="tests",
                    at=created_at + after,
                    changes={"acknowledged_by": "tests"} if verb is Verb.ACKNOWLEDGE else None,
                )
            return incident.id
    finally:
        await database.dispose()


@pytest.fixture
async def noisy(console: Console) -> dict[str, int]:
    """Two keys of the last hours, one reopened twice and one once, and one of 20 days ago
    that only a month's window holds; each noisier than anything else the session makes."""
    now = utcnow()
    ack, resolve, reopen = Verb.ACKNOWLEDGE, Verb.RESOLVE, Verb.REOPEN
    flaky = await make_history(
        console, kind="alert", key="STATS_flaky_export", severity="sev1",
        created_at=now - 3 * HOUR, repeats=40,
        then=[(ack, 50 * MINUTE), (resolve, HOUR), (reopen, 70 * MINUTE),
              (resolve, 80 * MINUTE), (reopen, 90 * MINUTE), (resolve, 100 * MINUTE)],
    )  # fmt: skip
    late = await make_history(
        console, kind="invariant", key="STATS_late_feed", severity="sev2",
        created_at=now - 2 * HOUR, repeats=30,
        then=[(resolve, 40 * MINUTE), (reopen, 50 * MINUTE), (resolve, 60 * MINUTE)],
    )  # fmt: skip
    old = await make_history(
        console, kind="invariant", key="STATS_old_dag", severity="sev3",
        created_at=now - 20 * 24 * HOUR, repeats=60, then=[(resolve, 2 * HOUR)],
    )  # fmt: skip
    return {"STATS_flaky_export": flaky, "STATS_late_feed": late, "STATS_old_dag": old}


async def drawn(page: Page, days: int, action: Awaitable[Any]) -> dict[str, Any]:
    """What GET /api/stats answered the page for the window that `action` opens."""
    async with page.expect_response(lambda r: r.url.endswith(f"/api/stats?days={days}")) as got:
        await action
    answer: dict[str, Any] = await (await got.value).json()
    return answer


def in_order(shown: list[str], *keys: str) -> bool:
    """The keys are all listed, in this order (others may stand between them)."""
    return all(key in shown for key in keys) and [k for k in shown if k in keys] == list(keys)


def bar(page: Page, measure: str, severity: str) -> Locator:
    return page.locator(f"svg.stats-bars.{measure} g[data-severity={severity}] rect.bar")


async def shown_keys(page: Page, measure: str) -> list[str]:
    rows = page.locator(f"table.stats-noisy.by-{measure} tbody tr")
    return [str(await row.get_attribute("data-key")) for row in await rows.all()]


async def expect_the_api(page: Page, stats: dict[str, Any]) -> None:
    """The page shows what the API answered: a bar where a severity has a mean, the SLA
    counts, the noisiest keys in order."""
    for severity, times in stats["times"].items():
        for measure in ("mtta", "mttr"):
            has_bar = times[f"{measure}_seconds"] is not None
            await expect(bar(page, measure, severity)).to_have_count(1 if has_bar else 0)
        for timer, tally in stats["sla"][severity].items():
            cell = page.locator(
                f"table.stats-sla tr[data-severity={severity}] td[data-timer={timer}]"
            )
            if tally is None:
                await expect(cell).to_have_text("no target")
            elif tally["met"] + tally["breached"] + tally["pending"]:
                said = (
                    f"{tally['met']} met, {tally['breached']} breached, {tally['pending']} pending"
                )
                await expect(cell.locator(".counts-said")).to_have_text(said)
                met = tally["compliance"]
                shown = "—" if met is None else f"{math.floor(met * 100 + 0.5)}%"
                await expect(cell.locator(".percent")).to_have_text(shown)
    for measure in ("occurrences", "reopens"):
        listed = [row["key"] for row in stats["noisiest"][f"by_{measure}"]]
        await expect(page.locator(f"table.stats-noisy.by-{measure} tbody tr")).to_have_count(
            len(listed)
        )
        assert await shown_keys(page, measure) == listed


async def test_the_stats_page_draws_the_window_and_links_the_noisiest_keys(
    visitor: Visitor, noisy: dict[str, int]
) -> None:
    page = await visitor.open_as("stella@x.io", Role.VIEWER, "/#/")
    week = await drawn(page, 7, page.evaluate("location.hash = '#/stats'"))

    await expect(page.locator("[data-nav=stats]")).to_have_class(re.compile("current"))
    await expect(page.locator("section.stats-page")).to_have_attribute("data-days", "7")
    await expect(page.locator(".stats-windows button[data-days='7']")).to_have_attribute(
        "aria-pressed", "true"
    )
    await expect_the_api(page, week)
    # the flaky export (sev1) was acknowledged and resolved, the late feed (sev2) resolved
    for measure, severity in (("mtta", "sev1"), ("mttr", "sev1"), ("mttr", "sev2")):
        await expect(bar(page, measure, severity)).to_have_count(1)
    by_occurrences = await shown_keys(page, "occurrences")
    assert in_order(by_occurrences, "STATS_flaky_export", "STATS_late_feed")
    assert "STATS_old_dag" not in by_occurrences
    assert in_order(await shown_keys(page, "reopens"), "STATS_flaky_export", "STATS_late_feed")
    flaky = page.locator("table.stats-noisy.by-occurrences tr[data-key=STATS_flaky_export]")
    await expect(flaky.locator("td.occurrences")).to_have_text("41")
    await expect(flaky.locator("td.reopens")).to_have_text("2")
    await expect(flaky.locator("td.last a")).to_have_attribute(
        "href", f"#/incidents/{noisy['STATS_flaky_export']}"
    )

    month = await drawn(page, 30, page.click(".stats-windows button[data-days='30']"))
    await expect(page).to_have_url(re.compile(r"#/stats\?days=30$"))
    await expect(page.locator("section.stats-page")).to_have_attribute("data-days", "30")
    await expect(page.locator(".stats-windows button[data-days='30']")).to_have_attribute(
        "aria-pressed", "true"
    )
    await expect_the_api(page, month)
    assert in_order(
        await shown_keys(page, "occurrences"),
        "STATS_old_dag",
        "STATS_flaky_export",
        "STATS_late_feed",
    )

    late = page.locator("table.stats-noisy.by-reopens tr[data-key=STATS_late_feed]")
    await late.locator("td.key a").click()
    await expect(page).to_have_url(re.compile(r"#/\?q=STATS_late_feed$"))
    await expect(page.locator("input[name=q]")).to_have_value("STATS_late_feed")
    await expect(page.locator("table.incidents tbody tr")).to_have_count(1)
    incident = page.locator(f"tr[data-incident-id='{noisy['STATS_late_feed']}']")
    await expect(incident).to_be_visible()


async def test_an_empty_window_says_so(visitor: Visitor) -> None:
    page = await visitor.open_as("sid@x.io", Role.VIEWER, "/#/")

    async def nothing(route: Route) -> None:  # the session's database is never empty
        answer = await route.fetch()
        stats = await answer.json()
        stats["by_status"] = dict.fromkeys(stats["by_status"], 0)
        stats["by_severity"] = dict.fromkeys(stats["by_severity"], 0)
        stats["noisiest"] = {"by_occurrences": [], "by_reopens": []}
        await route.fulfill(response=answer, json=stats)

    await page.route("**/api/stats?days=1", nothing)
    await page.evaluate("location.hash = '#/stats?days=1'")

    await expect(page.locator("p.stats-empty")).to_have_text("No incident in the last 24 hours.")
    await expect(page.locator(".stats-windows button[data-days='1']")).to_have_attribute(
        "aria-pressed", "true"
    )
    await expect(page.locator("svg.stats-bars")).to_have_count(0)
