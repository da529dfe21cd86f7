"""Review links: a guest without an account watches one chain or clip, comments at a timecode
and decides, sees nothing else of the project, and every action of theirs is on the record."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import check_password
from django.test import Client
from django.utils import timezone

from tests.chain_helpers import stored_clip
from tests.conftest import grant_spending
from videos import review_links
from videos.models import (
    Activity,
    AuditEvent,
    ClipKind,
    Comment,
    CommentScope,
    Decision,
    Membership,
    ProviderAccount,
    ReviewLink,
    Role,
    Verdict,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(project):
    ada = get_user_model().objects.create_user(
        "ada.lovelace", "ada@example.com", first_name="Ada", last_name="Lovelace"
    )
    Membership.objects.create(project=project, user=ada, role=Role.ADMIN)
    return grant_spending(ada)


@pytest.fixture
def kling(db):
    return ProviderAccount.objects.create(
        all_projects=True,
        kind="kling",
        label="Kling secret-label",
        base_url="http://127.0.0.1:9/sandbox/kling",
        credential="AKlinks0123456789",
        secret_key="sandbox-secret-AKlinks0123456789",
    )


@pytest.fixture
def chain(project, user, kling):
    """A root, its main take and an alternative take, each 2 s."""
    root = stored_clip(
        project=project, user=user, account=kling, seconds=2, size=(160, 90), poster_key=""
    )
    main = stored_clip(
        project=project,
        user=user,
        account=kling,
        seconds=2,
        size=(160, 90),
        parent=root,
        kind=ClipKind.CONTINUE,
        is_main_line=True,
    )
    other = stored_clip(
        project=project,
        user=user,
        account=kling,
        seconds=2,
        size=(160, 90),
        parent=root,
        kind=ClipKind.CONTINUE,
    )
    return root, main, other


def make_link(clip, admin, **fields) -> review_links.NewLink:
    return review_links.create_link(
        clip=clip,
        scope=fields.pop("scope", CommentScope.CHAIN),
        user=admin,
        expires_at=fields.pop("expires_at", timezone.now() + timedelta(days=7)),
        **fields,
    )


def guest() -> Client:
    return Client(enforce_csrf_checks=False)


# --- making a link ---------------------------------------------------------------------------


def test_an_admin_makes_a_link_and_sees_its_address_once(client, admin, chain):
    root, main, _ = chain
    client.force_login(admin)
    response = client.post(
        f"/clips/{main.pk}/share/",
        {"scope": "chain", "label": "Client cut", "expires_in": "7", "passcode": "tulip-42"},
    )
    assert response.status_code == 302 and response["Location"] == f"/clips/{main.pk}/share/"
    link = ReviewLink.objects.get()
    assert (link.clip, link.scope, link.label, link.project) == (
        root,
        CommentScope.CHAIN,
        "Client cut",
        root.project,
    )
    assert link.expires_at > timezone.now() + timedelta(days=6, hours=23)
    assert check_password("tulip-42", link.passcode_hash) and "tulip" not in link.passcode_hash

    page = client.get(f"/clips/{main.pk}/share/").content.decode()
    url = re.search(r'id="new-link-url"[^>]*value="([^"]+)"', page)[1]
    token = url.rsplit("/review/", 1)[1].strip("/")
    assert hashlib.sha256(token.encode()).hexdigest() == link.token_hash
    assert len(token) >= 40
    # Only the hash is kept: the address is never shown again.
    assert token not in client.get(f"/clips/{main.pk}/share/").content.decode()
    assert AuditEvent.objects.filter(action="review_link.created", actor=admin).exists()
    assert Activity.objects.filter(verb="shared for review", clip=root).exists()


def test_a_clip_outside_any_chain_can_only_be_shared_as_a_clip(client, admin, project, user, kling):
    alone = stored_clip(project=project, user=user, account=kling, seconds=2, size=(160, 90))
    client.force_login(admin)
    assert "The whole chain" not in client.get(f"/clips/{alone.pk}/share/").content.decode()
    client.post(f"/clips/{alone.pk}/share/", {"scope": "chain", "expires_in": "7"})
    assert not ReviewLink.objects.exists()
    client.post(f"/clips/{alone.pk}/share/", {"scope": "clip", "expires_in": "3"})
    assert ReviewLink.objects.get().scope == CommentScope.CLIP


def test_bad_link_settings_are_said_by_their_fields(client, admin, chain):
    client.force_login(admin)
    response = client.post(
        f"/clips/{chain[0].pk}/share/", {"scope": "chain", "expires_in": "365", "passcode": "ab"}
    )
    page = response.content.decode()
    assert response.status_code == 200 and not ReviewLink.objects.exists()
    assert "Select a valid choice" in page and "at least 4 characters" in page


# --- what a guest sees -----------------------------------------------------------------------


def test_a_guest_sees_the_main_line_and_nothing_else_of_the_project(admin, user, chain):
    root, main, other = chain
    Comment.objects.create(clip=root, scope="chain", author=admin, body="Lovely light", timecode=1)
    Comment.objects.create(clip=root, scope="chain", author=user, body="Thanks", timecode=2)
    made = make_link(main, admin, label="Client cut")
    visitor = guest()

    response = visitor.get(made.path)

    assert response.status_code == 200
    page = response.content.decode()
    assert "Client cut" in page
    for segment in (root, main):
        assert f"/review/{made.token}/clips/{segment.pk}/video.mp4" in page
    assert f"/clips/{other.pk}/" not in page
    # No studio address, cost, key, account or username: only first names.
    assert not re.search(r'(href|src|action|hx-\w+)="/(clips|projects|takes|exports|usage)', page)
    for hidden in ("casey", "ada.lovelace", "Lovelace", "Kling", "$", "AKlinks", root.model):
        assert hidden not in page, hidden
    assert "<strong>Ada</strong>" in page and "<strong>Team member</strong>" in page
    assert "Launch film" not in page


def test_a_guest_plays_only_the_videos_of_the_link(admin, chain, project, user, kling):
    root, main, other = chain
    made = make_link(main, admin)
    elsewhere = stored_clip(project=project, user=user, account=kling, seconds=1, size=(160, 90))
    visitor = guest()
    visitor.get(made.path)
    video = visitor.get(f"/review/{made.token}/clips/{main.pk}/video.mp4")
    assert video.status_code == 200 and video["Content-Type"] == "video/mp4"
    assert b"".join(video.streaming_content)[4:8] == b"ftyp"
    for clip_id in (other.pk, elsewhere.pk, 999999):
        assert visitor.get(f"/review/{made.token}/clips/{clip_id}/video.mp4").status_code == 404
    assert visitor.get(f"/review/{made.token}x/clips/{main.pk}/video.mp4").status_code == 404


def test_a_clip_link_shows_that_clip_whole(admin, chain):
    root, main, _ = chain
    made = make_link(main, admin, scope=CommentScope.CLIP)
    visitor = guest()
    page = visitor.get(made.path).content.decode()
    assert f"/review/{made.token}/clips/{main.pk}/video.mp4" in page
    assert f"/clips/{root.pk}/video.mp4" not in page
    assert visitor.get(f"/review/{made.token}/clips/{root.pk}/video.mp4").status_code == 404


# --- what a guest does -----------------------------------------------------------------------


def test_a_guest_comments_at_a_timecode_under_their_name(client, admin, chain):
    root, main, _ = chain
    made = make_link(main, admin, label="Client cut")
    visitor = guest()
    visitor.get(made.path)

    response = visitor.post(
        f"/review/{made.token}/comments/",
        {"name": "  Dana  Scully ", "body": "The sky flickers here", "timecode": "3.5"},
    )

    assert response.status_code == 302
    comment = Comment.objects.get()
    assert (comment.clip, comment.scope, comment.author, comment.review_link) == (
        root,
        CommentScope.CHAIN,
        None,
        made.link,
    )
    assert (comment.guest_name, comment.timecode) == ("Dana Scully", 3.5)
    page = visitor.get(made.path).content.decode()
    assert "The sky flickers here" in page and 'value="Dana Scully"' in page
    activity = Activity.objects.get(verb="guest commented")
    assert activity.actor is None and "Dana Scully (guest" in activity.summary
    assert "at 0:03.5" in activity.summary
    event = AuditEvent.objects.get(action="review_link.guest_commented")
    assert event.actor is None and event.detail["guest"] == "Dana Scully"

    # The team sees it marked as a guest's, on the chain, in the feed and on the audit page.
    client.force_login(admin)
    chain_page = client.get(f"/clips/{root.pk}/chain/").content.decode()
    assert "<strong>Dana Scully</strong>" in chain_page and "guest-pill" in chain_page
    feed = client.get(f"/projects/{root.project_id}/").content.decode()
    assert "<strong>Guest</strong> " in feed and "Dana Scully (guest, via “Client cut”)" in feed
    admin.is_staff = True
    admin.save(update_fields=["is_staff"])
    audit_page = client.get("/audit/").content.decode()
    assert 'Dana Scully <span class="pill guest-pill">Guest</span>' in audit_page


def test_a_comment_past_the_end_or_without_a_name_is_refused_by_its_field(admin, chain):
    made = make_link(chain[1], admin)
    visitor = guest()
    visitor.get(made.path)
    response = visitor.post(
        f"/review/{made.token}/comments/", {"name": " ", "body": "Hm", "timecode": "99"}
    )
    page = response.content.decode()
    assert response.status_code == 400
    assert "This field is required." in page and "That is past the end" in page
    assert not Comment.objects.exists()


def test_guests_approve_and_request_changes_each_under_their_own_name(client, admin, chain):
    root, main, _ = chain
    made = make_link(main, admin)
    for name, verdict in (("Dana", "approved"), ("Fox", "changes"), ("Dana", "changes")):
        visitor = guest()
        visitor.get(made.path)
        response = visitor.post(
            f"/review/{made.token}/decisions/", {"name": name, "verdict": verdict, "note": ""}
        )
        assert response.status_code == 302
    assert Decision.objects.filter(user__isnull=True, review_link=made.link).count() == 3
    page = guest().get(made.path).content.decode()
    # The latest of each guest counts: Dana changed her mind.
    assert page.count("Changes requested · Dana (guest)") == 1
    assert "Changes requested · Fox (guest)" in page and "Approved · Dana" not in page
    assert Activity.objects.filter(verb="guest approved").count() == 1
    assert AuditEvent.objects.filter(action="review_link.guest_decided").count() == 3
    client.force_login(admin)
    assert (
        "Changes requested · Fox (guest)" in client.get(f"/clips/{root.pk}/chain/").content.decode()
    )


def test_htmx_posts_answer_with_the_review_fragment(admin, chain):
    made = make_link(chain[1], admin)
    visitor = guest()
    visitor.get(made.path)
    response = visitor.post(
        f"/review/{made.token}/comments/",
        {"name": "Dana", "body": "Nice"},
        headers={"HX-Request": "true"},
    )
    page = response.content.decode()
    assert response.status_code == 200 and page.lstrip().startswith('<section id="guest-review"')
    assert "Nice" in page


# --- ended links -----------------------------------------------------------------------------


def test_a_revoked_link_says_so_and_takes_nothing(client, admin, chain):
    made = make_link(chain[1], admin)
    client.force_login(admin)
    assert client.post(f"/review-links/{made.link.pk}/revoke/").status_code == 302
    made.link.refresh_from_db()
    assert made.link.revoked_at is not None
    visitor = guest()
    response = visitor.get(made.path)
    assert response.status_code == 410
    assert "This review link no longer works" in response.content.decode()
    assert visitor.post(made.path + "comments/", {"name": "A", "body": "B"}).status_code == 410
    assert visitor.get(f"/review/{made.token}/clips/{chain[1].pk}/video.mp4").status_code == 404
    assert not Comment.objects.exists()
    assert AuditEvent.objects.filter(action="review_link.revoked", actor=admin).exists()


def test_an_expired_link_says_when_it_ended(admin, chain):
    made = make_link(chain[1], admin)
    ReviewLink.objects.filter(pk=made.link.pk).update(
        expires_at=timezone.now() - timedelta(hours=1)
    )
    response = guest().get(made.path)
    assert response.status_code == 410
    assert "This review link has expired" in response.content.decode()


def test_an_unknown_link_is_not_found(db):
    response = guest().get("/review/not-a-real-token/")
    assert response.status_code == 404
    assert "There is nothing here" in response.content.decode()


# --- passcodes and throttling ----------------------------------------------------------------


def test_a_passcode_opens_the_link_once_per_visitor(admin, chain):
    made = make_link(chain[1], admin, passcode="tulip-42")
    visitor = guest()
    page = visitor.get(made.path).content.decode()
    assert "asks for a passcode" in page and "/clips/" not in page
    assert visitor.get(f"/review/{made.token}/clips/{chain[1].pk}/video.mp4").status_code == 404
    assert visitor.post(made.path + "comments/", {"name": "A", "body": "B"}).status_code == 302
    assert not Comment.objects.exists()

    wrong = visitor.post(made.path, {"passcode": "tulip-41"})
    assert wrong.status_code == 403 and "That passcode is not right." in wrong.content.decode()
    assert visitor.post(made.path, {"passcode": "tulip-42"}).status_code == 302
    assert "Your review" in visitor.get(made.path).content.decode()
    assert visitor.get(f"/review/{made.token}/clips/{chain[1].pk}/video.mp4").status_code == 200
    # Another visitor still needs it.
    assert "asks for a passcode" in guest().get(made.path).content.decode()


def test_passcode_guesses_are_limited(admin, chain):
    made = make_link(chain[1], admin, passcode="tulip-42")
    for _ in range(review_links.PASSCODE_TRIES):
        assert guest().post(made.path, {"passcode": "guess"}).status_code == 403
    locked = guest().post(made.path, {"passcode": "tulip-42"})
    assert locked.status_code == 429
    assert "Too many wrong passcodes. Try again in 15 minutes." in locked.content.decode()
    failures = AuditEvent.objects.filter(action="review_link.passcode_failed")
    assert failures.count() == review_links.PASSCODE_TRIES
    # Once the window has passed, the right passcode works again.
    failures.update(created_at=timezone.now() - timedelta(minutes=16))
    assert guest().post(made.path, {"passcode": "tulip-42"}).status_code == 302


def test_comment_floods_are_stopped(admin, chain):
    made = make_link(chain[1], admin)
    visitor = guest()
    visitor.get(made.path)
    for n in range(review_links.GUEST_POSTS):
        assert (
            visitor.post(made.path + "comments/", {"name": "Bot", "body": f"{n}"}).status_code
            == 302
        )
    refused = visitor.post(made.path + "comments/", {"name": "Bot", "body": "one more"})
    assert refused.status_code == 429
    assert "Wait a few minutes and send yours again." in refused.content.decode()
    decided = visitor.post(made.path + "decisions/", {"name": "Bot", "verdict": Verdict.APPROVED})
    assert decided.status_code == 429
    assert Comment.objects.count() == review_links.GUEST_POSTS


# --- the boundary ------------------------------------------------------------------------------


def test_a_guest_gets_a_404_from_every_other_studio_page(admin, chain, project):
    root, main, other = chain
    made = make_link(main, admin)
    visitor = guest()
    visitor.get(made.path)
    for path in (
        "/",
        "/projects/",
        f"/projects/{project.pk}/",
        f"/projects/{project.pk}/clips/new/",
        f"/projects/{project.pk}/settings/",
        f"/clips/{root.pk}/",
        f"/clips/{root.pk}/chain/",
        f"/clips/{main.pk}/video.mp4",
        f"/clips/{main.pk}/poster.jpg",
        f"/clips/{other.pk}/",
        f"/clips/{main.pk}/share/",
        "/takes/1/",
        "/usage/",
        "/audit/",
    ):
        response = visitor.get(path)
        assert response.status_code == 404, path
        assert "/projects/" not in response.content.decode(), path
    assert visitor.post(f"/clips/{main.pk}/comments/", {"body": "x"}).status_code == 404
    # Someone who never opened a link is sent to log in, as before.
    assert guest().get(f"/clips/{root.pk}/").status_code == 302
    # The login page stays open to the guest.
    assert visitor.get("/login/").status_code == 200
