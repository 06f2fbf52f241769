"""Browser tests: Playwright drives Debian's Chromium (`apt-get install chromium`; nothing
downloads a browser) against the API served by uvicorn on the real stack (tests/stack.py).

Skipped when no Chromium is installed, unless INTERVENE_TEST_BROWSER=required (CI), where a
missing browser is a failure.
"""

import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, Route, async_playwright

from deployments.stack import free_port, start, stop, wait_healthy
from models.enums import Role
from tests.auth import issue_at
from tests.stack import Stack

CHROMIUM = os.environ.get("INTERVENE_TEST_CHROMIUM") or shutil.which("chromium") or ""
REQUIRED = os.environ.get("INTERVENE_TEST_BROWSER") == "required"


@dataclass
class Console:
    """The API (and so the console) in its own uvicorn, on the stack's database and Prefect."""

    stack: Stack
    port: int
    server: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def database_url(self) -> str:
        return self.stack.settings.database_url

    async def token(self, name: str, role: Role) -> str:
        return await issue_at(self.database_url, name, role)

    def start(self) -> None:
        env = self.stack.env | {
            "INTERVENE_SSE_HEARTBEAT_SECONDS": "2",
            "INTERVENE_SSE_RETRY_MS": "500",  # a dropped stream comes back quickly
            "INTERVENE_RATE_LIMIT": "100000/hour",  # every test's browser comes from 127.0.0.1
        }
        command = [sys.executable, "-m", "uvicorn", "api.main:create_app", "--factory", "--host",
                   "127.0.0.1", "--port", str(self.port), "--log-level", "warning"]  # fmt: skip
        self.server = start(command, env, self.stack.logs / "console-api.log")
        wait_healthy(f"{self.url}/api/health", self.server, seconds=60)

    def stop(self) -> None:
        if self.server is not None:
            stop([self.server])
            self.server = None


@pytest.fixture(scope="session")
def console(stack: Stack) -> Iterator[Console]:
    serving = Console(stack, free_port())
    serving.start()
    try:
        yield serving
    finally:
        serving.stop()


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM:
        if REQUIRED:
            pytest.fail("INTERVENE_TEST_BROWSER=required but no Chromium: apt-get install chromium")
        pytest.skip("no Chromium installed (apt-get install chromium)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM)
        yield launched
        await launched.close()


class Visitor:
    """Opens pages signed in through the console's own form, each in a fresh browser context,
    and remembers any script error a page raised."""

    def __init__(self, browser: Browser, console: Console) -> None:
        self.browser, self.console = browser, console
        self.contexts: list[BrowserContext] = []
        self.errors: list[str] = []

    async def open_as(
        self, name: str, role: Role, path: str = "/", me: Callable[[Any], Any] | None = None
    ) -> Page:
        """`me`, when given, rewrites what GET /api/me answers this page."""
        context = await self.browser.new_context()
        self.contexts.append(context)
        if me is not None:
            rewrite = me

            async def rewrite_me(route: Route) -> None:
                answer = await route.fetch()
                await route.fulfill(response=answer, json=rewrite(await answer.json()))

            await context.route("**/api/me", rewrite_me)
        page = await context.new_page()
        page.set_default_timeout(20_000)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        await page.goto(self.console.url + path)
        await page.fill("input[name=token]", await self.console.token(name, role))
        await page.click("#sign-in-form button[type=submit]")
        await page.wait_for_selector("#live.on")  # signed in, and the event stream is up
        await page.evaluate("window.__loadedOnce = true")  # gone if the page ever reloads
        return page

    async def close(self) -> None:
        for context in self.contexts:
            await context.close()


@pytest.fixture
async def visitor(browser: Browser, console: Console) -> AsyncIterator[Visitor]:
    visiting = Visitor(browser, console)
    yield visiting
    await visiting.close()
    assert visiting.errors == []  # no script error on any page
