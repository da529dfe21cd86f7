"""Mirroring a provider's video straight into storage, against a real loopback file server.

The provider's side is a small threaded HTTP server on loopback whose links can answer an
error status or cut the connection part-way; storage is the filesystem backend or SeaweedFS.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import random
import re
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import av
import boto3
import pytest
from django.core.files.storage import default_storage
from django.utils import timezone

from sandbox.render import render_mp4
from videos import media, storage_upload
from videos.models import Clip, ClipStatus, Project, ProviderAccount
from videos.pipeline import mirror, poster

MiB = 1024 * 1024
VIDEO_MIB = 20

pytestmark = pytest.mark.django_db


# --- the provider's file server ----------------------------------------------------------------


@dataclass
class Link:
    body: bytes = b""
    status: int = 200
    # The first ``cuts`` answers stop after ``cut_after`` bytes and drop the connection,
    # once ``cut_when`` holds (so the cut lands while an upload is under way).
    cut_after: int = 0
    cuts: int = 0
    cut_when: Callable[[], bool] = lambda: True
    # Called as each request arrives, before it is answered.
    on_request: Callable[[], None] = lambda: None
    requests: int = 0


@dataclass
class FileServer:
    port: int
    links: dict[str, Link] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def serve(self, path: str, link: Link) -> str:
        self.links[path] = link
        return self.url(path)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        link = self.server.files.links.get(self.path)
        if link is None:
            self.send_error(404)
            return
        link.requests += 1
        link.on_request()
        if link.status != 200:
            self.send_response(link.status)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(len(link.body)))
        self.end_headers()
        if link.cuts > 0:
            link.cuts -= 1
            self.wfile.write(link.body[: link.cut_after])
            self.wfile.flush()
            deadline = time.monotonic() + 10
            while not link.cut_when() and time.monotonic() < deadline:
                time.sleep(0.05)
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        with contextlib.suppress(ConnectionError):  # the studio stopped reading early
            self.wfile.write(link.body)

    def log_message(self, format: str, *args) -> None:
        pass


@pytest.fixture
def files():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.files = FileServer(port=server.server_port)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.files
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> bytes:
    """A playable 3 s MP4 padded with a random MP4 ``free`` box to VIDEO_MIB (three S3 parts)."""
    path = tmp_path_factory.mktemp("video") / "video.mp4"
    render_mp4(path, seconds=3, width=320, height=180, scene="mirror", caption="mirror")
    data = path.read_bytes()
    padding = VIDEO_MIB * MiB - len(data) - 8
    return data + struct.pack(">I4s", padding + 8, b"free") + os.urandom(padding)


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch):
    monkeypatch.setattr(mirror, "RETRY_BASE_SECONDS", 0.0)


def saving_clip(url: str, *, sandbox: bool = True, **fields) -> Clip:
    # A sandbox account may fetch from loopback (the twins live there); a real one may not.
    account = ProviderAccount.objects.create(
        kind="apimart",
        label="apimart",
        base_url="http://127.0.0.1:9/sandbox/apimart" if sandbox else "https://api.apimart.ai",
        credential="sk-mirror-test-0001",
    )
    return Clip.objects.create(
        project=Project.objects.create(name="Mirror"),
        provider_account=account,
        model="veo3.1-fast-official",
        prompt="Paper boats",
        status=ClipStatus.MIRRORING,
        phase="Saving the video",
        result_url=url,
        provider_done_at=timezone.now(),
        **fields,
    )


def mirrored(clip: Clip) -> Clip:
    mirror.mirror_clip(clip_id=clip.pk)
    clip.refresh_from_db()
    return clip


def stored_bytes(key: str) -> bytes:
    with storage_upload.open_ranged(default_storage, key) as stored:
        return stored.read()


def local_leftovers(settings) -> list[str]:
    """Files still being written (``.part``, next to their final names) anywhere in storage."""
    folder = Path(settings.STORAGES["default"]["OPTIONS"]["location"])
    return sorted(p.name for p in folder.rglob(f"*{storage_upload.PARTIAL_SUFFIX}"))


def final_key(clip: Clip) -> re.Pattern:
    """A clip's video key: its project, its id and a random 12-hex token chosen up front."""
    return re.compile(rf"clips/{clip.project_id}/{clip.pk}-[0-9a-f]{{12}}\.mp4")


# --- S3 ----------------------------------------------------------------------------------------


@pytest.fixture
def s3(s3_server, s3_storage):
    client = boto3.client(
        "s3",
        endpoint_url=s3_server.endpoint_url,
        aws_access_key_id=s3_server.access_key,
        aws_secret_access_key=s3_server.secret_key,
        region_name=s3_server.region,
    )

    class Bucket:
        def uploads(self) -> list[str]:
            answer = client.list_multipart_uploads(Bucket=s3_storage)
            return [upload["Key"] for upload in answer.get("Uploads", [])]

        def objects(self) -> list[str]:
            answer = client.list_objects_v2(Bucket=s3_storage)
            return sorted(entry["Key"] for entry in answer.get("Contents", []))

    Bucket.client, Bucket.name = client, s3_storage
    return Bucket()


@pytest.fixture
def s3_calls(s3):
    """The S3 operations the studio's own client makes, as (operation, key) in order."""
    calls: list[tuple[str, str]] = []

    def seen(params, model, **kwargs) -> None:
        calls.append((model.name, params.get("Key", "")))

    events = default_storage.connection.meta.client.meta.events
    events.register("before-parameter-build.s3", seen)
    yield calls
    events.unregister("before-parameter-build.s3", seen)


@pytest.mark.s3
def test_a_video_streams_into_s3_under_its_final_key_with_no_copy(files, video, s3, s3_calls):
    clip = mirrored(saving_clip(files.serve("/v.mp4", Link(body=video))))

    assert clip.status == ClipStatus.READY, clip.error_message
    sha = hashlib.sha256(video).hexdigest()
    assert clip.sha256 == sha and clip.file_size == len(video)
    assert final_key(clip).fullmatch(clip.file_key), clip.file_key
    assert hashlib.sha256(stored_bytes(clip.file_key)).hexdigest() == sha
    assert (clip.duration_seconds, clip.width, clip.height) == (3.0, 320, 180)
    assert clip.mirror_attempts == 1
    assert s3.objects() == [clip.file_key] and s3.uploads() == []
    head = s3.client.head_object(Bucket=s3.name, Key=clip.file_key)
    assert head["ContentType"] == "video/mp4"
    # The multipart upload is made under the final key and completing it is the last
    # write: no CopyObject, no second key, nothing to delete.
    operations = [name for name, _ in s3_calls]
    assert "CopyObject" not in operations and "DeleteObject" not in operations
    writes = {key for name, key in s3_calls if name in {"CreateMultipartUpload", "UploadPart"}}
    assert writes == {clip.file_key}
    parts = -(-20 * 1024 * 1024 // storage_upload.PART_SIZE)  # 20 MiB in whole parts
    assert operations.count("UploadPart") == parts
    assert ("CompleteMultipartUpload", clip.file_key) in s3_calls


@pytest.mark.s3
def test_the_poster_and_the_probe_read_ranges_not_the_whole_video(files, video, s3):
    clip = mirrored(saving_clip(files.serve("/v.mp4", Link(body=video))))
    with storage_upload.open_ranged(default_storage, clip.file_key) as reader:
        assert media.probe(reader).duration == 3.0
        probed = reader.fetched
    with storage_upload.open_ranged(default_storage, clip.file_key) as reader:
        jpeg = media.poster_jpeg(reader, at_seconds=1.0)
        assert jpeg.startswith(b"\xff\xd8")
        posted = reader.fetched
    assert probed < MiB and posted < MiB, (probed, posted)

    poster.make_poster(clip_id=clip.pk)
    clip.refresh_from_db()
    assert clip.poster_key and clip.poster_key in s3.objects()


@pytest.mark.s3
def test_a_connection_cut_mid_download_leaves_no_object_nor_upload_and_the_retry_completes(
    files, video, s3
):
    seen: list[tuple[list[str], list[str]]] = []
    link = Link(
        body=video,
        cut_after=12 * MiB,
        cuts=1,
        # Cut once the first part is on its way, so there is an upload to abort.
        cut_when=lambda: bool(s3.uploads()),
        on_request=lambda: seen.append((s3.uploads(), s3.objects())),
    )
    clip = mirrored(saving_clip(files.serve("/v.mp4", link)))

    assert link.requests == 2
    before_retry = seen[1]
    assert before_retry == ([], []), "the cut try left an upload or an object behind"
    assert clip.status == ClipStatus.READY, clip.error_message
    assert clip.mirror_attempts == 2
    assert clip.sha256 == hashlib.sha256(video).hexdigest()
    assert hashlib.sha256(stored_bytes(clip.file_key)).hexdigest() == clip.sha256
    assert s3.objects() == [clip.file_key] and s3.uploads() == []


@pytest.mark.s3
def test_a_worker_stopped_mid_upload_aborts_it_and_the_next_run_finishes(
    files, video, s3, monkeypatch
):
    clip = saving_clip(files.serve("/v.mp4", Link(body=video)))
    monkeypatch.setattr(mirror, "PROGRESS_EVERY_SECONDS", 0.0)
    show = mirror._show

    def stop_once_uploading(clip: Clip, phase: str) -> None:
        if s3.uploads():
            monkeypatch.setattr(mirror, "_show", show)
            raise SystemExit("worker stopping")
        show(clip, phase)

    monkeypatch.setattr(mirror, "_show", stop_once_uploading)
    with pytest.raises(SystemExit):
        mirror.mirror_clip(clip_id=clip.pk)
    assert s3.uploads() == [] and s3.objects() == []

    clip = mirrored(clip)
    assert clip.status == ClipStatus.READY and clip.mirror_attempts == 2


@pytest.mark.s3
def test_a_run_clears_the_upload_a_killed_worker_left(files, video, s3, monkeypatch):
    # The killed run had counted its try before it started uploading.
    clip = saving_clip(files.serve("/v.mp4", Link(body=video)), mirror_attempts=1)
    # What SIGKILL mid-upload leaves: an unfinished multipart upload under the clip's final
    # key, and (killed while probing) a completed object nobody recorded.
    key = f"clips/{clip.project_id}/{clip.pk}-deadbeef0000.mp4"
    upload = s3.client.create_multipart_upload(Bucket=s3.name, Key=key)
    s3.client.upload_part(
        Bucket=s3.name, Key=key, UploadId=upload["UploadId"], PartNumber=1, Body=b"x" * MiB
    )
    orphan = f"clips/{clip.project_id}/{clip.pk}-0123456789ab.mp4"
    s3.client.put_object(Bucket=s3.name, Key=orphan, Body=b"probed, never recorded")
    # Another clip's upload whose id starts with this one's is not this clip's.
    other = f"clips/{clip.project_id}/{clip.pk}0-deadbeef0000.mp4"
    other_upload = s3.client.create_multipart_upload(Bucket=s3.name, Key=other)
    assert sorted(s3.uploads()) == sorted([key, other])

    # Younger than the queue's timeout: its worker may be alive, so nothing is touched.
    prefix = f"clips/{clip.project_id}/{clip.pk}-"
    assert storage_upload.sweep(default_storage, prefix=prefix, older_than=600) == 0
    assert sorted(s3.uploads()) == sorted([key, other]) and s3.objects() == [orphan]

    # As if the queue's timeout had passed since (only then can its worker be dead).
    monkeypatch.setattr(mirror, "_leftover_age", lambda: 0.0)
    clip = mirrored(clip)
    assert clip.status == ClipStatus.READY and clip.mirror_attempts == 2
    assert s3.uploads() == [other] and s3.objects() == [clip.file_key]
    s3.client.abort_multipart_upload(Bucket=s3.name, Key=other, UploadId=other_upload["UploadId"])


@pytest.mark.s3
def test_a_link_answering_500_on_s3_ends_failed_with_nothing_stored(files, s3):
    link = Link(status=500)
    clip = mirrored(saving_clip(files.serve("/v.mp4", link)))
    assert clip.status == ClipStatus.FAILED
    assert link.requests == mirror.MAX_ATTEMPTS
    assert s3.objects() == [] and s3.uploads() == []


@pytest.mark.s3
def test_a_second_run_that_loses_the_race_deletes_its_object(files, video, s3, monkeypatch):
    clip = saving_clip(files.serve("/v.mp4", Link(body=video)))
    record = mirror._record
    calls = []

    def other_run_finishes_first(clip: Clip, result: mirror.Mirrored) -> None:
        calls.append(result.key)
        if len(calls) == 1:
            # Another worker mirrors the clip between our upload and our bookkeeping.
            mirror.mirror_clip(clip_id=clip.pk)
        record(clip, result)

    monkeypatch.setattr(mirror, "_record", other_run_finishes_first)
    mirror.mirror_clip(clip_id=clip.pk)
    clip.refresh_from_db()

    assert clip.status == ClipStatus.READY
    ours, theirs = calls
    assert ours != theirs and clip.file_key == theirs
    assert final_key(clip).fullmatch(ours) and final_key(clip).fullmatch(theirs)
    assert s3.objects() == [theirs]


# --- what ends a mirror ------------------------------------------------------------------------


def test_a_link_that_answers_404_ends_expired(files):
    link = Link(status=404)
    clip = mirrored(saving_clip(files.serve("/v.mp4", link)))
    assert clip.status == ClipStatus.EXPIRED
    assert clip.error_message == (
        "The provider's download link expired before the video could be saved."
    )
    assert clip.provider_message == "HTTP 404"
    assert link.requests == 1


def test_a_link_answering_500_for_ever_ends_failed_after_bounded_tries(files, settings):
    link = Link(status=500)
    clip = mirrored(saving_clip(files.serve("/v.mp4", link)))

    assert clip.status == ClipStatus.FAILED
    assert link.requests == mirror.MAX_ATTEMPTS == clip.mirror_attempts
    assert clip.error_message.startswith(
        f"The provider's video could not be downloaded after {mirror.MAX_ATTEMPTS} tries "
        "(HTTP 500). Nothing more will be tried"
    )
    assert "will be tried again" not in clip.error_message
    assert local_leftovers(settings) == []
    mirrored(clip)
    assert link.requests == mirror.MAX_ATTEMPTS


def test_tries_are_counted_across_task_runs(files, monkeypatch):
    # A wait longer than the task has left: each run makes one try and hands over.
    monkeypatch.setattr(mirror, "RETRY_BASE_SECONDS", 10_000.0)
    monkeypatch.setattr(mirror, "RETRY_MAX_SECONDS", 10_000.0)
    link = Link(status=503)
    clip = saving_clip(files.serve("/v.mp4", link))
    for run in range(1, mirror.MAX_ATTEMPTS):
        clip = mirrored(clip)
        assert clip.status == ClipStatus.MIRRORING
        assert clip.mirror_attempts == run == link.requests
        assert clip.phase == f"Saving the video: try {run} of 5 failed (HTTP 503)"
    clip = mirrored(clip)
    assert clip.status == ClipStatus.FAILED
    assert link.requests == mirror.MAX_ATTEMPTS
    assert "after 5 tries (HTTP 503)" in clip.error_message


def test_tries_lost_with_their_workers_still_end_the_mirror(files):
    link = Link(status=500)
    clip = mirrored(saving_clip(files.serve("/v.mp4", link), mirror_attempts=mirror.MAX_ATTEMPTS))
    assert clip.status == ClipStatus.FAILED
    assert link.requests == 0
    assert "after 5 tries (the last try was interrupted)" in clip.error_message


def test_a_link_past_its_expiry_is_not_tried_again(files):
    link = Link(status=500)
    clip = saving_clip(
        files.serve("/v.mp4", link), result_expires_at=timezone.now() - timedelta(minutes=1)
    )
    clip = mirrored(clip)
    assert clip.status == ClipStatus.EXPIRED
    assert link.requests == 1
    assert "expired while the studio was still trying" in clip.error_message


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "gopher://127.0.0.1:70/1", "ftp://example.com/video.mp4"]
)
def test_a_link_that_is_not_http_ends_failed_with_a_plain_message(url):
    clip = mirrored(saving_clip(url))
    assert clip.status == ClipStatus.FAILED
    assert clip.error_code == "blocked_url"
    assert clip.error_message == (
        "The studio did not download the provider's video: "
        "Only http:// and https:// links can be fetched."
    )
    assert clip.mirror_attempts == 1


def test_a_private_address_is_refused_for_a_real_provider(files, video):
    link = Link(body=video)
    clip = mirrored(saving_clip(files.serve("/v.mp4", link), sandbox=False))
    assert clip.status == ClipStatus.FAILED
    assert clip.error_code == "blocked_url"
    assert "private or local address" in clip.error_message
    assert link.requests == 0


def test_a_video_larger_than_the_limit_fails_without_leftovers(files, video, monkeypatch, settings):
    monkeypatch.setattr(mirror, "MAX_VIDEO_BYTES", 4 * MiB)
    clip = mirrored(saving_clip(files.serve("/v.mp4", Link(body=video))))
    assert clip.status == ClipStatus.FAILED and clip.error_code == "too_large"
    assert local_leftovers(settings) == []


def raw_h263(frames: int = 10) -> bytes:
    """A bare H.263 stream, no container: FFmpeg reads it, but it has no length to play."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="h263") as out:
        stream = out.add_stream("h263", rate=25)
        stream.width, stream.height, stream.pix_fmt = 352, 288, "yuv420p"
        for _ in range(frames):
            for packet in stream.encode(av.VideoFrame(352, 288, "yuv420p")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buffer.getvalue()


def test_a_raw_stream_with_no_length_is_no_playable_video():
    with av.open(io.BytesIO(raw_h263())) as container:
        assert container.streams.video[0].codec_context.width == 352  # FFmpeg reads it
    with pytest.raises(media.NotAVideo, match="no length"):
        media.probe(io.BytesIO(raw_h263()))


@pytest.mark.parametrize("seed", [37, 2700])
def test_noise_is_never_taken_for_a_video(seed):
    # With the FFmpeg PyAV ships (8.1), seed 37's bytes pass for a raw H.263 stream (about
    # 1 random buffer in 150 does), and seed 2700's carry tags that are not UTF-8, which
    # PyAV raised as a UnicodeDecodeError: the mirror's "not a video" test failed on both.
    noise = random.Random(seed).randbytes(256 * 1024)
    with pytest.raises(media.NotAVideo):
        media.probe(io.BytesIO(noise))


def test_a_file_that_is_not_a_video_fails_and_is_not_kept(files, settings):
    clip = mirrored(saving_clip(files.serve("/v.mp4", Link(body=os.urandom(3 * MiB)))))
    assert clip.status == ClipStatus.FAILED and clip.error_code == "not_a_video"
    assert local_leftovers(settings) == []
    folder = Path(default_storage.path(f"clips/{clip.project_id}"))
    assert not folder.exists() or list(folder.iterdir()) == []


@pytest.mark.s3
def test_a_file_that_is_not_a_video_is_deleted_from_s3_after_the_probe(files, s3):
    # Three parts: the upload completes under the final key before the probe refuses it.
    clip = mirrored(saving_clip(files.serve("/v.mp4", Link(body=os.urandom(20 * MiB)))))
    assert clip.status == ClipStatus.FAILED and clip.error_code == "not_a_video"
    assert s3.objects() == [] and s3.uploads() == []


# --- the filesystem backend --------------------------------------------------------------------


def test_the_filesystem_backend_writes_the_final_file_once_and_leaves_no_temp_files(
    files, video, settings, tmp_path, monkeypatch
):
    import tempfile

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    seen: list[list[str]] = []
    link = Link(
        body=video,
        cut_after=10 * MiB,
        cuts=1,
        cut_when=lambda: bool(local_leftovers(settings)),
        on_request=lambda: seen.append(local_leftovers(settings)),
    )
    clip = mirrored(saving_clip(files.serve("/v.mp4", link)))

    assert clip.status == ClipStatus.READY, clip.error_message
    assert seen[1] == [], "the cut try left its part file behind"
    assert final_key(clip).fullmatch(clip.file_key), clip.file_key
    assert clip.sha256 == hashlib.sha256(video).hexdigest()
    assert Path(default_storage.path(clip.file_key)).read_bytes() == video
    folder = Path(default_storage.path(clip.file_key)).parent
    assert [p.name for p in folder.iterdir()] == [Path(clip.file_key).name]
    assert local_leftovers(settings) == []
    assert list(scratch.iterdir()) == []


def test_part_sizes_fit_five_gib_in_s3s_part_limit():
    size = storage_upload.part_size(5 * 1024**3)
    assert size >= 5 * MiB and size % MiB == 0
    assert -(-5 * 1024**3 // size) <= 10_000
    assert storage_upload.part_size(200 * 1024**3) * 10_000 >= 200 * 1024**3


def test_storage_that_refuses_every_write_ends_failed_saying_so(files, video, settings, tmp_path):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the media folder should be")
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": blocked},
        },
    }
    link = Link(body=video)
    clip = mirrored(saving_clip(files.serve("/v.mp4", link)))
    assert clip.status == ClipStatus.FAILED and clip.error_code == "storage_failed"
    assert clip.error_message.startswith(
        "The video could not be saved to the studio's storage after 5 tries."
    )
    assert link.requests == mirror.MAX_ATTEMPTS
