"""Screenshots from the Chromium tests (the ``page`` fixture lives in conftest.py)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from playwright.sync_api import Page

SHOTS = Path(
    os.environ.get("SCREENSHOT_DIR", Path(__file__).resolve().parent.parent / "test-artifacts")
)


def wait_until(page: Page, expression: str, *, timeout: float = 15_000) -> None:
    """``page.wait_for_function`` for pages under the studio's CSP (no eval): polled from here.

    Playwright's ``evaluate`` is not subject to the page's CSP; its ``wait_for_function``
    builds a function from the string inside the page, which ``script-src`` without
    'unsafe-eval' refuses.
    """
    deadline = time.monotonic() + timeout / 1000
    while True:
        if page.evaluate(expression):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"Not true within {timeout / 1000:.0f} s: {expression}")
        page.wait_for_timeout(100)


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / f"{name}.png", full_page=True)
