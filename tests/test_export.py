"""Exporting a chain's main line into one MP4 with PyAV."""

from __future__ import annotations

import hashlib
import math
import re
import struct
from datetime import timedelta
from fractions import Fraction

import av
import pytest
from django.core.files.storage import default_storage
from django.utils import timezone

from tests.chain_helpers import finish, generate, stored_clip
from videos import chains, export, media, storage_upload
from videos.models import ChainExport, ClipKind, ExportStatus

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def quick_sandbox(fast_sandbox, settings):
    # A chain waits on several provider tasks in a row; the twin's need not take long.
    settings.SANDBOX_TASK_SECONDS = 0.5


def export_ready(export_id: int):
    def check() -> bool:
        return ChainExport.objects.get(pk=export_id).status in {
            ExportStatus.READY,
            ExportStatus.FAILED,
        }

    return check


def run_export(client, drain_queue, root) -> ChainExport:
    response = client.post(f"/clips/{root.pk}/export/")
    assert response.status_code == 302
    made = ChainExport.objects.get(root=root)
    drain_queue(until=export_ready(made.pk), timeout=60)
    made.refresh_from_db()
    return made


def probe_stored(key: str) -> media.VideoInfo:
    with default_storage.open(key, "rb") as stored:
        return media.probe(stored)


def test_the_exported_mp4_lasts_exactly_as_long_as_the_main_line(
    client, user, project, live_server, sandbox_account, drain_queue
):
    # Kling returns each extension as the whole video: the export must take only the new
    # part of each, or the chain's first seconds would play twice.
    account = sandbox_account("kling")
    root = generate(
        drain_queue,
        project=project,
        user=user,
        account=account,
        model="kling-v1-6",
        params={"duration": 5, "aspect_ratio": "16:9", "resolution": "std"},
        prompt="Lanterns along a canal",
    )
    take = finish(drain_queue, chains.extend_clip(source=root, user=user, prompt="A boat passes"))
    line = chains.timeline(root)
    expected = sum(segment.length for segment in line.segments)
    assert expected == pytest.approx(take.duration_seconds, abs=0.01)

    client.force_login(user)
    made = run_export(client, drain_queue, root)

    assert made.status == ExportStatus.READY, made.error_message
    assert made.segments == [root.pk, take.pk]
    info = probe_stored(made.file_key)
    assert info.duration == pytest.approx(expected, abs=1 / 24 + 0.001)
    assert made.duration_seconds == info.duration
    download = client.get(f"/exports/{made.pk}/video.mp4")
    data = b"".join(download.streaming_content)
    assert hashlib.sha256(data).hexdigest() == made.sha256 and len(data) == made.file_size
    page = client.get(f"/clips/{root.pk}/chain/").content.decode()
    assert f'href="/exports/{made.pk}/video.mp4"' in page
    assert "hx-trigger" not in re.search(r'<div id="export-status"[^>]*>', page)[0]


def test_matching_segments_are_joined_without_re_encoding_and_branches_are_left_out(
    client, user, project, live_server, sandbox_account, drain_queue
):
    account = sandbox_account("apimart")
    root = stored_clip(project=project, user=user, account=account, seconds=8)
    raw = stored_clip(
        project=project,
        user=user,
        account=account,
        seconds=7,
        start_at=8,
        parent=root,
        kind=ClipKind.EXTEND,
        is_main_line=True,
    )
    stored_clip(
        project=project,
        user=user,
        account=account,
        seconds=15,
        parent=root,
        kind=ClipKind.EXTEND,
        new_from=8,
    )  # an alternative take
    client.force_login(user)
    made = run_export(client, drain_queue, root)
    assert made.status == ExportStatus.READY, made.error_message
    assert made.segments == [root.pk, raw.pk]
    assert made.stream_copied is True
    assert probe_stored(made.file_key).duration == pytest.approx(15, abs=0.001)
    with default_storage.open(made.file_key, "rb") as stored, av.open(stored) as container:
        assert sum(1 for _ in container.decode(video=0)) == 15 * 24


def test_segments_that_differ_are_re_encoded_into_the_first_segments_frame(
    client, user, project, live_server, sandbox_account, drain_queue
):
    account = sandbox_account("kling")
    root = stored_clip(project=project, user=user, account=account, seconds=8)
    whole = stored_clip(
        project=project,
        user=user,
        account=account,
        seconds=12,
        parent=root,
        kind=ClipKind.EXTEND,
        new_from=8,
    )
    stored_clip(
        project=project,
        user=user,
        account=account,
        seconds=5,
        parent=whole,
        kind=ClipKind.CONTINUE,
        size=(270, 480),
    )
    client.force_login(user)
    made = run_export(client, drain_queue, root)
    assert made.status == ExportStatus.READY, made.error_message
    assert made.stream_copied is False
    info = probe_stored(made.file_key)
    assert (info.width, info.height, info.codec) == (480, 270, "h264")
    assert info.duration == pytest.approx(8 + 4 + 5, abs=0.001)


def _with_sound(path: str, seconds: float, rate: int) -> None:
    with av.open(path, "w") as out:
        video = out.add_stream("libx264", rate=24)
        video.width, video.height, video.pix_fmt = 320, 180, "yuv420p"
        audio = out.add_stream("aac", rate=rate, layout="mono")
        for index in range(round(seconds * 24)):
            frame = av.VideoFrame(320, 180, "yuv420p")
            frame.pts, frame.time_base = index, Fraction(1, 24)
            for packet in video.encode(frame):
                out.mux(packet)
        done, total = 0, round(seconds * rate)
        while done < total:
            count = min(1024, total - done)
            frame = av.AudioFrame(format="s16", layout="mono", samples=count)
            tone = (
                int(8000 * math.sin(2 * math.pi * 440 * (done + n) / rate)) for n in range(count)
            )
            frame.planes[0].update(b"".join(struct.pack("<h", sample) for sample in tone))
            frame.sample_rate, frame.pts, frame.time_base = rate, done, Fraction(1, rate)
            for packet in audio.encode(frame):
                out.mux(packet)
            done += count
        for stream in (video, audio):
            for packet in stream.encode():
                out.mux(packet)


def test_sound_stays_in_step_with_the_picture_across_segments(tmp_path):
    from sandbox.render import render_mp4

    _with_sound(str(tmp_path / "a.mp4"), 3, 44100)
    render_mp4(tmp_path / "silent.mp4", seconds=2, width=320, height=180, scene="x", caption="x")
    _with_sound(str(tmp_path / "whole.mp4"), 6, 48000)
    pieces = [
        export.Piece(str(tmp_path / "a.mp4"), 0, 3),
        export.Piece(str(tmp_path / "silent.mp4"), 0, 2),
        export.Piece(str(tmp_path / "whole.mp4"), 2, 6),
    ]
    out = str(tmp_path / "out.mp4")
    result = export.stitch(pieces, out)
    assert result.stream_copied is False
    with av.open(out) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert float(video.duration * video.time_base) == pytest.approx(9, abs=0.001)
        samples = sum(frame.samples for frame in container.decode(audio))
    assert samples / audio.rate == pytest.approx(9, abs=0.05)


def test_the_chain_page_shows_a_progress_bar_while_the_export_runs(
    client, user, project, live_server, sandbox_account
):
    account = sandbox_account("apimart")
    root = stored_clip(project=project, user=user, account=account, seconds=8)
    made = ChainExport.objects.create(
        root=root, created_by=user, segments=[root.pk], status=ExportStatus.RUNNING, progress=40
    )
    client.force_login(user)
    page = client.get(f"/clips/{root.pk}/chain/").content.decode()
    assert '<progress id="export-progress" max="100" value="40"' in page
    assert f'hx-get="/clips/{root.pk}/export/status/"' in page
    fragment = client.get(f"/clips/{root.pk}/export/status/", headers={"HX-Request": "true"})
    html = fragment.content.decode()
    assert html.lstrip().startswith('<div id="export-status"') and "Stitching" in html
    ChainExport.objects.filter(pk=made.pk).update(
        status=ExportStatus.READY, progress=100, file_key="exports/x.mp4", duration_seconds=8
    )
    html = client.get(
        f"/clips/{root.pk}/export/status/", headers={"HX-Request": "true"}
    ).content.decode()
    assert "hx-trigger" not in html and "Download MP4" in html


def test_an_export_whose_segment_lost_its_video_fails_with_a_message(
    client, user, project, live_server, sandbox_account, drain_queue
):
    account = sandbox_account("apimart")
    root = stored_clip(project=project, user=user, account=account, seconds=8)
    default_storage.delete(root.file_key)
    client.force_login(user)
    made = run_export(client, drain_queue, root)
    assert made.status == ExportStatus.FAILED
    assert made.error_message.startswith("The chain could not be stitched")
    assert (
        "The chain could not be stitched" in client.get(f"/clips/{root.pk}/chain/").content.decode()
    )


def test_a_chain_with_nothing_finished_cannot_be_exported(
    client, user, project, live_server, sandbox_account
):
    account = sandbox_account("apimart")
    root = stored_clip(project=project, user=user, account=account, seconds=8, status="failed")
    client.force_login(user)
    response = client.post(f"/clips/{root.pk}/export/", follow=True)
    assert "This chain has no finished video to export yet." in response.content.decode()
    assert not ChainExport.objects.exists()


def stalled_export(root, user) -> ChainExport:
    """An export whose worker was lost: running for longer than any export may run."""
    return ChainExport.objects.create(
        root=root,
        created_by=user,
        segments=[root.pk],
        status=ExportStatus.RUNNING,
        created_at=timezone.now() - ChainExport.STALLED_AFTER - timedelta(minutes=1),
    )


def test_an_export_that_lost_its_worker_can_be_made_again(
    client, user, project, live_server, sandbox_account
):
    root = stored_clip(project=project, user=user, account=sandbox_account("apimart"), seconds=8)
    lost = stalled_export(root, user)
    client.force_login(user)
    page = client.get(f"/clips/{root.pk}/chain/").content.decode()
    assert "This export stopped before it finished." in page
    assert "hx-trigger" not in re.search(r'<div id="export-status"[^>]*>', page)[0]
    # The queue's redelivery of the lost task takes it over; a live one is left alone.
    assert lost.claim() is True
    fresh = ChainExport.objects.create(
        root=root, created_by=user, segments=[root.pk], status=ExportStatus.RUNNING
    )
    assert fresh.claim() is False


def test_a_stalled_export_finished_twice_keeps_one_file_and_deletes_the_other(
    user, project, live_server, sandbox_account, monkeypatch
):
    # The queue redelivered a stalled export; the stalled run then finished first after all.
    root = stored_clip(project=project, user=user, account=sandbox_account("apimart"), seconds=2)
    made = stalled_export(root, user)
    upload = export._upload
    ours: list[str] = []

    def other_run_finishes_first(job, path, bar):
        key, size, sha256 = upload(job, path, bar)
        ours.append(key)
        ChainExport.objects.filter(pk=job.pk).update(
            status=ExportStatus.READY, file_key="exports/by-the-other-run.mp4"
        )
        return key, size, sha256

    monkeypatch.setattr(export, "_upload", other_run_finishes_first)
    export.run_export(export_id=made.pk)

    made.refresh_from_db()
    assert made.status == ExportStatus.READY
    assert made.file_key == "exports/by-the-other-run.mp4"
    assert ours and not default_storage.exists(ours[0])
    # A run that fails late leaves the finished export as it is.
    made.mark_failed("The chain could not be stitched: late")
    made.refresh_from_db()
    assert made.status == ExportStatus.READY and made.error_message == ""


def test_a_stalled_run_failing_late_leaves_the_export_to_the_run_that_took_it_over(
    user, project, live_server, sandbox_account
):
    root = stored_clip(project=project, user=user, account=sandbox_account("apimart"), seconds=2)
    made = stalled_export(root, user)
    stalled = ChainExport.objects.get(pk=made.pk)
    taken_over = ChainExport.objects.get(pk=made.pk)
    # Both claims went through: the first run's (now stalled), then the redelivery's.
    ChainExport.objects.filter(pk=made.pk).update(status=ExportStatus.QUEUED)
    assert stalled.claim() is True
    assert taken_over.claim() is True  # it has run for longer than any export may
    assert (stalled.attempt, taken_over.attempt) == (1, 2)

    # The stalled run fails after all: the export is still the other run's to finish.
    assert stalled.mark_failed("The chain could not be stitched: the upload was swept") is False
    stalled.record_progress(5)
    taken_over.record_progress(60)
    made.refresh_from_db()
    assert (made.status, made.progress, made.error_message) == (ExportStatus.RUNNING, 60, "")
    assert taken_over.mark_ready(
        file_key="exports/b.mp4",
        file_size=1,
        sha256="0" * 64,
        duration_seconds=2.0,
        stream_copied=True,
    )
    made.refresh_from_db()
    assert (made.status, made.file_key) == (ExportStatus.READY, "exports/b.mp4")


def _reencoded_chain(project, user, account, *, seconds: float) -> list:
    """A root and a continuation of another shape: stitching must encode every frame."""
    root = stored_clip(project=project, user=user, account=account, seconds=seconds)
    other = stored_clip(
        project=project,
        user=user,
        account=account,
        seconds=seconds,
        parent=root,
        kind=ClipKind.CONTINUE,
        size=(270, 480),
    )
    return [root, other]


def test_the_export_shows_its_progress_while_fetching_stitching_and_uploading(
    client, user, project, live_server, sandbox_account, drain_queue, monkeypatch
):
    root, _ = _reencoded_chain(project, user, sandbox_account("kling"), seconds=4)
    seen: list[int] = []
    record = ChainExport.record_progress

    def remember(self, progress: int) -> None:
        seen.append(progress)
        record(self, progress)

    monkeypatch.setattr(ChainExport, "record_progress", remember)
    client.force_login(user)
    made = run_export(client, drain_queue, root)

    assert made.status == ExportStatus.READY, made.error_message
    assert seen == sorted(seen)
    assert [p for p in seen if p <= 10] and [p for p in seen if 10 < p < 90]
    assert seen[-1] == 99 and made.progress == 100


def test_an_export_that_cannot_finish_before_the_queue_timeout_fails_with_a_reason(
    user, project, live_server, sandbox_account, settings, tmp_path
):
    # With 30 s allowed, less the minute kept for the upload, no stitching can fit.
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "timeout": 30}
    root, other = _reencoded_chain(project, user, sandbox_account("kling"), seconds=4)
    made = ChainExport.objects.create(root=root, created_by=user, segments=[root.pk, other.pk])

    export.run_export(export_id=made.pk)
    made.refresh_from_db()

    assert made.status == ExportStatus.FAILED
    assert made.error_message.startswith("Stitching this chain would take about 1 minute,")
    assert "more than an export may run (0.5 minutes)" in made.error_message
    media_root = tmp_path / "media"
    assert not (media_root / "exports").exists()
    assert not any(media_root.rglob(f"*{storage_upload.PARTIAL_SUFFIX}"))


def test_a_three_minute_chain_is_re_encoded_into_one_export(
    client, user, project, live_server, sandbox_account, drain_queue
):
    account = sandbox_account("kling")
    root, other = _reencoded_chain(project, user, account, seconds=60)
    stored_clip(
        project=project,
        user=user,
        account=account,
        seconds=60,
        parent=other,
        kind=ClipKind.CONTINUE,
    )
    client.force_login(user)
    response = client.post(f"/clips/{root.pk}/export/")
    assert response.status_code == 302
    made = ChainExport.objects.get(root=root)
    drain_queue(until=export_ready(made.pk), timeout=300)
    made.refresh_from_db()

    assert made.status == ExportStatus.READY, made.error_message
    assert made.stream_copied is False
    assert probe_stored(made.file_key).duration == pytest.approx(180, abs=0.05)


@pytest.mark.s3
def test_an_export_on_s3_is_streamed_up_under_its_final_key_and_leaves_nothing_behind(
    client, user, project, live_server, sandbox_account, drain_queue, s3_storage, s3_server
):
    import boto3

    root, _ = _reencoded_chain(project, user, sandbox_account("kling"), seconds=4)
    calls: list[tuple[str, str]] = []

    def seen(params, model, **kwargs) -> None:
        calls.append((model.name, params.get("Key", "")))

    events = default_storage.connection.meta.client.meta.events
    events.register("before-parameter-build.s3", seen)
    client.force_login(user)
    try:
        made = run_export(client, drain_queue, root)
    finally:
        events.unregister("before-parameter-build.s3", seen)

    assert made.status == ExportStatus.READY, made.error_message
    # A random token chosen before the upload, not the hash: no server-side copy needed.
    assert re.fullmatch(rf"exports/{project.pk}/{made.pk}-[0-9a-f]{{12}}\.mp4", made.file_key)
    # Written once, straight under its final key (a few MB: one PutObject); nothing copied.
    writes = [name for name, key in calls if key == made.file_key]
    assert "PutObject" in writes or "CompleteMultipartUpload" in writes, calls
    assert "CopyObject" not in [name for name, _ in calls]
    with storage_upload.open_ranged(default_storage, made.file_key) as stored:
        data = stored.read()
    assert hashlib.sha256(data).hexdigest() == made.sha256 and len(data) == made.file_size
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_server.endpoint_url,
        aws_access_key_id=s3_server.access_key,
        aws_secret_access_key=s3_server.secret_key,
        region_name=s3_server.region,
    )
    assert s3.list_multipart_uploads(Bucket=s3_storage).get("Uploads", []) == []
    keys = [entry["Key"] for entry in s3.list_objects_v2(Bucket=s3_storage)["Contents"]]
    assert [key for key in keys if key.startswith("exports/")] == [made.file_key]
