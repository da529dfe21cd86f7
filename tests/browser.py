"""Screenshots from the Chromium tests (the ``page`` fixture lives in conftest.py)."""

from __future__ import annotations

import os
from pathlib import Path

from playwright.sync_api import Page

SHOTS = Path(
    os.environ.get("SCREENSHOT_DIR", Path(__file__).resolve().parent.parent / "test-artifacts")
)


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / f"{name}.png", full_page=True)
