"""Cheap pages that never show stale data: the light status poll and the cached page parts.

The project page draws its clip grid, filters, chains and activity from the fragment cache
when what they show has not changed (videos/fragments.py); each test fills the cache first,
changes something the page shows, and checks the next page shows it.
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests import test_page_costs
from tests.conftest import grant_spending
from tests.test_page_costs import chain, clips
from videos import fragments, project_reads, review, trim
from videos.models import ClipStatus, Membership, ProviderAccount, Role

pytestmark = pytest.mark.django_db

# The page-cost tests' fixtures: an apimart account and a clip the provider is making.
account = test_page_costs.account
running = test_page_costs.running


def poll(client, clip, seen: str | None):
    query = {"seen": seen} if seen else {}
    response = client.get(clip.get_absolute_url(), query, headers={"HX-Request": "true"})
    assert response.status_code == 200
    return response.content.decode()


# --- the light poll -----------------------------------------------------------------------------


def test_a_poll_for_the_status_the_page_shows_redraws_only_the_status_card(client, user, running):
    client.force_login(user)
    page = client.get(running.get_absolute_url()).content.decode()
    # The page polls saying which status it drew.
    assert f'hx-get="/clips/{running.pk}/?seen=running"' in page
    running.record_progress(progress=55, phase="Generating")
    with CaptureQueriesContext(connection) as light_queries:
        light = poll(client, running, "running")
    assert 'value="55"' in light and 'id="clip-status"' in light
    assert "hx-swap-oob" not in light and 'id="clip-details"' not in light
    # A status the page did not draw brings the details and the chain's actions with it.
    with CaptureQueriesContext(connection) as full_queries:
        full = poll(client, running, "queued")
    assert 'id="clip-details" class="card details" hx-swap-oob="true"' in full
    assert 'id="chain-state" hx-swap-oob="true"' in full
    assert len(light_queries) < len(full_queries) - 4, (len(light_queries), len(full_queries))


def test_a_clip_turning_ready_swaps_its_details_although_the_poll_said_running(
    client, user, running
):
    client.force_login(user)
    running.status = ClipStatus.READY
    running.file_key = "clips/kite.mp4"
    running.duration_seconds = 8.0
    running.save(update_fields=["status", "file_key", "duration_seconds"])
    ready = poll(client, running, "running")
    assert "hx-swap-oob" in ready and "<video" in ready
    assert f'hx-get="/clips/{running.pk}/?seen' not in ready  # a final clip stops polling


def test_a_poll_with_a_status_the_studio_does_not_know_gets_the_whole_answer(client, user, running):
    client.force_login(user)
    assert 'id="clip-details"' in poll(client, running, "<script>")


# --- cached parts of the project page ----------------------------------------------------------


def project_page(client, project, **query) -> str:
    response = client.get(project.get_absolute_url(), query)
    assert response.status_code == 200
    return response.content.decode()


def test_a_cached_clip_grid_shows_a_status_change(client, user, project, running):
    client.force_login(user)
    assert "status-running" in project_page(client, project)
    running.mark_failed(code="provider", message="The provider gave up.")
    again = project_page(client, project)
    assert "status-failed" in again and "status-running" not in again


def test_the_second_view_of_an_unchanged_project_page_draws_from_the_cache_in_few_queries(
    client, user, project, account
):
    client.force_login(user)
    clips(project, user, account, 30)
    chain(project, user, account, 6)
    url = project.get_absolute_url()
    with CaptureQueriesContext(connection) as first:
        cold = client.get(url).content.decode()
    with CaptureQueriesContext(connection) as second:
        warm = client.get(url).content.decode()
    assert len(second) < len(first), (len(first), len(second))
    # The same page: only the CSRF tokens (masked afresh on every render) differ.
    assert without_csrf_tokens(cold) == without_csrf_tokens(warm)
    with CaptureQueriesContext(connection) as grid_poll:
        client.get(url, headers={"HX-Request": "true"})
    # The session (unless a cache holds it), the user, the project with the viewer's role,
    # then the versions: eight reads, sent as one statement where each is a round trip.
    reads = 1 if connection.vendor == "postgresql" else 8
    assert len(second) <= 3 + reads, [query["sql"][:80] for query in second]
    assert len(grid_poll) <= 3 + (1 if connection.vendor == "postgresql" else 2)
    if connection.vendor == "postgresql":
        from psycopg._queries import MAX_CACHED_STATEMENT_LENGTH

        # Longer, and psycopg would parse the statement again on every run.
        assert len(project_reads.PAGE_TOGETHER.compiled[1]) <= MAX_CACHED_STATEMENT_LENGTH


@pytest.mark.parametrize(
    "query",
    [{"q": "shot"}, {"utm_source": "mail"}, {"page": "01"}, {"chains": "99"}, {"status": "nope"}],
)
def test_searches_and_query_strings_the_studio_never_makes_are_never_kept(
    client, user, project, account, query
):
    # Their keys have no bound: anyone could fill the cache (and Redis, which holds the queue).
    client.force_login(user)
    clips(project, user, account, 5)
    url = project.get_absolute_url()
    counts = []
    for _ in range(2):
        with CaptureQueriesContext(connection) as context:
            assert client.get(url, query).status_code == 200
        counts.append(len(context))
    assert counts[0] == counts[1], counts


def without_csrf_tokens(html: str) -> str:
    html = re.sub(r'"X-CSRFToken": "\w+"', "", html)
    return re.sub(r'name="csrfmiddlewaretoken" value="\w+"', "", html)


def test_a_reviewer_never_gets_the_creators_cached_grid(client, user, project, account):
    clips(project, user, account, 3)
    client.force_login(user)
    assert "Use as template" in project_page(client, project)
    reviewer = grant_spending(
        get_user_model().objects.create_user("rey", "rey@example.com", "pw-rey-12345")
    )
    Membership.objects.create(project=project, user=reviewer, role=Role.REVIEWER)
    client.force_login(reviewer)
    assert "Use as template" not in project_page(client, project)


def test_a_creator_given_the_right_to_spend_gets_a_grid_that_offers_it(
    client, user, project, account
):
    clips(project, user, account, 2)
    drew = get_user_model().objects.create_user("drew", "drew@example.com", "pw-drew-12345")
    Membership.objects.create(project=project, user=drew, role=Role.CREATOR)
    client.force_login(drew)
    assert "Use as template" not in project_page(client, project)
    grant_spending(drew)
    assert "Use as template" in project_page(client, project)


def test_a_cached_activity_feed_shows_a_new_comment(client, user, project, account):
    made = clips(project, user, account, 2)
    client.force_login(user)
    assert "Looks great at the end" not in project_page(client, project)
    review.add_comment(clip=made[0], user=user, body="Looks great at the end")
    assert "Looks great at the end" in project_page(client, project)


def test_a_cached_chain_row_shows_a_trim(client, user, project, account):
    parts = chain(project, user, account, 3)
    client.force_login(user)
    assert "3 segments · 0:24.0" in project_page(client, project)
    trim.set_trim(clip=parts[1], user=user, cut_in=None, cut_out=5.0)
    assert "3 segments · 0:21.0" in project_page(client, project)


def test_cached_filters_offer_a_new_creator(client, user, project, account):
    client.force_login(user)
    assert ">dana<" not in project_page(client, project)
    dana = get_user_model().objects.create_user("dana", "dana@example.com", "pw-dana-12345")
    Membership.objects.create(project=project, user=dana, role=Role.CREATOR)
    assert ">dana<" in project_page(client, project)


def test_a_renamed_account_shows_on_cached_cards(client, user, project, account):
    clips(project, user, account, 2)
    client.force_login(user)
    assert "apimart main ·" in project_page(client, project)
    ProviderAccount.objects.filter(pk=account.pk).update(label="apimart team")
    page = project_page(client, project)
    assert "apimart team ·" in page and "apimart main ·" not in page


def test_a_cached_grid_shows_a_new_clip_and_loses_a_deleted_one(client, user, project, account):
    made = clips(project, user, account, 30, prompt="An older shot")
    client.force_login(user)
    page = project_page(client, project)
    assert "30 clips" in page and "Page 1 of 2" in page
    newest = clips(project, user, account, 1, prompt="The newest shot of all")[0]
    page = project_page(client, project)
    assert "The newest shot of all" in page and "31 clips" in page
    newest.delete()
    made[-1].delete()
    page = project_page(client, project)
    assert "The newest shot of all" not in page and "29 clips" in page


def test_a_cached_page_shows_a_new_chain_and_its_next_part(client, user, project, account):
    client.force_login(user)
    assert "segments" not in project_page(client, project)
    parts = chain(project, user, account, 2)
    assert "2 segments · 0:16.0" in project_page(client, project)
    chain_more = chain(project, user, account, 1)  # a lone clip: not a chain
    assert chain_more and project_page(client, project).count("segments ·") == 1
    chain(project, user, account, 1, after=parts)
    assert "3 segments · 0:24.0" in project_page(client, project)


def test_changed_code_is_a_new_cache_key(settings, tmp_path):
    (tmp_path / "templates").mkdir()
    page = tmp_path / "templates" / "page.html"
    page.write_text("<p>one</p>")
    settings.BASE_DIR = tmp_path
    settings.DEBUG = True  # read afresh on every use, as under runserver
    before = fragments.fragment_key("template.cache.grid.abc", "p", 1)
    page.write_text("<p>two, longer</p>")
    after = fragments.fragment_key("template.cache.grid.abc", "p", 1)
    assert before != after
    assert before.split(":")[-1] == after.split(":")[-1] == "template.cache.grid.abc"


def test_the_page_cache_is_keyed_by_the_code_and_the_database(
    client, user, project, account, monkeypatch
):
    clips(project, user, account, 3)
    client.force_login(user)
    url = project.get_absolute_url()
    client.get(url)

    def queries() -> int:
        with CaptureQueriesContext(connection) as context:
            client.get(url)
        return len(context)

    warm = queries()
    # A deploy with other templates or code: nothing drawn by the old code is served.
    monkeypatch.setattr(fragments, "code_fingerprint", lambda: "a-new-release")
    assert queries() > warm
    assert queries() == warm
    # Another database (another studio on the same Redis) has parts of its own.
    monkeypatch.setattr(fragments, "_database", lambda: "another-studio")
    assert queries() > warm


# --- the whole project page, kept ----------------------------------------------------------------


def csrf_tokens(html: str) -> set[str]:
    return set(re.findall(r'"X-CSRFToken": "(\w+)"', html)) | set(
        re.findall(r'name="csrfmiddlewaretoken" value="(\w+)"', html)
    )


def test_a_kept_page_is_sent_with_a_csrf_token_of_its_own_that_works(user, project, account):
    from django.test import Client

    clips(project, user, account, 3)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    url = project.get_absolute_url()
    drawn = browser.get(url)
    kept = browser.get(url)
    assert drawn.templates and not kept.templates  # the second answer was never drawn
    # Each answer has one token, in the htmx headers and the log-out form, masked afresh.
    first, second = csrf_tokens(drawn.content.decode()), csrf_tokens(kept.content.decode())
    assert len(first) == len(second) == 1 and first != second
    assert fragments.CSRF_STAND_IN not in kept.content.decode()
    # The kept copy holds no token, and the one sent with it is accepted.
    logged_out = browser.post("/logout/", {"csrfmiddlewaretoken": second.pop()})
    assert logged_out.status_code == 302
    assert browser.get(url).status_code == 302  # to the login page


def test_a_message_is_shown_on_a_kept_page_once(client, user, project, account):
    made = clips(project, user, account, 1, status=ClipStatus.RUNNING)[0]
    client.force_login(user)
    project_page(client, project)
    project_page(client, project)
    # Exporting a clip that is no chain fails with a message, shown by the next page seen.
    client.post(f"/clips/{made.pk}/export/")
    with_message = project_page(client, project)
    assert 'class="messages"' in with_message
    assert 'class="messages"' not in project_page(client, project)


def test_each_viewer_gets_a_kept_page_of_their_own(client, user, project, account):
    clips(project, user, account, 2)
    boss = get_user_model().objects.create_user("boss", "boss@example.com", "pw-boss-12345")
    boss.is_staff = True
    boss.save()
    Membership.objects.create(project=project, user=boss, role=Role.CREATOR)
    grant_spending(boss)
    for viewer in (user, boss, user, boss):
        client.force_login(viewer)
        page = project_page(client, project)
        assert f'<span class="who">{viewer.username}</span>' in page
        assert ('href="/audit/"' in page) is viewer.is_staff


def test_a_kept_page_shows_a_renamed_project(client, user, project, account):
    clips(project, user, account, 2)
    client.force_login(user)
    assert "<h1>Launch film</h1>" in project_page(client, project)
    project.name = "Launch film, final cut"
    project.save()
    assert "<h1>Launch film, final cut</h1>" in project_page(client, project)


def test_new_static_files_are_a_new_cache_key(settings, monkeypatch):
    from types import SimpleNamespace

    settings.DEBUG = True  # the fingerprint read afresh on every use
    monkeypatch.setattr(fragments, "staticfiles_storage", SimpleNamespace(manifest_hash="one"))
    before = fragments.fragment_key("page:x", "p", 1)
    # A release whose stylesheet changed links it by another hashed name.
    monkeypatch.setattr(fragments, "staticfiles_storage", SimpleNamespace(manifest_hash="two"))
    assert fragments.fragment_key("page:x", "p", 1) != before
