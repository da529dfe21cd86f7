"""The clip page: live progress, failures with a next step, Retry on a click, cost, download,
and "Use as template"."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from tests.test_frames import image_bytes
from videos import frames
from videos.models import Clip, ClipStatus, Frame, Membership, Project, ProviderAccount, Role

pytestmark = pytest.mark.django_db

FIRST = image_bytes("PNG", (640, 360), (10, 160, 90))
LAST = image_bytes("JPEG", (640, 360), (160, 10, 90))


@pytest.fixture
def account(db, settings):
    settings.PUBLIC_URL = "https://studio.example.com"
    return ProviderAccount.objects.create(
        all_projects=True,
        kind="kie",
        label="kie main",
        base_url="http://127.0.0.1:9/kie",
        credential="sk-kie-1",
    )


@pytest.fixture
def clip(project, user, account):
    clip = Clip.objects.create(
        project=project,
        created_by=user,
        provider_account=account,
        model="veo3",
        prompt="A lantern festival over a river",
        params={"duration": 8, "aspect_ratio": "16:9", "resolution": "720p"},
        status=ClipStatus.RUNNING,
        progress=40,
        phase="Generating at kie",
        provider_task_id="kie-task-1",
        submitted_at=timezone.now() - timedelta(seconds=75),
        provider_estimate_seconds=300,
    )
    frames.store(
        clip,
        [
            frames.from_upload(SimpleUploadedFile("f.png", FIRST), kind="kie", role="first"),
            frames.from_upload(SimpleUploadedFile("l.jpg", LAST), kind="kie", role="last"),
        ],
    )
    return clip


def fail(clip: Clip, **fields) -> None:
    values = {
        "status": ClipStatus.FAILED,
        "error_code": "402",
        "error_message": "The provider account has run out of balance. An admin should top it up.",
        "provider_message": "insufficient credits",
        "finished_at": timezone.now(),
        **fields,
    }
    Clip.objects.filter(pk=clip.pk).update(**values)


# --- progress -------------------------------------------------------------------------------


def test_a_running_clip_shows_phase_elapsed_time_and_the_providers_estimate(client, user, clip):
    Clip.objects.filter(pk=clip.pk).update(phase="Extending to 15 s", progress=63)
    client.force_login(user)
    html = client.get(f"/clips/{clip.pk}/", headers={"HX-Request": "true"}).content.decode()
    assert "Extending to 15 s" in html
    assert 'value="63"' in html and "63%" in html
    assert "1 min 15 s elapsed" in html
    assert "provider estimates 5 min 0 s" in html
    assert "hx-trigger=\"every 2s [document.visibilityState === 'visible']\"" in html


# --- failures and Retry ---------------------------------------------------------------------


def test_a_failed_clip_says_what_to_do_and_offers_retry(client, user, clip):
    fail(clip)
    client.force_login(user)
    html = client.get(f"/clips/{clip.pk}/").content.decode()
    assert "An admin should top it up." in html
    assert "<details><summary>What the provider said</summary><pre>insufficient credits" in html
    assert f'action="/clips/{clip.pk}/retry/"' in html and ">Retry</button>" in html
    # Looking at a failed clip, however often, never submits anything by itself.
    for _ in range(3):
        client.get(f"/clips/{clip.pk}/", headers={"HX-Request": "true"})
    assert Clip.objects.count() == 1


def test_retry_makes_a_new_clip_with_the_same_prompt_settings_and_frames(client, user, clip):
    fail(clip)
    client.force_login(user)
    response = client.post(f"/clips/{clip.pk}/retry/")
    new = Clip.objects.exclude(pk=clip.pk).get()
    assert response["Location"] == f"/clips/{new.pk}/"
    # One new submission, queued for the tracker to send; the failed clip is left alone.
    assert new.retry_of == clip and new.status == ClipStatus.QUEUED
    assert Clip.objects.filter(status=ClipStatus.QUEUED).count() == 1
    assert (new.prompt, new.model, new.params) == (clip.prompt, clip.model, clip.params)
    old_frames = frames.ordered(clip.frames.all())
    new_frames = frames.ordered(new.frames.all())
    assert [(f.role, f.content_type) for f in new_frames] == [
        (f.role, f.content_type) for f in old_frames
    ]
    # Each clip has its own copy of the images.
    for old, copy in zip(old_frames, new_frames, strict=True):
        assert copy.image.name != old.image.name
        assert default_storage.open(copy.image.name).read() == old.image.open().read()
    html = client.get(f"/clips/{new.pk}/").content.decode()
    assert f'<a href="/clips/{clip.pk}/">Clip {clip.pk}</a>' in html


def test_retry_is_a_post_only_and_only_for_failed_or_expired_clips(client, user, clip):
    client.force_login(user)
    assert client.get(f"/clips/{clip.pk}/retry/").status_code == 405
    response = client.post(f"/clips/{clip.pk}/retry/", follow=True)
    assert "Only a failed or expired clip can be retried." in response.content.decode()
    assert Clip.objects.count() == 1
    Clip.objects.filter(pk=clip.pk).update(status=ClipStatus.EXPIRED, error_message="Expired.")
    client.post(f"/clips/{clip.pk}/retry/")
    assert Clip.objects.count() == 2


def test_reviewers_cannot_retry(client, project, clip):
    fail(clip)
    reviewer = get_user_model().objects.create_user("rev", "rev@example.com", "pw-rev-12345")
    Membership.objects.create(project=project, user=reviewer, role=Role.REVIEWER)
    client.force_login(reviewer)
    assert ">Retry</button>" not in client.get(f"/clips/{clip.pk}/").content.decode()
    assert client.post(f"/clips/{clip.pk}/retry/").status_code == 403
    assert Clip.objects.count() == 1


def test_retry_refuses_when_the_account_is_gone(client, user, clip, account):
    fail(clip)
    account.is_enabled = False
    account.save()
    client.force_login(user)
    html = client.post(f"/clips/{clip.pk}/retry/", follow=True).content.decode()
    assert "no longer available" in html
    assert Clip.objects.count() == 1


def test_a_partial_clip_says_the_first_8_s_were_kept(client, user, clip):
    Clip.objects.filter(pk=clip.pk).update(
        status=ClipStatus.PARTIAL,
        error_code="extend_failed",
        error_message="The extension failed; the first 8 s are saved.",
        file_key="clips/x.mp4",
        duration_seconds=8.0,
    )
    client.force_login(user)
    html = client.get(f"/clips/{clip.pk}/").content.decode()
    assert "The first 8 s were made and kept" in html
    assert ">Retry</button>" not in html


# --- cost -----------------------------------------------------------------------------------


def test_the_actual_cost_is_shown_in_dollars_when_the_unit_price_is_known(
    client, user, clip, account
):
    account.unit_price = Decimal("0.005")
    account.save()
    Clip.objects.filter(pk=clip.pk).update(
        status=ClipStatus.READY,
        cost=Decimal("60"),
        estimated_cost=Decimal("0.35"),
        file_key="clips/x.mp4",
        duration_seconds=8.0,
        width=1280,
        height=720,
        file_size=1000,
    )
    client.force_login(user)
    html = client.get(f"/clips/{clip.pk}/").content.decode()
    assert "cost $0.30" in html
    assert "<dt>Estimated cost</dt><dd>$0.35</dd>" in html


def test_without_a_unit_price_the_providers_own_figure_is_shown_with_its_unit(client, user, clip):
    Clip.objects.filter(pk=clip.pk).update(
        status=ClipStatus.READY,
        cost=Decimal("12.5"),
        file_key="clips/x.mp4",
        duration_seconds=8.0,
        width=1280,
        height=720,
        file_size=1000,
    )
    client.force_login(user)
    html = client.get(f"/clips/{clip.pk}/").content.decode()
    # Never silently a dollar: the unit is named and its missing price said.
    assert "cost 12.5 kie credits (no USD price per unit is set)" in html
    assert "No price set" in html


# --- download -------------------------------------------------------------------------------


def test_download_sends_the_video_as_an_attachment_named_after_the_prompt(client, user, clip):
    key = default_storage.save("clips/1/x.mp4", ContentFile(b"\x00\x00\x00\x18ftypmp42video"))
    Clip.objects.filter(pk=clip.pk).update(status=ClipStatus.READY, file_key=key)
    client.force_login(user)
    response = client.get(f"/clips/{clip.pk}/download/")
    assert response.status_code == 200
    assert response["Content-Disposition"] == (
        f'attachment; filename="clip-{clip.pk}-a-lantern-festival-over-a-river.mp4"'
    )
    assert b"".join(response.streaming_content).startswith(b"\x00\x00\x00\x18ftyp")


def test_there_is_nothing_to_download_before_the_video_exists(client, user, clip):
    client.force_login(user)
    assert client.get(f"/clips/{clip.pk}/download/").status_code == 404


# --- use as template ---------------------------------------------------------------------


def test_use_as_template_fills_the_form_with_prompt_settings_and_frames(client, user, clip):
    Clip.objects.filter(pk=clip.pk).update(params={**clip.params, "aspect_ratio": "9:16"})
    client.force_login(user)
    html = client.get(f"/clips/{clip.pk}/template/").content.decode()
    assert "A lantern festival over a river</textarea>" in html
    assert '<option value="veo3" selected>' in html
    assert '<option value="9:16" selected>' in html
    for frame in clip.frames.all():
        assert f'<img src="/frames/{frame.pk}/image"' in html
        assert f'name="keep_frames" value="{frame.pk}" checked' in html
    assert f'name="from_clip" value="{clip.pk}"' in html


def template_post(clip: Clip, **extra) -> dict:
    data = {
        "provider_account": clip.provider_account_id,
        "model": "veo3",
        "prompt": "Lanterns again, slower",
        "duration": "8",
        "aspect_ratio": "16:9",
        "resolution": "720p",
        "from_clip": clip.pk,
        "keep_frames": [f.pk for f in clip.frames.all()],
    }
    data.update(extra)
    return data


def test_kept_template_frames_are_copied_into_the_new_clip(client, user, project, clip):
    client.force_login(user)
    response = client.post(f"/projects/{project.pk}/clips/new/", template_post(clip))
    new = Clip.objects.exclude(pk=clip.pk).get()
    assert response["Location"] == f"/clips/{new.pk}/"
    copies = frames.ordered(new.frames.all())
    assert [(f.role, f.width, f.height) for f in copies] == [
        ("first", 640, 360),
        ("last", 640, 360),
    ]
    assert copies[0].image.open().read() == FIRST
    assert copies[0].image.name.startswith(f"frames/{project.pk}/{new.pk}/")


def test_an_unticked_frame_is_left_out_and_a_new_file_replaces_the_kept_one(
    client, user, project, clip
):
    first = clip.frames.get(role="first")
    replacement = image_bytes("PNG", (800, 450), (1, 2, 3))
    client.force_login(user)
    client.post(
        f"/projects/{project.pk}/clips/new/",
        template_post(
            clip,
            keep_frames=[first.pk],
            first_frame=SimpleUploadedFile("new.png", replacement, "image/png"),
        ),
    )
    new = Clip.objects.exclude(pk=clip.pk).get()
    (only,) = new.frames.all()
    assert (only.role, only.width) == ("first", 800)
    assert only.image.open().read() == replacement


def test_a_kept_frame_the_new_model_cannot_take_is_explained(client, user, project, clip, settings):
    kling = ProviderAccount.objects.create(
        all_projects=True,
        kind="kling",
        label="Kling",
        base_url="http://127.0.0.1:9/k",
        credential="ak",
    )
    client.force_login(user)
    html = client.post(
        f"/projects/{project.pk}/clips/new/",
        template_post(
            clip,
            provider_account=kling.pk,
            model="kling-v2-1-master",
            duration="5",
            aspect_ratio="16:9",
            resolution="1080p",
        ),
    ).content.decode()
    assert 'id="id_keep_frames-error"' in html
    assert "Kling 2.1 Master takes no last frame images" in html
    assert Clip.objects.count() == 1 and Frame.objects.count() == 2


def test_frames_of_another_project_cannot_be_kept(client, user, project, clip, account):
    other = Project.objects.create(name="Other")
    Membership.objects.create(project=other, user=user, role=Role.CREATOR)
    client.force_login(user)
    html = client.post(f"/projects/{other.pk}/clips/new/", template_post(clip)).content.decode()
    assert 'id="id_keep_frames-error"' in html
    assert not Clip.objects.filter(project=other).exists()


def test_stored_frames_are_shown_to_members_only(client, user, clip):
    frame = clip.frames.get(role="first")
    client.force_login(user)
    response = client.get(f"/frames/{frame.pk}/image")
    assert response.status_code == 200 and b"".join(response.streaming_content) == FIRST
    stranger = get_user_model().objects.create_user("sam", "sam@example.com", "pw-sam-12345")
    client.force_login(stranger)
    assert client.get(f"/frames/{frame.pk}/image").status_code == 404
    assert client.get(f"/clips/{clip.pk}/template/").status_code == 404


def test_reviewers_cannot_use_a_clip_as_template(client, project, clip):
    reviewer = get_user_model().objects.create_user("rev", "rev@example.com", "pw-rev-12345")
    Membership.objects.create(project=project, user=reviewer, role=Role.REVIEWER)
    client.force_login(reviewer)
    assert client.get(f"/clips/{clip.pk}/template/").status_code == 403
    assert "Use as template" not in client.get(f"/clips/{clip.pk}/").content.decode()
