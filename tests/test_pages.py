"""Pages: who sees what, forms that explain themselves, HTMX fragments that stop polling."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from videos.models import Clip, ClipStatus, Membership, Project, ProviderAccount, Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def account(db):
    return ProviderAccount.objects.create(
        all_projects=True,
        kind="apimart",
        label="apimart",
        base_url="http://127.0.0.1:9/sandbox/apimart",
        credential="sk-live-0123456789abcdef",
    )


@pytest.fixture
def clip(project, account, user):
    return Clip.objects.create(
        project=project,
        created_by=user,
        provider_account=account,
        model="veo3.1-fast-official",
        prompt="A red kite over green hills",
        params={"duration": 8, "aspect_ratio": "16:9", "resolution": "720p"},
        status=ClipStatus.RUNNING,
        progress=42,
        phase="Generating",
        provider_task_id="task_01ABC",
    )


@pytest.fixture
def stranger(db):
    return get_user_model().objects.create_user("sam", "sam@example.com", "pw-sam-12345")


def test_login_page_asks_for_username_and_password(client):
    html = client.get("/login/").content.decode()
    assert 'name="username"' in html and 'name="password"' in html


def test_anonymous_visitors_are_sent_to_log_in(client, project):
    response = client.get(f"/projects/{project.pk}/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_creating_a_project_makes_its_creator_an_admin(client, user):
    client.force_login(user)
    page = client.get("/projects/").content.decode()
    assert "New project" in page and ">Name</label>" in page
    response = client.post("/projects/", {"name": "Autumn teaser"})
    project = Project.objects.get(name="Autumn teaser")
    assert response["Location"] == f"/projects/{project.pk}/"
    assert project.role_of(user) == Role.ADMIN


def test_an_empty_project_name_is_explained_next_to_the_field(client, user):
    client.force_login(user)
    html = client.post("/projects/", {"name": ""}).content.decode()
    assert 'id="id_name-error"' in html and "This field is required." in html
    assert not Project.objects.exists()


@pytest.mark.parametrize(
    "url",
    [
        "/projects/{project}/",
        "/projects/{project}/clips/new/",
        "/clips/{clip}/",
        "/clips/{clip}/video.mp4",
        "/clips/{clip}/poster.jpg",
    ],
)
def test_non_members_get_404_everywhere(client, stranger, project, clip, url):
    client.force_login(stranger)
    response = client.get(url.format(project=project.pk, clip=clip.pk))
    assert response.status_code == 404


def test_projects_list_shows_only_my_projects(client, stranger, project):
    Project.objects.create(name="Someone else's")
    client.force_login(stranger)
    assert "Launch film" not in client.get("/projects/").content.decode()


def test_reviewers_cannot_open_the_generate_form(client, stranger, project):
    Membership.objects.create(project=project, user=stranger, role=Role.REVIEWER)
    client.force_login(stranger)
    assert client.get(f"/projects/{project.pk}/clips/new/").status_code == 403
    assert "New clip" not in client.get(f"/projects/{project.pk}/").content.decode()


def test_new_clip_form_has_labelled_provider_model_prompt_and_generate(
    client, user, project, account
):
    client.force_login(user)
    html = client.get(f"/projects/{project.pk}/clips/new/").content.decode()
    for label in (">Provider</label>", ">Model</label>", ">Prompt</label>"):
        assert label in html
    assert ">Generate</button>" in html
    assert '<option value="8" selected>8 s</option>' in html


def test_a_duration_the_model_does_not_offer_is_refused_before_any_call(
    client, user, project, account
):
    client.force_login(user)
    response = client.post(
        f"/projects/{project.pk}/clips/new/",
        {
            "provider_account": account.pk,
            "model": "veo3.1-fast-official",
            "prompt": "Fog over a harbour",
            "duration": "5",
            "aspect_ratio": "16:9",
            "resolution": "720p",
        },
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="id_duration-error"' in html
    assert "5 is not one of the available choices" in html
    assert not Clip.objects.exists()


def test_a_model_from_another_provider_is_refused(client, user, project, account):
    client.force_login(user)
    html = client.post(
        f"/projects/{project.pk}/clips/new/",
        {
            "provider_account": account.pk,
            "model": "kling-v1-6",
            "prompt": "Fog",
            "duration": "8",
            "aspect_ratio": "16:9",
            "resolution": "720p",
        },
    ).content.decode()
    assert 'id="id_model-error"' in html
    assert not Clip.objects.exists()


def test_clip_fragment_polls_while_running_and_shows_progress(client, user, clip):
    client.force_login(user)
    html = client.get(f"/clips/{clip.pk}/", headers={"HX-Request": "true"}).content.decode()
    assert html.lstrip().startswith('<section id="clip-status"')
    assert "<html" not in html
    assert 'hx-trigger="every 2s' in html
    assert 'value="42"' in html and "Generating" in html


def test_clip_fragment_stops_polling_and_plays_once_ready(client, user, clip):
    clip.status = ClipStatus.READY
    clip.file_key = "clips/x.mp4"
    clip.duration_seconds = 8.0
    clip.save()
    client.force_login(user)
    html = client.get(f"/clips/{clip.pk}/", headers={"HX-Request": "true"}).content.decode()
    assert "hx-trigger" not in html
    assert "<video" in html and "Ready" in html


def test_failed_clip_explains_itself_and_keeps_the_providers_words(client, user, clip):
    clip.status = ClipStatus.FAILED
    clip.error_message = "The provider account has run out of balance. An admin should top it up."
    clip.provider_message = "Insufficient balance. Please top up your account"
    clip.save()
    client.force_login(user)
    html = client.get(f"/clips/{clip.pk}/").content.decode()
    assert "run out of balance" in html
    assert "<details><summary>What the provider said</summary>" in html


def test_project_grid_polls_only_while_a_clip_is_in_flight(client, user, project, clip):
    client.force_login(user)
    html = client.get(f"/projects/{project.pk}/", headers={"HX-Request": "true"}).content.decode()
    assert 'id="clip-grid"' in html and "hx-trigger" in html
    Clip.objects.filter(pk=clip.pk).update(status=ClipStatus.FAILED)
    html = client.get(f"/projects/{project.pk}/", headers={"HX-Request": "true"}).content.decode()
    assert "hx-trigger" not in html


def test_credentials_are_encrypted_at_rest(account):
    with connection.cursor() as cursor:
        cursor.execute("SELECT credential FROM videos_provideraccount WHERE id = %s", [account.pk])
        stored = cursor.fetchone()[0]
    assert "sk-live" not in stored
    assert stored.startswith("gAAAA")  # a Fernet token
    assert ProviderAccount.objects.get(pk=account.pk).credential == "sk-live-0123456789abcdef"
    assert account.credential_last4 == "cdef"


def test_refreshing_the_form_keeps_the_chosen_settings_selected(client, user, project, account):
    client.force_login(user)
    html = client.get(
        f"/projects/{project.pk}/clips/new/",
        {
            "provider_account": account.pk,
            "model": "veo3.1-quality-official",
            "duration": "6",
            "aspect_ratio": "9:16",
            "resolution": "4K",
        },
        headers={"HX-Request": "true"},
    ).content.decode()
    assert html.lstrip().startswith('<div id="clip-fields"')
    assert '<option value="veo3.1-quality-official" selected>' in html
    assert '<option value="6" selected>6 s</option>' in html
    assert '<option value="9:16" selected>' in html
    assert '<option value="4K" selected>' in html


def test_a_setting_the_new_model_lacks_falls_back_to_its_default(client, user, project, account):
    client.force_login(user)
    html = client.get(
        f"/projects/{project.pk}/clips/new/",
        {"provider_account": account.pk, "model": "veo3.1-fast-official", "duration": "15"},
        headers={"HX-Request": "true"},
    ).content.decode()
    assert '<option value="8" selected>8 s</option>' in html


def test_the_video_answers_range_requests_so_the_player_can_seek(client, user, clip):
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    key = default_storage.save("clips/range-test.mp4", ContentFile(bytes(range(256)) * 40))
    Clip.objects.filter(pk=clip.pk).update(file_key=key, status=ClipStatus.READY)
    client.force_login(user)

    partial = client.get(f"/clips/{clip.pk}/video.mp4", headers={"Range": "bytes=100-199"})
    assert partial.status_code == 206
    assert partial["Content-Range"] == "bytes 100-199/10240"
    assert b"".join(partial.streaming_content) == (bytes(range(256)) * 40)[100:200]

    tail = client.get(f"/clips/{clip.pk}/video.mp4", headers={"Range": "bytes=-10"})
    assert b"".join(tail.streaming_content) == (bytes(range(256)) * 40)[-10:]

    beyond = client.get(f"/clips/{clip.pk}/video.mp4", headers={"Range": "bytes=99999-"})
    assert beyond.status_code == 416
