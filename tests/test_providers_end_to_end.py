"""Every provider through the whole studio: form -> queue -> twin over HTTP -> mirrored MP4."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from videos import pipeline
from videos.models import Clip, ClipStatus

pytestmark = pytest.mark.django_db(transaction=True)


def done(clip_id: int):
    def check() -> bool:
        clip = Clip.objects.get(pk=clip_id)
        return clip.is_final and (not clip.file_key or bool(clip.poster_key))

    return check


@pytest.mark.parametrize(
    ("kind", "fields", "seconds"),
    [
        (
            "apimart",
            {
                "model": "veo3.1-fast-official",
                "duration": "8",
                "aspect_ratio": "16:9",
                "resolution": "1080p",
            },
            8,
        ),
        (
            "newapi",
            {
                "model": "veo_3_1-fast-remix",
                "duration": "15",
                "aspect_ratio": "16:9",
                "resolution": "720p",
                "prompt_extend": "The camera rises over the bay",
            },
            15,
        ),
        (
            "kie",
            {"model": "veo3_fast", "duration": "8", "aspect_ratio": "9:16", "resolution": "720p"},
            8,
        ),
        (
            "kling",
            {"model": "kling-v1-6", "duration": "5", "aspect_ratio": "1:1", "resolution": "std"},
            5,
        ),
    ],
)
def test_each_provider_turns_a_form_post_into_a_ready_clip(
    client, user, project, live_server, sandbox_account, drain_queue, kind, fields, seconds
):
    account = sandbox_account(kind)
    client.force_login(user)
    response = client.post(
        f"/projects/{project.pk}/clips/new/",
        {"provider_account": account.pk, "prompt": "Harbour lights at night", **fields},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    clip = Clip.objects.get()
    drain_queue(until=done(clip.pk), timeout=90)
    clip.refresh_from_db()
    assert clip.status == ClipStatus.READY, clip.error_message
    assert clip.duration_seconds == pytest.approx(seconds, abs=0.1)


def test_newapi_extend_failed_keeps_the_first_eight_seconds_as_a_partial_clip(
    client, user, project, live_server, sandbox_account, drain_queue
):
    account = sandbox_account("newapi")
    client.force_login(user)
    client.post(
        f"/projects/{project.pk}/clips/new/",
        {
            "provider_account": account.pk,
            "model": "veo_3_1-fast-remix",
            "prompt": "A fox in the snow [sandbox:extend_failed]",
            "prompt_extend": "The fox runs into the forest",
            "duration": "15",
            "aspect_ratio": "16:9",
            "resolution": "720p",
        },
    )
    clip = Clip.objects.get()
    drain_queue(until=done(clip.pk), timeout=90)
    clip.refresh_from_db()
    assert clip.status == ClipStatus.PARTIAL
    assert clip.duration_seconds == pytest.approx(8, abs=0.1)
    assert clip.error_code == "extend_failed"
    page = client.get(f"/clips/{clip.pk}/").content.decode()
    assert "Partly ready" in page and "<video" in page
    assert clip.error_message in page


def test_the_extension_prompt_is_required_for_the_fifteen_second_models(
    client, user, project, live_server, sandbox_account
):
    account = sandbox_account("newapi")
    client.force_login(user)
    page = client.get(
        f"/projects/{project.pk}/clips/new/?provider_account={account.pk}"
    ).content.decode()
    assert ">Extension prompt</label>" in page
    html = client.post(
        f"/projects/{project.pk}/clips/new/",
        {
            "provider_account": account.pk,
            "model": "veo_3_1-fast-remix",
            "prompt": "A fox",
            "duration": "15",
            "aspect_ratio": "16:9",
            "resolution": "720p",
        },
    ).content.decode()
    assert 'id="id_prompt_extend-error"' in html
    assert not Clip.objects.exists()


@pytest.mark.parametrize("kind", ["kie", "kling"])
def test_a_provider_callback_wakes_the_tracker(
    user, project, live_server, sandbox_account, drain_queue, settings, kind
):
    settings.PUBLIC_URL = live_server.url
    account = sandbox_account(kind)
    model = {"kie": "veo3_fast", "kling": "kling-v1-6"}[kind]
    clip = Clip.objects.create(
        project=project,
        created_by=user,
        provider_account=account,
        model=model,
        prompt="Rain on a tin roof",
        params={
            "duration": 5 if kind == "kling" else 8,
            "aspect_ratio": "16:9",
            "resolution": "std" if kind == "kling" else "720p",
        },
    )
    pipeline.submit_clip(clip_id=clip.pk)
    # Not due for an hour: only the provider's callback can bring the clip on now.
    Clip.objects.filter(pk=clip.pk).update(next_poll_at=timezone.now() + timedelta(hours=1))
    deadline = time.monotonic() + 20
    while Clip.objects.get(pk=clip.pk).next_poll_at > timezone.now():
        assert time.monotonic() < deadline, "no callback made the clip due"
        time.sleep(0.1)
    drain_queue(until=done(clip.pk), timeout=30)
    clip.refresh_from_db()
    assert clip.status == ClipStatus.READY


def test_a_forged_kie_callback_is_refused(client, live_server, sandbox_account):
    account = sandbox_account("kie")
    response = client.post(
        f"/callbacks/kie/{account.pk}/",
        data=b'{"code":200,"data":{"taskId":"x","info":{"resultUrls":["http://evil/x.mp4"]}}}',
        content_type="application/json",
        headers={"X-Webhook-Timestamp": str(int(time.time())), "X-Webhook-Signature": "Zm9v"},
    )
    assert response.status_code == 400
