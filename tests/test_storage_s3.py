"""Mirroring into S3-compatible storage, against a real SeaweedFS server."""

from __future__ import annotations

import hashlib

import httpx
import pytest
from django.core.files.storage import default_storage, storages
from storages.backends.s3 import S3Storage

from videos import media
from videos.models import Clip, ClipStatus

pytestmark = [pytest.mark.s3, pytest.mark.django_db(transaction=True)]


def test_finished_clip_is_mirrored_to_s3_and_played_through_a_presigned_url(
    client, user, project, sandbox_apimart, drain_queue, s3_storage
):
    client.force_login(user)
    client.post(
        f"/projects/{project.pk}/clips/new/",
        {
            "provider_account": sandbox_apimart.pk,
            "model": "veo3.1-fast-official",
            "prompt": "Paper boats on a rainy street",
            "duration": "6",
            "aspect_ratio": "16:9",
            "resolution": "720p",
        },
    )
    clip = Clip.objects.get()
    drain_queue(until=lambda: bool(Clip.objects.get(pk=clip.pk).poster_key), timeout=60)
    clip.refresh_from_db()

    assert clip.status == ClipStatus.READY
    assert isinstance(storages["default"], S3Storage)
    assert default_storage.exists(clip.file_key)
    assert default_storage.exists(clip.poster_key)

    response = client.get(f"/clips/{clip.pk}/video.mp4")
    assert response.status_code == 302
    presigned = response["Location"]
    assert presigned.startswith(default_storage.endpoint_url)
    assert "Signature=" in presigned or "X-Amz-Signature=" in presigned
    body = httpx.get(presigned, timeout=10).content
    assert hashlib.sha256(body).hexdigest() == clip.sha256
    assert len(body) == clip.file_size
    with default_storage.open(clip.file_key, "rb") as stored:
        assert media.probe(stored).duration == pytest.approx(6.0, abs=0.05)

    unsigned = presigned.split("?")[0]
    assert httpx.get(unsigned, timeout=10).status_code == 403
