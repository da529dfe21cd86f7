"""The walking skeleton, end to end: a prompt becomes a mirrored, playable clip."""

from __future__ import annotations

import hashlib

import pytest
from django.core.files.storage import default_storage

from videos import media
from videos.models import Clip, ClipStatus

pytestmark = pytest.mark.django_db(transaction=True)


def _is_done(clip_id: int):
    def check() -> bool:
        clip = Clip.objects.get(pk=clip_id)
        return clip.is_final and (clip.status != ClipStatus.READY or bool(clip.poster_key))

    return check


def test_generate_form_post_becomes_a_mirrored_eight_second_mp4(
    client, user, project, sandbox_apimart, drain_queue
):
    client.force_login(user)
    response = client.post(
        f"/projects/{project.pk}/clips/new/",
        {
            "provider_account": sandbox_apimart.pk,
            "model": "veo3.1-fast-official",
            "prompt": "A lighthouse at dusk, waves rolling in",
            "duration": "8",
            "aspect_ratio": "16:9",
            "resolution": "720p",
        },
    )
    clip = Clip.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/clips/{clip.pk}/"

    drain_queue(until=_is_done(clip.pk), timeout=60)

    clip.refresh_from_db()
    assert clip.status == ClipStatus.READY
    assert clip.provider_task_id.startswith("task_")
    assert clip.progress == 100
    with default_storage.open(clip.file_key, "rb") as stored:
        data = stored.read()
    assert hashlib.sha256(data).hexdigest() == clip.sha256
    assert clip.file_size == len(data)
    with default_storage.open(clip.file_key, "rb") as stored:
        info = media.probe(stored)
    assert info.duration == pytest.approx(8.0, abs=0.05)
    assert clip.duration_seconds == pytest.approx(8.0, abs=0.05)
    assert info.codec == "h264"
    assert info.width / info.height == pytest.approx(16 / 9, rel=0.02)
    assert default_storage.exists(clip.poster_key)

    page = client.get(f"/clips/{clip.pk}/")
    html = page.content.decode()
    assert "<video" in html and f"/clips/{clip.pk}/video.mp4" in html
    assert "Ready" in html
    assert "hx-trigger" not in html  # polling has stopped

    video = client.get(f"/clips/{clip.pk}/video.mp4")
    assert video.status_code == 200
    assert b"".join(video.streaming_content) == data


def test_portrait_four_second_clip_keeps_its_shape_and_length(
    client, user, project, sandbox_apimart, drain_queue
):
    client.force_login(user)
    client.post(
        f"/projects/{project.pk}/clips/new/",
        {
            "provider_account": sandbox_apimart.pk,
            "model": "veo3.1-quality-official",
            "prompt": "A dancer on a rooftop",
            "duration": "4",
            "aspect_ratio": "9:16",
            "resolution": "1080p",
        },
    )
    clip = Clip.objects.get()
    drain_queue(until=_is_done(clip.pk), timeout=60)
    clip.refresh_from_db()
    assert clip.status == ClipStatus.READY
    assert clip.duration_seconds == pytest.approx(4.0, abs=0.05)
    assert clip.height > clip.width
