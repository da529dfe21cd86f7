"""Mirroring into S3-compatible storage, against a real SeaweedFS server."""

from __future__ import annotations

import hashlib
import io
import os
import random

import httpx
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage, storages
from storages.backends.s3 import S3Storage

from videos import media, storage_upload
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

    # Small videos go up in one request under their final key: nothing else is left.
    s3 = boto3_client(default_storage)
    keys = {entry["Key"] for entry in s3.list_objects_v2(Bucket=s3_storage)["Contents"]}
    assert keys == {clip.file_key, clip.poster_key}
    assert s3.list_multipart_uploads(Bucket=s3_storage).get("Uploads", []) == []


def boto3_client(storage):
    return storage.connection.meta.client


def test_a_ranged_reader_reads_and_seeks_like_the_stored_bytes(s3_storage):
    data = os.urandom(3 * 1024 * 1024 + 17)
    key = default_storage.save("ranged/data.bin", ContentFile(data))
    reader = storage_upload.open_ranged(default_storage, key)
    assert reader.seekable() and reader.read(10) == data[:10]
    rng = random.Random(7)
    for _ in range(40):
        start, length = rng.randrange(len(data)), rng.randrange(1, 300_000)
        reader.seek(start)
        assert reader.read(length) == data[start : start + length]
        assert reader.tell() == min(len(data), start + length)
    assert reader.seek(-5, io.SEEK_END) == len(data) - 5
    assert reader.read() == data[-5:] and reader.read(1) == b""
    reader.seek(0)
    assert reader.read() == data
    # Jumps fetch small windows, reading on in order fetches growing ones: never the
    # object many times over.
    assert reader.fetched < 12 * len(data)


def test_an_unfinished_upload_is_aborted_and_nothing_is_stored(s3_storage):
    incoming = storage_upload.receive(default_storage, "test/unfinished.mp4", max_bytes=1024**3)
    with pytest.raises(RuntimeError), incoming:
        incoming.write(os.urandom(20 * 1024 * 1024))
        raise RuntimeError("the source broke off")
    s3 = boto3_client(default_storage)
    assert s3.list_multipart_uploads(Bucket=s3_storage).get("Uploads", []) == []
    assert s3.list_objects_v2(Bucket=s3_storage).get("KeyCount") == 0


def test_a_streamed_upload_lands_under_its_final_key_without_a_copy(s3_storage):
    s3 = boto3_client(default_storage)
    operations: list[str] = []

    def seen(model, **kwargs) -> None:
        operations.append(model.name)

    s3.meta.events.register("before-parameter-build.s3", seen)
    data = os.urandom(20 * 1024 * 1024 + 5)  # several parts, the last one short
    try:
        with storage_upload.receive(
            default_storage, "test/final-0123456789ab.mp4", max_bytes=1024**3
        ) as incoming:
            for start in range(0, len(data), 1024 * 1024):
                incoming.write(data[start : start + 1024 * 1024])
            incoming.finish()
            # Probed where it stays, before it is kept.
            with incoming.open() as stored:
                assert stored.read(16) == data[:16]
            name = incoming.keep()
    finally:
        s3.meta.events.unregister("before-parameter-build.s3", seen)

    assert name == "test/final-0123456789ab.mp4"
    assert incoming.sha256 == hashlib.sha256(data).hexdigest() and incoming.size == len(data)
    keys = [entry["Key"] for entry in s3.list_objects_v2(Bucket=s3_storage)["Contents"]]
    assert keys == [name]
    with storage_upload.open_ranged(default_storage, name) as stored:
        assert hashlib.sha256(stored.read()).hexdigest() == incoming.sha256
    assert "CopyObject" not in operations and "DeleteObject" not in operations
    parts = -(-len(data) // storage_upload.PART_SIZE)
    assert operations.count("UploadPart") == parts and "CompleteMultipartUpload" in operations


def test_a_completed_upload_that_is_not_kept_is_deleted(s3_storage):
    incoming = storage_upload.receive(default_storage, "test/refused.mp4", max_bytes=1024**3)
    with pytest.raises(ValueError), incoming:
        incoming.write(os.urandom(9 * 1024 * 1024))
        incoming.finish()
        raise ValueError("the probe refused it")
    s3 = boto3_client(default_storage)
    assert s3.list_multipart_uploads(Bucket=s3_storage).get("Uploads", []) == []
    assert s3.list_objects_v2(Bucket=s3_storage).get("KeyCount") == 0
