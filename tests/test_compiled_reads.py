"""The reads made on every request (session, signed-in user) run SQL made once, and keep
what Django's own reads guarantee: expired sessions, inactive users and changed passwords
all sign the browser out."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests import test_page_costs
from tests.test_page_costs import clips
from videos.auth import USER_BY_ID
from videos.compiled import CompiledQuery
from videos.models import Clip, ClipStatus

pytestmark = pytest.mark.django_db

# The page-cost tests' apimart account.
account = test_page_costs.account


@pytest.fixture(params=["videos.sessions", "django.contrib.sessions.backends.cached_db"])
def signed_in(request, settings, user, project):
    """A browser signed in as ``user``, with each session store the studio uses."""
    settings.SESSION_ENGINE = request.param
    browser = Client()
    browser.force_login(user)
    assert browser.get(f"/projects/{project.pk}/").status_code == 200
    return browser


def test_the_compiled_user_is_the_orm_user_with_the_same_types(user):
    user.last_login = timezone.now()
    user.save()
    compiled = USER_BY_ID.instance(user_id=user.pk)
    loaded = get_user_model().objects.get(pk=user.pk)
    fields = [field.attname for field in get_user_model()._meta.concrete_fields]
    assert [getattr(compiled, name) for name in fields] == [
        getattr(loaded, name) for name in fields
    ]
    assert isinstance(compiled.last_login, type(loaded.last_login))
    assert compiled._state.adding is False
    assert USER_BY_ID.instance(user_id=user.pk + 1000) is None


def test_a_compiled_query_runs_with_new_values_each_time(user, project, account):
    made = clips(project, user, account, 3)
    status = CompiledQuery(
        lambda clip_id: Clip.objects.filter(pk=clip_id).values_list("prompt", "created_at"),
        clip_id=int,
    )
    rows = [status.first(clip_id=clip.pk) for clip in reversed(made)]
    assert [row[0] for row in rows] == ["Shot number 2", "Shot number 1", "Shot number 0"]
    assert rows[0][1] == Clip.objects.get(pk=made[2].pk).created_at
    with CaptureQueriesContext(connection) as queries:
        assert status.first(clip_id=made[0].pk, converted=False)[0] == "Shot number 0"
    assert len(queries) == 1


def test_unconverted_rows_give_times_as_the_databases_text_and_converted_ones_as_datetimes(
    user, project, account
):
    # Version reads compare times, never show them; PostgreSQL's times would otherwise go
    # through Django's Python loader (about 14 µs a value).
    made = clips(project, user, account, 2)
    times = CompiledQuery(
        lambda project_id: (
            Clip.objects.filter(project=project_id).order_by("pk").values_list("pk", "created_at")
        ),
        project_id=int,
    )
    raw = times.rows(project_id=project.pk, converted=False)
    assert [pk for pk, _ in raw] == [clip.pk for clip in made]
    if connection.vendor == "postgresql":
        assert all(isinstance(at, str) for _, at in raw), raw
        assert raw[0][1].startswith(made[0].created_at.strftime("%Y-%m-%d %H:%M:%S"))
    else:  # SQLite's driver makes the naive datetime it stores (Django's converter adds UTC)
        assert [at for _, at in raw] == [clip.created_at.replace(tzinfo=None) for clip in made]
    # The same query converted, afterwards on the same connection: datetimes, in UTC.
    converted = times.rows(project_id=project.pk)
    assert [at for _, at in converted] == [clip.created_at for clip in made]
    assert converted[0][1].utcoffset() == timedelta(0)
    # And the ORM's own reads are untouched.
    assert Clip.objects.get(pk=made[0].pk).created_at == made[0].created_at


def test_version_reads_give_times_as_text_on_both_backends(user, project, account):
    # Compared, never shown: no time is parsed (SQLite: cast; PostgreSQL: the text loader).
    from videos.project_reads import FIRST_GRID_PAGE, GRID_COLUMNS

    made = clips(project, user, account, 2)
    rows = FIRST_GRID_PAGE.rows(project_id=project.pk, converted=False)
    at = GRID_COLUMNS.index("created_at")
    assert [row[0] for row in rows] == [clip.pk for clip in reversed(made)]
    assert all(isinstance(row[at], str) for row in rows), rows
    assert rows[0][at].startswith(made[1].created_at.strftime("%Y-%m-%d %H:%M:%S"))


def test_a_literal_percent_sign_in_the_sql_is_no_parameter(user, project, account):
    # The SQL is run with named parameters: "%%s" (a "%", then "s") must stay as it is.
    sunset = clips(project, user, account, 1, prompt="A sunset")[0]
    beach = clips(project, user, account, 1, prompt="A beach")[0]
    sunny = CompiledQuery(
        lambda clip_id: (
            Clip.objects.filter(pk=clip_id)
            .extra(where=['"videos_clip"."prompt" LIKE \'%%sun%%\''])
            .values_list("prompt")
        ),
        clip_id=int,
    )
    assert sunny.first(clip_id=sunset.pk) == ("A sunset",)
    assert sunny.first(clip_id=beach.pk) is None


def test_a_parameter_the_sql_changes_is_refused_when_the_query_is_made(project):
    # icontains wraps the value in %...%: it could never be swapped in later.
    search = CompiledQuery(lambda words: Clip.objects.filter(prompt__icontains=words), words=str)
    with pytest.raises(ImproperlyConfigured, match="words did not reach the SQL"):
        search.first(words="sunset")


def test_each_request_reads_the_session_and_the_user_in_one_query_each(settings, user, project):
    settings.SESSION_ENGINE = "videos.sessions"
    browser = Client()
    browser.force_login(user)
    # The session, the user, then the view's own reads; the compiled SQL is Django's.
    with CaptureQueriesContext(connection) as queries:
        browser.get("/projects/")
    assert 'FROM "django_session"' in queries[0]["sql"].replace("`", '"')
    assert 'FROM "auth_user"' in queries[1]["sql"].replace("`", '"')


def test_an_expired_session_signs_the_browser_out(signed_in, project, settings):
    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))
    if settings.SESSION_ENGINE.endswith("cached_db"):
        from django.core.cache import cache

        cache.clear()
    answer = signed_in.get(f"/projects/{project.pk}/")
    assert answer.status_code == 302
    assert answer["Location"].startswith("/login/")


def test_a_deactivated_user_is_signed_out(signed_in, user, project):
    user.is_active = False
    user.save()
    answer = signed_in.get(f"/projects/{project.pk}/")
    assert answer.status_code == 302 and answer["Location"].startswith("/login/")


def test_a_changed_password_signs_other_browsers_out(signed_in, user, project):
    user.set_password("a-new-password-for-dana-99")
    user.save()
    answer = signed_in.get(f"/projects/{project.pk}/")
    assert answer.status_code == 302 and answer["Location"].startswith("/login/")


def test_signing_in_with_the_form_uses_the_studio_backend(settings, user, project, account):
    settings.SESSION_ENGINE = "videos.sessions"
    user.set_password("pw-for-the-login-form-1")
    user.save()
    browser = Client()
    answer = browser.post(
        "/login/", {"username": user.username, "password": "pw-for-the-login-form-1"}
    )
    assert answer.status_code == 302
    assert browser.session["_auth_user_backend"] == "videos.auth.StudioModelBackend"
    assert browser.get(f"/projects/{project.pk}/").status_code == 200
    # A clip poll works through the same reads.
    (clip,) = clips(project, user, account, 1, status=ClipStatus.RUNNING)
    assert browser.get(f"/clips/{clip.pk}/", headers={"HX-Request": "true"}).status_code == 200


def test_a_compiled_instance_carries_its_annotations(user, project, account):
    from videos.project_views import PROJECT_WITH_ROLE, _project_query

    clips(project, user, account, 1, status=ClipStatus.RUNNING)
    compiled = PROJECT_WITH_ROLE.instance(user_id=user.pk, project_id=project.pk)
    loaded = _project_query(user_id=user.pk, project_id=project.pk).get()
    for name in ("pk", "name", "budget", "created_by_id", "created_at"):
        assert getattr(compiled, name) == getattr(loaded, name)
    assert (compiled.viewer_role, compiled.viewer_granted, compiled.has_clips_in_flight) == (
        "creator",
        True,
        True,
    )
    assert (compiled.viewer_role, compiled.viewer_granted, compiled.has_clips_in_flight) == (
        loaded.viewer_role,
        loaded.viewer_granted,
        loaded.has_clips_in_flight,
    )
    # Not a member: nothing, as the page's 404.
    other = get_user_model().objects.create_user("outsider", "o@example.com", "pw-outsider-1")
    assert PROJECT_WITH_ROLE.instance(user_id=other.pk, project_id=project.pk) is None


def test_a_compiled_instance_brings_its_related_rows_and_defers_what_the_queryset_defers(
    user, project, account
):
    from videos.views import CLIP_FOR_VIEWER, _clip_query

    (made,) = clips(project, user, account, 1, prompt="A clip page")
    with CaptureQueriesContext(connection) as queries:
        clip = CLIP_FOR_VIEWER.instance(user_id=user.pk, clip_id=made.pk)
        # The project and the account came with the clip, as select_related brings them.
        assert clip.project.name == project.name
        assert clip.provider_account.label == account.label
    assert len(queries) == 1
    loaded = _clip_query(user_id=user.pk, clip_id=made.pk).get()
    fields = [field.attname for field in Clip._meta.concrete_fields]
    assert [getattr(clip, name) for name in fields] == [getattr(loaded, name) for name in fields]
    assert clip.params == {"duration": 8, "aspect_ratio": "16:9", "resolution": "720p"}
    # The keys were not read with it: only on first use, as Django defers them.
    assert clip.provider_account.get_deferred_fields() == {"credential", "secret_key"}
    assert clip.provider_account.credential == account.credential
    # Saved like any instance.
    clip.prompt = "A clip page, renamed"
    clip.save(update_fields=["prompt"])
    assert Clip.objects.get(pk=made.pk).prompt == "A clip page, renamed"
    other = get_user_model().objects.create_user("outsider", "o@example.com", "pw-outsider-1")
    assert CLIP_FOR_VIEWER.instance(user_id=other.pk, clip_id=made.pk) is None
