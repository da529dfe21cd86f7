"""A chain in a real browser: Chromium plays the main line across segments and a reviewer
adds a comment at the player's current time."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

from tests.browser import shot, wait_until
from tests.chain_helpers import finish, generate
from videos import chains
from videos.models import ChainExport, Comment, CommentScope, ExportStatus

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def quick_sandbox(fast_sandbox, settings):
    # A chain waits on several provider tasks in a row; the twin's need not take long.
    settings.SANDBOX_TASK_SECONDS = 0.5


@pytest.fixture
def page_viewport() -> dict[str, int]:
    return {"width": 1280, "height": 900}


def log_in(page: Page, live_server) -> None:
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Username").fill("casey")
    page.get_by_label("Password").fill("pw-casey-123")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server.url}/projects/")


def test_a_chain_plays_across_segments_and_takes_a_timecoded_comment(
    page, live_server, sandbox_account, user, project, drain_queue
):
    # Kling returns the whole extended video: the second segment must start where the
    # first one's footage ends, not replay it.
    account = sandbox_account("kling")
    root = generate(
        drain_queue,
        project=project,
        user=user,
        account=account,
        model="kling-v1-6",
        params={"duration": 5, "aspect_ratio": "16:9", "resolution": "std"},
        prompt="A paper boat on a stream, morning light",
    )
    take = finish(
        drain_queue,
        chains.extend_clip(source=root, user=user, prompt="The boat drifts under a bridge"),
    )
    new_from = take.new_from_seconds
    assert new_from == pytest.approx(5.0, abs=0.05)

    log_in(page, live_server)
    page.goto(f"{live_server.url}/clips/{take.pk}/")
    shot(page, "chain-01-clip-panel")
    page.get_by_role("link", name="Open the chain").click()
    page.wait_for_url(f"{live_server.url}/clips/{root.pk}/chain/")
    wait_until(page, "document.querySelector('#chain-player').chainPlayer !== undefined")
    assert page.locator(".ticks li").count() == 2
    shot(page, "chain-02-chain-page")

    # Watch every hand-over from one segment to the next: the incoming video must already
    # hold its first new frame, parked at new_from_seconds.
    page.evaluate(
        """() => {
            window.__swaps = [];
            const root = document.querySelector('#chain-player');
            root.addEventListener('chain:segment', (event) => {
                const video = root.chainPlayer.video();
                window.__swaps.push({index: event.detail.index, readyState: video.readyState,
                                     at: video.currentTime, paused: video.paused});
            });
        }"""
    )
    page.evaluate("document.querySelector('#chain-player').chainPlayer.seek(4.2)")
    page.get_by_role("button", name="Play").click()
    wait_until(
        page, "document.querySelector('#chain-player').dataset.segment === '1'", timeout=10_000
    )
    swaps = page.evaluate("window.__swaps")
    handover = swaps[-1]
    assert handover["index"] == 1
    assert handover["readyState"] >= 2
    assert handover["at"] == pytest.approx(new_from, abs=0.25)
    wait_until(
        page,
        "document.querySelector('#chain-player').chainPlayer.currentTime() > 6.0",
        timeout=10_000,
    )
    active_time = page.evaluate(
        "document.querySelector('#chain-player').chainPlayer.video().currentTime"
    )
    assert active_time > new_from  # the repeated first 5 s were skipped
    page.get_by_role("button", name="Pause").click()
    paused_at = page.evaluate("document.querySelector('#chain-player').chainPlayer.currentTime()")
    assert 6.0 < paused_at < take.duration_seconds

    # Starting to write takes the player's time.
    comment_box = page.locator("#review-chain").get_by_label("Comment")
    comment_box.click()
    timecode = float(page.locator("#id_chain_timecode").input_value())
    assert timecode == pytest.approx(paused_at, abs=0.11)
    comment_box.fill("The bridge appears too early here")
    page.locator("#review-chain").get_by_role("button", name="Comment").click()
    page.wait_for_selector("#review-chain .thread")
    comment = Comment.objects.get()
    assert (comment.clip_id, comment.scope) == (root.pk, CommentScope.CHAIN)
    assert comment.timecode == pytest.approx(paused_at, abs=0.11)
    link = page.locator("#review-chain .thread .timecode")
    assert link.inner_text() == f"0:{comment.timecode:04.1f}"
    shot(page, "chain-03-commented")

    # Clicking a comment's timecode brings the player back to it.
    page.evaluate("document.querySelector('#chain-player').chainPlayer.seek(1.0)")
    link.click()
    wait_until(
        page,
        f"Math.abs(document.querySelector('#chain-player').chainPlayer.currentTime() - "
        f"{comment.timecode}) < 0.15",
    )
    assert page.evaluate("document.querySelector('#chain-player').dataset.segment") == "1"

    # Export: the bar shows while the queue stitches, then the download appears by itself.
    page.get_by_role("button", name="Export MP4").click()
    page.wait_for_selector("#export-progress")
    shot(page, "chain-04-exporting")
    made = ChainExport.objects.get()
    drain_queue(
        until=lambda: ChainExport.objects.get(pk=made.pk).status == ExportStatus.READY,
        timeout=60,
    )
    page.get_by_role("link", name="Download MP4").wait_for()
    assert page.locator("#export-progress").count() == 0
    shot(page, "chain-05-exported")

    # The pages around the chain, for the record.
    page.goto(f"{live_server.url}/clips/{take.pk}/extend/")
    assert page.get_by_label("What happens next").input_value() == take.prompt
    shot(page, "chain-06-extend")
    page.goto(f"{live_server.url}/clips/{take.pk}/continue/")
    assert page.get_by_label("Prompt", exact=True).input_value() == take.prompt
    shot(page, "chain-07-continue")
    page.goto(f"{live_server.url}/projects/{project.pk}/")
    page.wait_for_selector("#activity .feed")
    shot(page, "chain-08-project-activity")
