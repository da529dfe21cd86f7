"""Takes in Chromium: four takes of one prompt play side by side in sync, and the pick is
what the chain is built on."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from sandbox.models import SandboxTask
from tests.browser import shot
from tests.chain_helpers import done
from videos import chains
from videos.models import Clip, ModelPrice, TakeGroup

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page_viewport() -> dict[str, int]:
    return {"width": 1280, "height": 900}


def log_in(page, live_server) -> None:
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Username").fill("casey")
    page.get_by_label("Password").fill("pw-casey-123")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server.url}/projects/")


def takes_done(group_id: int, count: int):
    def check() -> bool:
        clips = list(Clip.objects.filter(take_group_id=group_id))
        return len(clips) == count and all(done(clip.pk)() for clip in clips)

    return check


SPREAD = """() => {
    const times = document.getElementById('takes-grid').takesPlayer.positions();
    return Math.max(...times) - Math.min(...times);
}"""


def test_four_takes_play_in_sync_and_the_pick_becomes_the_main_line(
    page, live_server, user, project, sandbox_account, drain_queue, settings
):
    settings.SANDBOX_TASK_SECONDS = 1
    # apimart fetches the continuation's first frame by link: the live server is public here.
    settings.PUBLIC_URL = live_server.url
    sandbox_account("apimart")
    ModelPrice.objects.create(kind="apimart", model="veo3.1-fast-official", per_clip="0.50")
    log_in(page, live_server)

    page.goto(f"{live_server.url}/projects/{project.pk}/clips/new/")
    page.get_by_label("Prompt", exact=True).fill("A hot-air balloon over a misty valley at dawn")
    page.get_by_label("Takes").select_option("4")
    expect(page.locator("#clip-estimate")).to_contain_text("$2.00 for 4 takes")
    shot(page, "takes-01-form")
    page.get_by_role("button", name="Generate").click()
    page.wait_for_url(re.compile(r"/takes/\d+/$"))
    group = TakeGroup.objects.get()
    expect(page.locator(".take-card")).to_have_count(4)
    shot(page, "takes-02-on-their-way")

    drain_queue(until=takes_done(group.pk, 4), timeout=120)
    # One paid request to apimart made all four.
    assert SandboxTask.objects.filter(provider="apimart").count() == 1
    expect(page.locator("video.take-video")).to_have_count(4, timeout=15_000)
    page.wait_for_function(
        "() => [...document.querySelectorAll('video.take-video')].every(v => v.readyState >= 2)"
    )
    transport = page.locator("#takes-transport")
    expect(transport).to_be_visible()
    # One transport for all: the players' own controls are gone.
    assert page.evaluate(
        "[...document.querySelectorAll('video.take-video')].every(v => !v.controls)"
    )

    transport.get_by_role("button", name="Play all takes").click()
    page.wait_for_function(
        "() => [...document.querySelectorAll('video.take-video')].every(v => v.currentTime > 1.5)",
        timeout=10_000,
    )
    assert page.evaluate(SPREAD) < 0.25
    assert page.evaluate("[...document.querySelectorAll('video.take-video')].every(v => !v.paused)")
    shot(page, "takes-03-playing")
    transport.get_by_role("button", name="Pause all takes").click()
    page.wait_for_function(
        "() => [...document.querySelectorAll('video.take-video')].every(v => v.paused)"
    )
    page.wait_for_timeout(300)
    assert page.evaluate(SPREAD) < 0.05  # paused, every take shows the same moment

    # The scrubber moves every take to the same time.
    page.evaluate(
        """() => { const s = document.querySelector('#takes-transport .scrubber');
                   s.value = '5.5'; s.dispatchEvent(new Event('change')); }"""
    )
    page.wait_for_function(
        "() => [...document.querySelectorAll('video.take-video')].every(v => "
        "Math.abs(v.currentTime - 5.5) < 0.05)"
    )

    # Sound: the first take is heard, the others are muted until switched on.
    sound = page.locator("#takes-grid .take-card").nth(2).locator("[data-sound]")
    expect(sound).to_have_text("Sound off")
    sound.click()
    expect(sound).to_have_text("Sound on")
    assert page.evaluate("document.querySelectorAll('video.take-video')[2].muted") is False
    expect(sound).to_have_attribute("aria-pressed", "true")

    third = group.takes.order_by("created_at", "pk")[2]
    page.locator(f"#take-{third.pk}").get_by_role("button", name="Pick this take").click()
    page.wait_for_url(re.compile(rf"/takes/{group.pk}/#take-{third.pk}$"))
    expect(page.locator(f"#take-{third.pk} .pick-pill")).to_have_text("★ The pick")
    expect(page.locator(".subhead")).to_contain_text("the pick is take 3")
    group.refresh_from_db()
    assert group.pick_id == third.pk
    shot(page, "takes-04-picked")

    # The pick is what the chain grows from. (apimart extends whole tasks, and this take
    # shares its task with the others, so it is continued from its last frame.)
    expect(page.get_by_role("link", name="Extend the pick")).to_have_count(0)
    page.get_by_role("link", name="Continue from the pick").click()
    page.wait_for_url(f"{live_server.url}/clips/{third.pk}/continue/")
    page.get_by_label("Prompt", exact=True).fill("The balloon rises above the clouds")
    page.get_by_role("button", name="Continue", exact=True).click()
    page.wait_for_url(re.compile(r"/clips/\d+/$"))
    continuation = Clip.objects.get(parent=third)
    drain_queue(until=done(continuation.pk), timeout=90)
    assert chains.timeline(third).clip_ids == [third.pk, continuation.pk]
    page.goto(f"{live_server.url}/clips/{third.pk}/chain/")
    expect(page.locator(".segment-list .segment")).to_have_count(2)
    shot(page, "takes-05-chain-from-the-pick")


def test_without_javascript_takes_are_a_grid_of_players_with_a_pick_button(
    live_server, user, project, sandbox_account, settings
):
    from playwright.sync_api import sync_playwright

    from tests.chain_helpers import stored_clip
    from tests.conftest import CHROMIUM, CHROMIUM_ARGS

    account = sandbox_account("kling")
    group = TakeGroup.objects.create(project=project, created_by=user)
    for n in range(3):
        stored_clip(
            project=project,
            user=user,
            account=account,
            seconds=2,
            size=(320, 180),
            prompt=f"Take {n} of a lighthouse",
            take_group=group,
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(
            java_script_enabled=False, viewport={"width": 1280, "height": 800}
        )
        page = context.new_page()
        log_in(page, live_server)
        page.goto(f"{live_server.url}/takes/{group.pk}/")
        expect(page.locator("#takes-transport")).to_be_hidden()
        assert page.locator("video.take-video[controls]").count() == 3
        shot(page, "takes-06-no-javascript")
        page.get_by_role("button", name="Pick this take").first.click()
        expect(page.locator(".pick-pill")).to_have_count(1)
        context.close()
        browser.close()
    group.refresh_from_db()
    assert group.pick_id == group.takes.order_by("pk").first().pk
