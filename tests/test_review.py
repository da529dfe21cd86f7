"""Review: timecoded comments in threads, resolving, decisions on clips and chains, the feed."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from videos import chains
from videos.models import (
    Activity,
    Clip,
    ClipKind,
    ClipStatus,
    Comment,
    CommentScope,
    Decision,
    Membership,
    ProviderAccount,
    Role,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def account(db):
    return ProviderAccount.objects.create(
        all_projects=True,
        kind="apimart",
        label="apimart",
        base_url="http://127.0.0.1:9/sandbox/apimart",
        credential="sk-test-0123456789",
    )


def ready_clip(project, user, account, *, parent=None, kind=ClipKind.GENERATE, seconds=8.0):
    return Clip.objects.create(
        project=project,
        created_by=user,
        provider_account=account,
        model="veo3.1-fast-official",
        prompt="A red kite over green hills",
        params={"duration": 8, "aspect_ratio": "16:9", "resolution": "720p"},
        parent=parent,
        root_id=(parent.root_id or parent.pk) if parent is not None else None,
        kind=kind,
        status=ClipStatus.READY,
        provider_task_id=f"task_{Clip.objects.count() + 1}",
        file_key="clips/test.mp4",
        duration_seconds=seconds,
    )


@pytest.fixture
def clip(project, user, account):
    return ready_clip(project, user, account)


@pytest.fixture
def dana(project):
    dana = get_user_model().objects.create_user("dana", "dana@example.com")
    Membership.objects.create(project=project, user=dana, role=Role.REVIEWER)
    return dana


def test_a_comment_keeps_its_timecode_and_links_to_that_moment(client, user, clip):
    client.force_login(user)
    response = client.post(
        f"/clips/{clip.pk}/comments/",
        {"body": "The kite should be higher", "timecode": "3.4", "scope": "clip"},
    )
    assert response.status_code == 302
    assert response["Location"] == f"/clips/{clip.pk}/#review-clip"
    comment = Comment.objects.get()
    assert (comment.clip, comment.scope, comment.timecode) == (clip, "clip", 3.4)
    page = client.get(f"/clips/{clip.pk}/").content.decode()
    assert 'data-seek="3.400"' in page and ">0:03.4</a>" in page
    assert f'href="/clips/{clip.pk}/video.mp4#t=3.4"' in page  # without JavaScript
    assert "The kite should be higher" in page


def test_comments_are_listed_by_timecode_with_untimed_ones_last(client, user, clip):
    client.force_login(user)
    for body, timecode in (("General note", ""), ("Late", "7"), ("Early", "1.5")):
        client.post(
            f"/clips/{clip.pk}/comments/", {"body": body, "timecode": timecode, "scope": "clip"}
        )
    page = client.get(f"/clips/{clip.pk}/").content.decode()
    assert page.index("Early") < page.index("Late") < page.index("General note")


def test_a_timecode_past_the_end_is_refused_next_to_the_field(client, user, clip):
    client.force_login(user)
    response = client.post(
        f"/clips/{clip.pk}/comments/",
        {"body": "Too late", "timecode": "9.5", "scope": "clip"},
        headers={"HX-Request": "true"},
    )
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="review-clip"')
    assert 'id="id_clip_timecode-error"' in html
    assert "That is past the end: the video is 8.0 s long." in html
    assert not Comment.objects.exists()


def test_an_empty_comment_without_javascript_comes_back_on_the_clip_page(client, user, clip):
    client.force_login(user)
    response = client.post(f"/clips/{clip.pk}/comments/", {"body": "  ", "scope": "clip"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "<h1>Clip" in html  # the whole page, not a fragment
    assert 'id="id_clip_body-error"' in html and "This field is required." in html
    assert not Comment.objects.exists()


def test_replies_form_one_thread_and_a_reply_to_a_reply_joins_it(client, user, dana, clip):
    client.force_login(dana)
    client.post(
        f"/clips/{clip.pk}/comments/", {"body": "Sky too dark", "timecode": "2", "scope": "clip"}
    )
    first = Comment.objects.get()
    client.force_login(user)
    client.post(
        f"/clips/{clip.pk}/comments/",
        {"body": "Brightened it", "reply_to": first.pk, "scope": "clip"},
    )
    reply = Comment.objects.get(body="Brightened it")
    client.force_login(dana)
    client.post(
        f"/clips/{clip.pk}/comments/", {"body": "Better", "reply_to": reply.pk, "scope": "clip"}
    )
    assert list(first.replies.order_by("pk").values_list("body", flat=True)) == [
        "Brightened it",
        "Better",
    ]
    page = client.get(f"/clips/{clip.pk}/").content.decode()
    thread = page[page.index(f'id="comment-{first.pk}"') :]
    assert thread.index("Sky too dark") < thread.index("Brightened it") < thread.index("Better")
    assert Activity.objects.filter(verb="replied").count() == 2


def test_an_empty_reply_is_explained_under_its_own_thread(client, user, clip):
    client.force_login(user)
    client.post(f"/clips/{clip.pk}/comments/", {"body": "Note", "scope": "clip"})
    first = Comment.objects.get()
    html = client.post(
        f"/clips/{clip.pk}/comments/",
        {"body": "", "reply_to": first.pk, "scope": "clip"},
        headers={"HX-Request": "true"},
    ).content.decode()
    thread = html[html.index(f'id="comment-{first.pk}"') :]
    assert "<details open>" in thread and "This field is required." in thread
    assert Comment.objects.count() == 1


def test_a_thread_is_resolved_and_reopened(client, user, dana, clip):
    comment = Comment.objects.create(clip=clip, author=dana, body="Fix the horizon", timecode=1)
    client.force_login(user)
    html = client.post(
        f"/comments/{comment.pk}/resolve/", {"action": "resolve"}, headers={"HX-Request": "true"}
    ).content.decode()
    assert "Resolved by casey" in html and ">Reopen</button>" in html
    comment.refresh_from_db()
    assert comment.resolved_by == user and comment.resolved_at is not None
    response = client.post(f"/comments/{comment.pk}/resolve/", {"action": "reopen"})
    assert response["Location"] == f"/clips/{clip.pk}/#review-clip"
    comment.refresh_from_db()
    assert comment.resolved_at is None and comment.resolved_by is None
    assert list(Activity.objects.order_by("pk").values_list("verb", flat=True)) == [
        "resolved",
        "reopened",
    ]


def test_each_members_latest_decision_counts(client, user, dana, clip):
    client.force_login(dana)
    client.post(f"/clips/{clip.pk}/decisions/", {"verdict": "approved", "scope": "clip"})
    client.post(
        f"/clips/{clip.pk}/decisions/",
        {"verdict": "changes", "scope": "clip", "note": "The ending is abrupt"},
    )
    client.force_login(user)
    html = client.post(
        f"/clips/{clip.pk}/decisions/",
        {"verdict": "approved", "scope": "clip"},
        headers={"HX-Request": "true"},
    ).content.decode()
    assert "Changes requested · dana" in html and "Approved · casey" in html
    assert "Approved · dana" not in html
    assert Decision.objects.count() == 3


def test_a_decision_needs_a_verdict(client, user, clip):
    client.force_login(user)
    html = client.post(
        f"/clips/{clip.pk}/decisions/",
        {"verdict": "maybe", "scope": "clip"},
        headers={"HX-Request": "true"},
    ).content.decode()
    assert "Select a valid choice" in html
    assert not Decision.objects.exists()


def test_chain_comments_and_decisions_belong_to_the_chain_root(
    client, user, project, account, clip
):
    take = ready_clip(project, user, account, parent=clip, kind=ClipKind.EXTEND, seconds=15)
    Clip.objects.filter(pk=take.pk).update(new_from_seconds=8)
    client.force_login(user)
    response = client.post(
        f"/clips/{take.pk}/comments/",
        {"body": "The cut at 0:08 jumps", "timecode": "8.1", "scope": "chain"},
    )
    assert response["Location"] == f"/clips/{clip.pk}/chain/#review-chain"
    comment = Comment.objects.get()
    assert (comment.clip, comment.scope) == (clip, CommentScope.CHAIN)
    # A chain timecode can run past any one clip: the limit is the main line's 15 s.
    over = client.post(
        f"/clips/{clip.pk}/comments/",
        {"body": "Past the end", "timecode": "15.5", "scope": "chain"},
        headers={"HX-Request": "true"},
    ).content.decode()
    assert "the video is 15.0 s long" in over
    client.post(f"/clips/{take.pk}/decisions/", {"verdict": "approved", "scope": "chain"})
    assert Decision.objects.get().clip == clip
    chain_page = client.get(f"/clips/{clip.pk}/chain/").content.decode()
    assert "The cut at 0:08 jumps" in chain_page and "Approved · casey" in chain_page
    clip_page = client.get(f"/clips/{clip.pk}/").content.decode()
    assert "The cut at 0:08 jumps" not in clip_page  # the clip's own review is separate


def test_the_project_shows_an_activity_feed_of_generations_extensions_comments_and_decisions(
    client, user, dana, project, clip
):
    chains.extend_clip(source=clip, user=user, prompt="The kite climbs")
    client.force_login(dana)
    client.post(f"/clips/{clip.pk}/comments/", {"body": "Lovely light", "scope": "clip"})
    client.post(f"/clips/{clip.pk}/decisions/", {"verdict": "approved", "scope": "clip"})
    page = client.get(f"/projects/{project.pk}/").content.decode()
    feed = page[page.index('class="feed"') :]
    lines = [
        f'<strong>dana</strong> <a href="/clips/{clip.pk}/">approved clip {clip.pk}',
        f'<strong>dana</strong> <a href="/clips/{clip.pk}/">commented on clip {clip.pk}',
        f'<strong>casey</strong> <a href="/clips/{clip.pk + 1}/">extended clip {clip.pk}',
        f'<strong>casey</strong> <a href="/clips/{clip.pk}/">generated clip {clip.pk}',
    ]
    positions = [feed.index(line) for line in lines]
    assert positions == sorted(positions)
    assert "“Lovely light”" in feed
    # The chain that extension started is listed with a link to its timeline.
    assert f'href="/clips/{clip.pk}/chain/"' in page
