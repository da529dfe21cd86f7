"""Trimming in Chromium: a creator drags one segment's out point on the timeline and types
another's in and out points; the chain plays only what is kept, and the export's PyAV
duration is exactly the sum of the trimmed parts."""

from __future__ import annotations

import pytest
from django.core.files.storage import default_storage
from playwright.sync_api import expect

from tests.browser import shot
from tests.chain_helpers import stored_clip
from videos import chains, media
from videos.models import ChainExport, Clip, ClipKind, ExportStatus
from videos.pipeline.poster import make_poster

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page_viewport() -> dict[str, int]:
    return {"width": 1280, "height": 900}


def wait_for(predicate, page, timeout_ms: int = 15_000) -> None:
    for _ in range(timeout_ms // 100):
        if predicate():
            return
        page.wait_for_timeout(100)
    raise AssertionError("Timed out waiting for the database.")


def test_trimming_two_segments_plays_and_exports_only_what_is_kept(
    page, live_server, user, project, sandbox_account, drain_queue
):
    account = sandbox_account("kling")
    first = stored_clip(
        project=project,
        user=user,
        account=account,
        seconds=4,
        model="kling-v1-6",
        prompt="A kite over the dunes",
    )
    second = stored_clip(
        project=project,
        user=user,
        account=account,
        seconds=4,
        model="kling-v1-6",
        prompt="The kite lands in the grass",
        parent=first,
        kind=ClipKind.CONTINUE,
        is_main_line=True,
        start_at=4,
    )
    for clip in (first, second):
        make_poster(clip_id=clip.pk)

    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Username").fill("casey")
    page.get_by_label("Password").fill("pw-casey-123")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server.url}/projects/")
    page.goto(f"{live_server.url}/clips/{first.pk}/chain/")
    strip = page.locator("[data-trim-strip]")
    expect(strip).to_be_visible()
    shot(page, "trim-01-chain-untrimmed")

    # Drag the first segment's out point from its end to 2.5 s.
    part = page.locator(f'[data-trim-part="{first.pk}"]')
    box = part.bounding_box()
    handle = part.locator("[data-handle=out]").bounding_box()
    page.mouse.move(handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2)
    page.mouse.down()
    target = box["x"] + box["width"] * 2.5 / 4
    page.mouse.move(target - 40, box["y"] + box["height"] / 2, steps=4)
    expect(page.locator(f"#trim-out-{first.pk}")).not_to_have_value("4")
    page.mouse.move(target, box["y"] + box["height"] / 2, steps=4)
    page.mouse.up()
    wait_for(lambda: Clip.objects.get(pk=first.pk).trim_out is not None, page)
    page.wait_for_load_state("load")
    expect(page.locator(f'[data-trim-part="{first.pk}"]')).to_have_attribute("data-out", "2.500")
    assert Clip.objects.get(pk=first.pk).kept_range() == (0.0, 2.5)

    # The second segment by its fields, as without JavaScript: keep 1 s to 3.5 s.
    form = page.locator(f"#trim-{second.pk}")
    form.get_by_label("In").fill("1")
    form.get_by_label("Out").fill("3.5")
    form.get_by_role("button", name="Trim").click()
    page.wait_for_url(f"{live_server.url}/clips/{first.pk}/chain/#segment-{second.pk}")
    assert Clip.objects.get(pk=second.pk).kept_range() == (1.0, 3.5)
    expect(page.locator(f'[data-trim-part="{second.pk}"]')).to_have_class("trim-part is-trimmed")
    expect(page.locator(".clock").first).to_contain_text("0:05.0")
    page.locator("#chain-player").scroll_into_view_if_needed()
    shot(page, "trim-02-chain-trimmed")

    # Playback honours both: the seam comes at 2.5 s and the second part starts at its 1 s.
    page.wait_for_function("() => document.querySelector('#chain-player').chainPlayer")
    segments = page.evaluate("() => document.querySelector('#chain-player').chainPlayer.segments")
    assert [(s["start"], s["end"], s["offset"]) for s in segments] == [
        (0.0, 2.5, 0.0),
        (1.0, 3.5, 2.5),
    ]
    page.evaluate("() => document.querySelector('#chain-player').chainPlayer.seek(2.2)")
    page.get_by_role("button", name="Play").click()
    page.wait_for_function(
        "() => document.querySelector('#chain-player').dataset.segment === '1'", timeout=10_000
    )
    at = page.evaluate(
        "() => document.querySelector('#chain-player').chainPlayer.video().currentTime"
    )
    assert 0.95 <= at < 1.6
    page.get_by_role("button", name="Pause").click()

    # The export lasts exactly the trimmed sum.
    expected = 2.5 + 2.5
    first.refresh_from_db()
    assert chains.timeline(first).total == pytest.approx(expected)
    page.get_by_role("button", name="Export MP4").click()
    made = ChainExport.objects.get()
    drain_queue(
        until=lambda: (
            ChainExport.objects.get(pk=made.pk).status in {ExportStatus.READY, ExportStatus.FAILED}
        ),
        timeout=60,
    )
    made.refresh_from_db()
    assert made.status == ExportStatus.READY, made.error_message
    with default_storage.open(made.file_key, "rb") as stored:
        assert media.probe(stored).duration == pytest.approx(expected, abs=1e-3)
    page.get_by_role("link", name="Download MP4").wait_for()
    shot(page, "trim-03-exported")
