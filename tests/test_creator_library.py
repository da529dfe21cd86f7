"""The project library: posters newest first, filters, search, pages, downloads, templates."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from videos.models import Clip, ClipStatus, Membership, ProviderAccount, Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def apimart(db):
    return ProviderAccount.objects.create(
        all_projects=True,
        kind="apimart",
        label="apimart main",
        base_url="http://127.0.0.1:9/x",
        credential="sk-1",
    )


@pytest.fixture
def kling(db):
    return ProviderAccount.objects.create(
        all_projects=True,
        kind="kling",
        label="Kling studio",
        base_url="http://127.0.0.1:9/y",
        credential="ak-1",
    )


@pytest.fixture
def robin(project):
    robin = get_user_model().objects.create_user("robin", "robin@example.com", "pw-robin-123")
    Membership.objects.create(project=project, user=robin, role=Role.CREATOR)
    return robin


def make_clips(project, user, account, count: int, **fields) -> list[Clip]:
    now = timezone.now()
    return Clip.objects.bulk_create(
        Clip(
            project=project,
            created_by=user,
            provider_account=account,
            model="veo3.1-fast-official",
            prompt=fields.get("prompt", f"Shot number {index}"),
            params={"duration": 8, "aspect_ratio": "16:9", "resolution": "720p"},
            status=fields.get("status", ClipStatus.READY),
            file_key=fields.get("file_key", f"clips/{index}.mp4"),
            poster_key=fields.get("poster_key", f"posters/{index}.jpg"),
            duration_seconds=8.0,
            created_at=now - timedelta(minutes=count - index),
        )
        for index in range(count)
    )


def card_ids(html: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'<a class="thumb" href="/clips/(\d+)/"', html)]


def test_the_library_lists_posters_newest_first_with_download_and_template(
    client, user, project, apimart
):
    old, new = make_clips(project, user, apimart, 2)
    client.force_login(user)
    html = client.get(f"/projects/{project.pk}/").content.decode()
    assert card_ids(html) == [new.pk, old.pk]
    assert f'<img src="/clips/{new.pk}/poster.jpg"' in html
    assert f'href="/clips/{new.pk}/download/">Download</a>' in html
    assert f'href="/clips/{new.pk}/template/">Use as template</a>' in html
    # The hover preview is the clip's own video, played by the page's script.
    assert f'data-preview="/clips/{new.pk}/video.mp4"' in html


def test_reviewers_see_no_use_as_template(client, project, apimart, user, robin):
    make_clips(project, user, apimart, 1)
    Membership.objects.filter(user=robin).update(role=Role.REVIEWER)
    client.force_login(robin)
    html = client.get(f"/projects/{project.pk}/").content.decode()
    assert "Use as template" not in html and "Download" in html


def test_filters_by_status_provider_and_creator_and_search_by_prompt(
    client, user, robin, project, apimart, kling
):
    (lighthouse,) = make_clips(project, user, apimart, 1, prompt="A lighthouse at dusk")
    (failed,) = make_clips(project, robin, kling, 1, prompt="A fox", status=ClipStatus.FAILED)
    (forest,) = make_clips(project, robin, apimart, 1, prompt="A forest in FOG")
    client.force_login(user)
    url = f"/projects/{project.pk}/"

    def shown(**query) -> set[int]:
        return set(card_ids(client.get(url, query).content.decode()))

    assert shown() == {lighthouse.pk, failed.pk, forest.pk}
    assert shown(status="failed") == {failed.pk}
    assert shown(provider=kling.pk) == {failed.pk}
    assert shown(creator=robin.pk) == {failed.pk, forest.pk}
    assert shown(q="fog") == {forest.pk}
    assert shown(creator=robin.pk, provider=apimart.pk) == {forest.pk}
    html = client.get(url, {"q": "submarine"}).content.decode()
    assert "No clips match these filters." in html


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ({"status": "exploded"}, "status", "No such status; showing every status."),
        ({"provider": "not-a-number"}, "provider", "No such provider in this project"),
        ({"creator": "999999"}, "creator", "No such creator in this project"),
        ({"q": "x" * 300}, "q", "at most 200 characters"),
    ],
)
def test_a_bad_filter_value_gets_a_message_not_an_error_page(
    client, user, project, apimart, query, field, message
):
    make_clips(project, user, apimart, 2)
    client.force_login(user)
    response = client.get(f"/projects/{project.pk}/", query)
    html = response.content.decode()
    assert response.status_code == 200
    assert f'id="id_{field}-error"' in html and message in html
    # The other filters still apply; the bad one is ignored, so the clips still show.
    assert len(card_ids(html)) == 2


def test_24_clips_a_page_with_links_that_keep_the_filters(client, user, project, apimart):
    clips = make_clips(project, user, apimart, 30, prompt="Rain")
    client.force_login(user)
    url = f"/projects/{project.pk}/"
    first = client.get(url, {"q": "rain"}).content.decode()
    assert card_ids(first) == [c.pk for c in reversed(clips)][:24]
    assert "Page 1 of 2 · 30 clips" in first
    assert 'href="?q=rain&amp;page=2" rel="next">Older →</a>' in first
    second = client.get(url, {"q": "rain", "page": "2"}).content.decode()
    assert card_ids(second) == [c.pk for c in reversed(clips)][24:]


@pytest.mark.parametrize("page", ["0", "-3", "two", "99"])
def test_a_page_that_does_not_exist_is_explained(client, user, project, apimart, page):
    make_clips(project, user, apimart, 3)
    client.force_login(user)
    response = client.get(f"/projects/{project.pk}/", {"page": page})
    assert response.status_code == 200
    html = response.content.decode()
    assert 'role="alert"' in html
    assert len(card_ids(html)) == 3


def test_the_grid_keeps_polling_with_its_filters_while_a_clip_is_in_flight(
    client, user, project, apimart
):
    make_clips(project, user, apimart, 1, status=ClipStatus.RUNNING, file_key="", poster_key="")
    client.force_login(user)
    html = client.get(
        f"/projects/{project.pk}/", {"status": "running"}, headers={"HX-Request": "true"}
    ).content.decode()
    assert html.lstrip().startswith('<section id="clip-grid"')
    assert f'hx-get="/projects/{project.pk}/?status=running"' in html
    assert "every 3s [document.visibilityState === 'visible']" in html


def test_a_project_with_500_clips_renders_in_as_many_queries_as_one_with_5(
    client, user, robin, project, apimart, kling, no_fragment_cache
):
    client.force_login(user)
    make_clips(project, user, apimart, 3)
    make_clips(project, robin, kling, 2, status=ClipStatus.RUNNING)

    def queries() -> int:
        with CaptureQueriesContext(connection) as context:
            response = client.get(f"/projects/{project.pk}/")
        assert response.status_code == 200
        return len(context.captured_queries)

    with_5 = queries()
    make_clips(project, user, apimart, 300)
    make_clips(project, robin, kling, 195, status=ClipStatus.FAILED)
    assert Clip.objects.filter(project=project).count() == 500
    with_500 = queries()
    assert with_500 == with_5, (with_5, with_500)
    # Drawn in full: the page's own reads plus the versions its cached parts are keyed by.
    assert with_5 <= 16
