"""The studio in a real browser: Debian's Chromium driven by Playwright."""

from __future__ import annotations

import re

import pytest

from tests.browser import shot, wait_until
from videos.models import Clip, ClipStatus

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_creator_generates_a_clip_and_watches_it_become_ready(
    page, live_server, user, project, sandbox_apimart, drain_queue, settings
):
    # Slow enough for the page's 2 s polling to show the bar part-way.
    settings.SANDBOX_TASK_SECONDS = 7
    page.goto(f"{live_server.url}/")
    shot(page, "01-login")
    page.get_by_label("Username").fill("casey")
    page.get_by_label("Password").fill("pw-casey-123")
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Launch film").click()
    shot(page, "02-project-empty")
    page.get_by_role("link", name="New clip").first.click()

    page.get_by_label("Provider").select_option(label="apimart (sandbox)")
    page.get_by_label("Model").select_option(label="Veo 3.1 Quality")
    page.get_by_label("Prompt", exact=True).fill(
        "A lighthouse at dusk, waves rolling in, cinematic"
    )
    page.get_by_label("Duration").select_option("8")
    shot(page, "03-new-clip")
    page.get_by_role("button", name="Generate").click()
    # (A glob like "**/clips/*/" would also match the form's own /clips/new/.)
    page.wait_for_url(re.compile(r"/clips/\d+/$"))

    # Record every progress value the page shows, and mark the document so a reload would
    # be noticed: the updates must arrive through HTMX, not by reloading.
    page.evaluate(
        """() => {
            window.__seen = []; window.__sameDocument = true;
            new MutationObserver(() => {
                const bar = document.querySelector('#clip-progress');
                if (bar) window.__seen.push(Number(bar.value));
            }).observe(document.body, {subtree: true, childList: true, attributes: true});
        }"""
    )
    shot(page, "04-clip-queued")
    clip = Clip.objects.get()

    def ready_in_page() -> bool:
        return page.locator("#clip-status-text").inner_text() == "Ready"

    drain_queue(until=lambda: bool(Clip.objects.get(pk=clip.pk).poster_key), timeout=60)
    wait_until(
        page, "document.querySelector('#clip-status-text')?.innerText === 'Ready'", timeout=15_000
    )
    assert ready_in_page()
    assert Clip.objects.get(pk=clip.pk).status == ClipStatus.READY
    assert page.evaluate("window.__sameDocument") is True
    seen = page.evaluate("window.__seen")
    assert any(0 < value < 100 for value in seen), seen

    wait_until(
        page, "document.querySelector('video') && document.querySelector('video').readyState >= 1"
    )
    duration = page.evaluate("document.querySelector('video').duration")
    assert duration == pytest.approx(8.0, abs=0.1)
    assert page.locator("#clip-status").get_attribute("hx-trigger") is None
    shot(page, "05-clip-ready")

    page.get_by_role("link", name="Launch film").click()
    page.wait_for_selector(".clip-card img")
    # The poster is served and drawn, not only linked.
    wait_until(
        page, "(i => i.complete && i.naturalWidth > 0)(document.querySelector('.clip-card img'))"
    )
    shot(page, "06-project-grid")
