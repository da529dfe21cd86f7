"""What pages cost: queries that do not grow with the work, polls answered 304, word search."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from videos import search
from videos.models import Clip, ClipKind, ClipStatus, Membership, ProviderAccount, Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def account(db):
    return ProviderAccount.objects.create(
        all_projects=True,
        kind="apimart",
        label="apimart main",
        base_url="http://127.0.0.1:9/x",
        credential="sk-page-costs-0001",
    )


def clips(project, user, account, count: int, **fields) -> list[Clip]:
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
            file_key=f"clips/{index}.mp4",
            poster_key=f"posters/{index}.jpg",
            duration_seconds=8.0,
            created_at=now - timedelta(minutes=count - index),
        )
        for index in range(count)
    )


def chain(project, user, account, depth: int, *, after: list[Clip] = ()) -> list[Clip]:
    """A main line of ``depth`` finished clips, each continuing the one before (the main
    line ``after``, when given, which the list returned begins with)."""
    made: list[Clip] = list(after)
    for step in range(len(made), len(made) + depth):
        parent = made[-1] if made else None
        made.append(
            Clip.objects.create(
                project=project,
                created_by=user,
                provider_account=account,
                model="veo3.1-fast-official",
                prompt=f"Part {step + 1} of the walk",
                params={"duration": 8, "aspect_ratio": "16:9", "resolution": "720p"},
                status=ClipStatus.READY,
                file_key=f"chain/{step}.mp4",
                duration_seconds=8.0,
                parent=parent,
                root=made[0] if made else None,
                kind=ClipKind.CONTINUE if parent else ClipKind.GENERATE,
                is_main_line=parent is not None,
                provider_task_id=f"task-{uuid.uuid4().hex}",
            )
        )
    return made


def count_queries(client, url: str, **headers) -> tuple[int, object]:
    with CaptureQueriesContext(connection) as context:
        response = client.get(url, headers=headers)
    assert response.status_code in (200, 304), response.status_code
    return len(context.captured_queries), response


# --- queries that do not grow ------------------------------------------------------------------


def test_the_last_clip_of_a_50_deep_chain_costs_the_queries_of_a_5_deep_one(
    client, user, project, account
):
    client.force_login(user)
    short = chain(project, user, account, 5)
    deep = chain(project, user, account, 50)
    short_queries, short_page = count_queries(client, short[-1].get_absolute_url())
    deep_queries, deep_page = count_queries(client, deep[-1].get_absolute_url())
    assert deep_queries == short_queries, (short_queries, deep_queries)
    # The panel really shows the whole main line, and where this clip is on it.
    assert "Segment 50 of 50 on the main line · 400.0 s in all" in deep_page.content.decode()
    assert "Segment 5 of 5 on the main line" in short_page.content.decode()


def test_a_deep_chains_page_costs_the_queries_of_a_short_one(client, user, project, account):
    client.force_login(user)
    short = chain(project, user, account, 5)
    deep = chain(project, user, account, 50)
    short_queries, _ = count_queries(client, f"/clips/{short[0].pk}/chain/")
    deep_queries, _ = count_queries(client, f"/clips/{deep[0].pk}/chain/")
    assert deep_queries == short_queries, (short_queries, deep_queries)


def test_the_root_of_a_chain_is_one_query_away_from_its_last_clip(project, user, account):
    deep = chain(project, user, account, 30)
    tip = Clip.objects.get(pk=deep[-1].pk)
    with CaptureQueriesContext(connection) as context:
        root = tip.chain_root()
    assert root.pk == deep[0].pk
    assert len(context.captured_queries) == 1


def test_the_project_page_costs_the_same_with_500_clips_and_12_chains_as_with_5_and_1(
    client, user, project, account, no_fragment_cache
):
    client.force_login(user)
    clips(project, user, account, 5)
    chain(project, user, account, 3)
    url = f"/projects/{project.pk}/"
    few, _ = count_queries(client, url)
    clips(project, user, account, 450)
    for _ in range(11):
        chain(project, user, account, 4)
    many, page = count_queries(client, url)
    assert Clip.objects.filter(project=project).count() == 5 + 3 + 450 + 44
    assert many == few, (few, many)
    # Drawn in full (tests/test_page_cache.py covers the cached page).
    assert few <= 21
    assert "Page 1 of 2 · 12 chains" in page.content.decode()


def test_the_project_page_lists_chains_ten_a_page(client, user, project, account):
    client.force_login(user)
    roots = [chain(project, user, account, 2)[0] for _ in range(12)]
    url = f"/projects/{project.pk}/"
    first = client.get(url).content.decode()
    second = client.get(url, {"chains": 2, "status": "ready"}).content.decode()
    newest_first = list(reversed(roots))
    assert all(f'href="/clips/{root.pk}/chain/"' in first for root in newest_first[:10])
    assert not any(f'href="/clips/{root.pk}/chain/"' in first for root in newest_first[10:])
    assert all(f'href="/clips/{root.pk}/chain/"' in second for root in newest_first[10:])
    assert 'href="?chains=2#activity" rel="next">Older →</a>' in first
    # The library's filters stay when the chains page changes.
    assert 'href="?status=ready&amp;chains=1#activity" rel="prev">← Newer</a>' in second
    bad = client.get(url, {"chains": "zero"})
    assert bad.status_code == 200


# --- conditional answers to polls ---------------------------------------------------------------


@pytest.fixture
def running(project, user, account):
    return Clip.objects.create(
        project=project,
        created_by=user,
        provider_account=account,
        model="veo3.1-fast-official",
        prompt="A kite over the dunes",
        params={"duration": 8, "aspect_ratio": "16:9", "resolution": "720p"},
        status=ClipStatus.RUNNING,
        progress=30,
        phase="Generating",
        provider_task_id="task-running-1",
        submitted_at=timezone.now() - timedelta(seconds=20),
    )


def test_a_poll_of_an_unchanged_clip_is_answered_304_without_rendering(client, user, running):
    client.force_login(user)
    url = running.get_absolute_url()
    first = client.get(url, headers={"HX-Request": "true"})
    assert first.status_code == 200 and 'id="clip-progress"' in first.content.decode()
    etag = first["ETag"]
    assert etag.startswith('W/"')
    assert "no-cache" in first["Cache-Control"] and "private" in first["Cache-Control"]
    assert "HX-Request" in first["Vary"]
    # The tracker's bookkeeping changes nothing on the page.
    Clip.objects.filter(pk=running.pk).update(
        last_polled_at=timezone.now(), next_poll_at=timezone.now()
    )
    queries, again = count_queries(client, url, HX_Request="true", If_None_Match=etag)
    assert again.status_code == 304 and again.content == b""
    assert again["ETag"] == etag
    # The session (unless the cache has it), the user, and the clip's row read with the
    # viewer's role and rights.
    assert queries <= 3
    # New progress is a new answer.
    running.record_progress(progress=55, phase="Generating")
    moved = client.get(url, headers={"HX-Request": "true", "If-None-Match": etag})
    assert moved.status_code == 200 and 'value="55"' in moved.content.decode()
    assert moved["ETag"] != etag


def test_a_poll_after_the_spending_right_is_taken_away_is_a_new_answer(client, user, running):
    client.force_login(user)
    url = running.get_absolute_url()
    etag = client.get(url, headers={"HX-Request": "true"})["ETag"]
    user.user_permissions.clear()
    again = client.get(url, headers={"HX-Request": "true", "If-None-Match": etag})
    assert again.status_code == 200 and again["ETag"] != etag


def test_the_whole_clip_page_is_always_rendered(client, user, running):
    client.force_login(user)
    page = client.get(running.get_absolute_url())
    assert page.status_code == 200 and not page.has_header("ETag")


def test_another_viewer_never_gets_a_304_for_someone_elses_copy(client, user, project, running):
    dana = get_user_model().objects.create_user("dana", "dana@example.com", "pw-dana-123")
    Membership.objects.create(project=project, user=dana, role=Role.REVIEWER)
    client.force_login(user)
    etag = client.get(running.get_absolute_url(), headers={"HX-Request": "true"})["ETag"]
    client.force_login(dana)
    theirs = client.get(
        running.get_absolute_url(), headers={"HX-Request": "true", "If-None-Match": etag}
    )
    assert theirs.status_code == 200 and theirs["ETag"] != etag


def test_a_stranger_polling_a_clip_gets_a_404_not_a_304(client, running):
    stranger = get_user_model().objects.create_user("eve", "eve@example.com", "pw-eve-12345")
    client.force_login(stranger)
    response = client.get(
        running.get_absolute_url(), headers={"HX-Request": "true", "If-None-Match": "*"}
    )
    assert response.status_code == 404


def test_a_poll_of_an_unchanged_clip_grid_is_answered_304(client, user, project, account, running):
    client.force_login(user)
    clips(project, user, account, 30)
    url = f"/projects/{project.pk}/?status=running"
    first = client.get(url, headers={"HX-Request": "true"})
    assert first.status_code == 200 and 'id="clip-grid"' in first.content.decode()
    etag = first["ETag"]
    unchanged = client.get(url, headers={"HX-Request": "true", "If-None-Match": etag})
    assert unchanged.status_code == 304
    running.record_progress(progress=80, phase="Generating")
    moved = client.get(url, headers={"HX-Request": "true", "If-None-Match": etag})
    assert moved.status_code == 200 and 'value="80"' in moved.content.decode()


# --- search by words ---------------------------------------------------------------------------


def found(project, text: str) -> set[str]:
    return set(search.matching(project.clips.all(), text).values_list("prompt", flat=True))


def test_search_finds_prompts_by_words_in_any_order_and_form(project, user, account):
    clips(project, user, account, 1, prompt="A golden retriever runs on the beach at dawn")
    clips(project, user, account, 1, prompt="Neon city streets in the rain")
    clips(project, user, account, 1, prompt="Rainy harbour, fishing boats")
    dog = {"A golden retriever runs on the beach at dawn"}
    assert found(project, "beach retriever") == dog
    assert found(project, "golden RETRIEVERS") == dog  # case and plural
    assert found(project, "retr") == dog  # the word being typed
    assert found(project, "beach city") == set()
    assert found(project, "submarine") == set()
    assert found(project, "harbour") == {"Rainy harbour, fishing boats"}


def test_search_follows_prompts_that_change_and_clips_that_go(project, user, account):
    (clip,) = clips(project, user, account, 1, prompt="A lighthouse at dusk")
    clip.prompt = "A windmill at noon"
    clip.save(update_fields=["prompt"])
    assert found(project, "windmill") == {"A windmill at noon"}
    assert found(project, "lighthouse") == set()
    clip.delete()
    assert found(project, "windmill") == set()


def test_search_words_cannot_inject_query_syntax(project, user, account):
    clips(project, user, account, 1, prompt='He said "cut" and NEAR the end: OR not')
    assert found(project, '"cut" OR * NEAR( -') == {'He said "cut" and NEAR the end: OR not'}
    assert found(project, "!!!") == set()


def test_search_uses_the_full_text_index(project, user, account):
    clips(project, user, account, 3, prompt="A fox in the snow")
    # Over all clips: within a project, a tiny table is best read through the project index.
    query = search.matching(Clip.objects.all(), "fox snow")
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL enable_seqscan = off")
            sql, params = query.query.sql_with_params()
            cursor.execute(f"EXPLAIN {sql}", params)
            plan = " ".join(row[0] for row in cursor.fetchall())
            assert "clip_prompt_search" in plan, plan
        else:
            sql, params = query.query.sql_with_params()
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
            plan = " ".join(str(row[-1]) for row in cursor.fetchall())
            assert "VIRTUAL TABLE INDEX" in plan and "videos_clip_fts" in plan, plan


def test_the_library_search_box_finds_by_words(client, user, project, account):
    client.force_login(user)
    (dog,) = clips(project, user, account, 1, prompt="A golden retriever on the beach")
    clips(project, user, account, 1, prompt="A beach hut in the rain")
    html = client.get(f"/projects/{project.pk}/", {"q": "retriever beach"}).content.decode()
    cards = re.findall(r'<a class="thumb" href="/clips/(\d+)/"', html)
    assert cards == [str(dog.pk)]
