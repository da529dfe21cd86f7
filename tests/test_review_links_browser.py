"""A review link in Chromium: an admin makes one, a guest in a fresh browser comments at 0:07.5
and approves, cannot open anything else of the project, and an ended link says so."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from playwright.sync_api import expect

from tests.browser import shot
from tests.chain_helpers import stored_clip
from videos import review_links
from videos.models import (
    ClipKind,
    Comment,
    CommentScope,
    Decision,
    Membership,
    ReviewLink,
    Role,
    TakeGroup,
    Verdict,
)
from videos.pipeline.poster import make_poster

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page_viewport() -> dict[str, int]:
    return {"width": 1280, "height": 900}


def test_a_guest_reviews_through_a_link_and_sees_nothing_else(
    page, live_server, user, project, sandbox_account
):
    admin = get_user_model().objects.create_user(
        "ada", "ada@example.com", "pw-ada-12345", first_name="Ada"
    )
    Membership.objects.create(project=project, user=admin, role=Role.ADMIN)
    account = sandbox_account("kling")
    root = stored_clip(
        project=project,
        user=user,
        account=account,
        seconds=5,
        size=(480, 270),
        model="kling-v1-6",
        prompt="Morning over a harbour",
    )
    take = stored_clip(
        project=project,
        user=user,
        account=account,
        seconds=5,
        size=(480, 270),
        model="kling-v1-6",
        prompt="Boats leave the harbour",
        parent=root,
        kind=ClipKind.CONTINUE,
        is_main_line=True,
        start_at=5,
    )
    for clip in (root, take):
        make_poster(clip_id=clip.pk)
    elsewhere = stored_clip(project=project, user=user, account=account, seconds=1)
    group = TakeGroup.objects.create(project=project, created_by=user)

    # The admin makes the link from the chain page.
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill("pw-ada-12345")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server.url}/projects/")
    page.goto(f"{live_server.url}/clips/{root.pk}/chain/")
    page.get_by_role("link", name="Share for review").click()
    page.get_by_label("Name").fill("Harbour film, client cut")
    page.get_by_role("button", name="Make the link").click()
    url = page.locator("#new-link-url").input_value()
    assert re.fullmatch(rf"{re.escape(live_server.url)}/review/[\w-]{{40,}}/", url)
    shot(page, "review-link-01-made")

    # A guest, in a browser that never logged in.
    guest_context = page.context.browser.new_context(viewport={"width": 1280, "height": 900})
    guest = guest_context.new_page()
    guest.set_default_timeout(15_000)
    guest.goto(url)
    expect(guest.get_by_role("heading", name="Harbour film, client cut")).to_be_visible()
    guest.wait_for_function(
        "() => document.querySelector('#chain-player').chainPlayer !== undefined"
    )
    assert guest.locator(".ticks li").count() == 2
    guest.evaluate("() => document.querySelector('#chain-player').chainPlayer.seek(7.5)")
    guest.wait_for_function(
        "() => Math.abs(document.querySelector('#chain-player').chainPlayer.currentTime() - 7.5)"
        " < 0.05"
    )
    expect(guest.locator("#chain-player").first).to_have_attribute("data-segment", "1")
    review = guest.locator("#guest-review")
    review.get_by_label("Comment").click()
    expect(guest.locator("#id_c_timecode")).to_have_value("7.5")
    review.get_by_label("Comment").fill("The second boat should leave a little later")
    guest.locator("#id_c_name").fill("Dana")
    review.get_by_role("button", name="Comment", exact=True).click()
    expect(review.locator(".thread .timecode")).to_have_text("0:07.5")
    comment = Comment.objects.get()
    assert (comment.clip_id, comment.scope, comment.guest_name) == (
        root.pk,
        CommentScope.CHAIN,
        "Dana",
    )
    assert comment.author is None and comment.timecode == pytest.approx(7.5, abs=0.01)
    # The name is remembered for the decision.
    expect(guest.locator("#id_d_name")).to_have_value("Dana")
    guest.locator("#id_d_note").fill("Lovely otherwise")
    review.get_by_role("button", name="Approve").click()
    expect(review.locator(".verdicts")).to_contain_text("Approved · Dana (guest)")
    decision = Decision.objects.get()
    assert (decision.verdict, decision.user, decision.guest_name) == (
        Verdict.APPROVED,
        None,
        "Dana",
    )
    shot(guest, "review-link-02-guest-commented")

    # Clicking the comment's timecode brings the player back to it.
    guest.evaluate("() => document.querySelector('#chain-player').chainPlayer.seek(1)")
    review.locator(".thread .timecode").click()
    guest.wait_for_function(
        "() => Math.abs(document.querySelector('#chain-player').chainPlayer.currentTime() - 7.5)"
        " < 0.15"
    )

    # Nothing else of the project opens for the guest.
    for path in (
        "/",
        "/projects/",
        f"/projects/{project.pk}/",
        f"/projects/{project.pk}/settings/",
        f"/clips/{root.pk}/",
        f"/clips/{root.pk}/chain/",
        f"/clips/{take.pk}/video.mp4",
        f"/clips/{take.pk}/poster.jpg",
        f"/clips/{elsewhere.pk}/",
        f"/clips/{root.pk}/share/",
        f"/takes/{group.pk}/",
        "/usage/",
        "/audit/",
        url.replace(live_server.url, "") + f"clips/{elsewhere.pk}/video.mp4",
    ):
        response = guest.goto(live_server.url + path)
        assert response.status == 404, path
    expect(guest.get_by_role("heading", name="There is nothing here")).to_be_visible()
    assert guest.locator("a[href^='/projects'], a[href^='/clips']").count() == 0
    shot(guest, "review-link-03-guest-elsewhere")

    # The team sees the guest's comment, marked as a guest's.
    page.goto(f"{live_server.url}/clips/{root.pk}/chain/")
    expect(page.locator("#review-chain .thread").first).to_contain_text("Dana")
    expect(page.locator("#review-chain .guest-pill").first).to_have_text("Guest")
    expect(page.locator("#review-chain .verdicts")).to_contain_text("Approved · Dana (guest)")
    shot(page, "review-link-04-team-sees-the-guest")

    # The admin revokes it: the guest's next visit says so.
    page.goto(f"{live_server.url}/clips/{root.pk}/share/")
    page.get_by_role("button", name="Revoke").click()
    expect(page.locator(".link-row .pill").first).to_have_text("Revoked")
    shot(page, "review-link-05-revoked")
    response = guest.goto(url)
    assert response.status == 410
    expect(guest.get_by_role("heading", name="This review link no longer works")).to_be_visible()
    shot(guest, "review-link-06-guest-revoked")

    # An expired link says when it ended.
    expired = review_links.create_link(
        clip=root,
        scope=CommentScope.CHAIN,
        user=admin,
        expires_at=timezone.now() + timedelta(days=1),
        label="Old cut",
    )
    ReviewLink.objects.filter(pk=expired.link.pk).update(
        expires_at=timezone.now() - timedelta(hours=2)
    )
    response = guest.goto(live_server.url + expired.path)
    assert response.status == 410
    expect(guest.get_by_role("heading", name="This review link has expired")).to_be_visible()
    shot(guest, "review-link-07-guest-expired")
    guest_context.close()


def test_a_link_with_a_passcode_asks_for_it_first(
    page, live_server, user, project, sandbox_account
):
    admin = get_user_model().objects.create_user("ada", "ada@example.com")
    Membership.objects.create(project=project, user=admin, role=Role.ADMIN)
    clip = stored_clip(project=project, user=user, account=sandbox_account("kling"), seconds=2)
    made = review_links.create_link(
        clip=clip,
        scope=CommentScope.CLIP,
        user=admin,
        expires_at=timezone.now() + timedelta(days=1),
        passcode="tulip-42",
        label="First look",
    )
    page.goto(live_server.url + made.path)
    page.get_by_label("Passcode").fill("tulip-41")
    page.get_by_role("button", name="Open the review").click()
    expect(page.locator(".error")).to_have_text("That passcode is not right.")
    shot(page, "review-link-08-passcode")
    page.get_by_label("Passcode").fill("tulip-42")
    page.get_by_role("button", name="Open the review").click()
    expect(page.get_by_role("heading", name="First look")).to_be_visible()
    page.wait_for_function(
        "() => document.querySelector('#chain-player').chainPlayer !== undefined"
    )
