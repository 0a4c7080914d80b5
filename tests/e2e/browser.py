"""The browser the e2e tests drive: Debian's Chromium, headless, through Playwright (no
browser download), where the tests keep their screenshots, and signing in.

Playwright's sync API runs an event loop in the test's thread, where the ORM refuses to
run: rows a test needs are made before the browser starts."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.support import PROJECT_DIR

ARTIFACTS = PROJECT_DIR / "test-artifacts" / "e2e"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextmanager
def chromium() -> Iterator[Browser]:
    """A running Chromium, closed on the way out, for a test with several pages or contexts."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def chromium_page(width: int, height: int) -> Iterator[Page]:
    """One page of a viewport this size, in its own context (`page.context`)."""
    with chromium() as browser:
        yield browser.new_page(viewport={"width": width, "height": height})


def log_in(page: Page, base: str, email: str, password: str) -> None:
    """Signs in through the login form; returns once the form is left, for the dashboard or,
    for a user with TOTP, the question for the code."""
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", password)
    page.click("main button[type=submit]")
    expect(page).not_to_have_url(re.compile("/accounts/login/"))
