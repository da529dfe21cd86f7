"""Trimming segments on the chain page: in and out points per segment, placed on frames; the
chain plays and the export stitches only what they keep, and lasts exactly that long."""

from __future__ import annotations

import tempfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.core.files import File
from django.core.files.storage import default_storage

from tests.chain_helpers import stored_clip
from tests.conftest import grant_spending
from videos import chains, export, media, trim
from videos.models import (
    Activity,
    ChainExport,
    Clip,
    ClipKind,
    ClipStatus,
    ExportStatus,
    Membership,
    ProviderAccount,
    Role,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def kling(db):
    return ProviderAccount.objects.create(
        all_projects=True,
        kind="kling",
        label="Kling",
        base_url="http://127.0.0.1:9/sandbox/kling",
        credential="AKtrim0123456789",
        secret_key="sandbox-secret-AKtrim0123456789",
    )


@pytest.fixture
def chain(project, user, kling):
    """Three 4 s parts at 24 fps; the second returned the whole video (new from 4 s)."""
    root = stored_clip(project=project, user=user, account=kling, seconds=4, size=(160, 90))
    whole = stored_clip(
        project=project,
        user=user,
        account=kling,
        seconds=8,
        size=(160, 90),
        parent=root,
        kind=ClipKind.EXTEND,
        new_from=4.0,
        is_main_line=True,
    )
    last = stored_clip(
        project=project,
        user=user,
        account=kling,
        seconds=4,
        size=(160, 90),
        parent=whole,
        kind=ClipKind.CONTINUE,
        is_main_line=True,
        start_at=8,
    )
    return root, whole, last


def lengths(root) -> list[float]:
    return [round(segment.length, 4) for segment in chains.timeline(root).segments]


def test_cuts_are_placed_on_frames_of_the_clips_own_video(user, chain):
    root, whole, _ = chain
    trim.set_trim(clip=root, user=user, cut_in=1.23, cut_out=3.3)
    root.refresh_from_db()
    assert root.trim_in == pytest.approx(30 / 24)  # 29.52 frames in: frame 30
    assert root.trim_out == pytest.approx(79 / 24)
    # The second part's cuts count from its first new frame, 4 s into its video.
    trim.set_trim(clip=whole, user=user, cut_in=0.5, cut_out=None)
    whole.refresh_from_db()
    assert (whole.trim_in, whole.trim_out) == (0.5, None)
    assert whole.kept_range() == (4.5, 8.0)
    line = chains.timeline(root)
    assert lengths(root) == [round(49 / 24, 4), 3.5, 4.0]
    assert line.total == pytest.approx(49 / 24 + 3.5 + 4.0)
    assert line.segments[1].offset == pytest.approx(49 / 24)
    assert Activity.objects.filter(verb="trimmed", clip=root).exists()


def test_a_cut_at_either_end_is_no_cut(user, chain):
    root = chain[0]
    trim.set_trim(clip=root, user=user, cut_in=0.001, cut_out=4.0)
    root.refresh_from_db()
    assert (root.trim_in, root.trim_out) == (None, None)
    assert not chains.timeline(root).segments[0].is_trimmed


@pytest.mark.parametrize(
    "cut_in, cut_out, field, words",
    [
        (-1, None, "trim_in", "before the start"),
        (None, 4.5, "trim_out", "past the end"),
        (3.0, 2.0, "trim_out", "after the in point"),
        (1.0, 1.2, "trim_out", "Keep at least 0.5 s"),
    ],
)
def test_impossible_cuts_are_refused_by_their_field(user, chain, cut_in, cut_out, field, words):
    root = chain[0]
    with pytest.raises(trim.TrimError) as refused:
        trim.set_trim(clip=root, user=user, cut_in=cut_in, cut_out=cut_out)
    assert refused.value.field == field and words in refused.value.message
    root.refresh_from_db()
    assert (root.trim_in, root.trim_out) == (None, None)


def test_the_chain_page_offers_in_and_out_fields_that_work_without_javascript(client, user, chain):
    root, whole, _ = chain
    client.force_login(user)
    page = client.get(f"/clips/{root.pk}/chain/").content.decode()
    assert f'action="/clips/{whole.pk}/trim/"' in page and 'name="trim_in"' in page
    assert "data-trim-strip" in page

    response = client.post(f"/clips/{whole.pk}/trim/", {"trim_in": "1", "trim_out": "3"})

    assert response.status_code == 302
    assert response["Location"] == f"/clips/{root.pk}/chain/#segment-{whole.pk}"
    assert lengths(root) == [4.0, 2.0, 4.0]
    page = client.get(f"/clips/{root.pk}/chain/").content.decode()
    assert "Undo the trim" in page
    segments = chains.timeline(root).segments
    assert (segments[1].start, segments[1].end) == (5.0, 7.0)  # what the player plays

    client.post(f"/clips/{whole.pk}/trim/", {"trim_in": "1", "trim_out": "3", "reset": "1"})
    assert lengths(root) == [4.0, 4.0, 4.0]


def test_a_refused_trim_comes_back_with_its_reason_by_the_fields(client, user, chain):
    root = chain[0]
    client.force_login(user)
    for data, words in (
        ({"trim_in": "0", "trim_out": "9"}, "The out point is past the end"),
        ({"trim_in": "abc"}, "Enter a number."),
    ):
        response = client.post(f"/clips/{root.pk}/trim/", data)
        assert response.status_code == 400
        page = response.content.decode()
        assert words in page and 'class="trim-form has-error"' in page
    root.refresh_from_db()
    assert (root.trim_in, root.trim_out) == (None, None)


def person(project, name: str, role: str):
    who = get_user_model().objects.create_user(name, f"{name}@example.com")
    if role:
        Membership.objects.create(project=project, user=who, role=role)
    if role in {Role.ADMIN, Role.CREATOR}:
        grant_spending(who)
    return who


@pytest.mark.parametrize(
    "role, status",
    [(Role.ADMIN, 302), (Role.CREATOR, 302), (Role.REVIEWER, 403), ("", 404)],
)
def test_who_may_trim(client, project, chain, role, status):
    client.force_login(person(project, "someone", role))
    response = client.post(f"/clips/{chain[0].pk}/trim/", {"trim_in": "1"})
    assert response.status_code == status
    chain[0].refresh_from_db()
    assert (chain[0].trim_in is not None) is (status == 302)


def test_reviewers_see_the_trim_but_no_handles(client, project, user, chain):
    trim.set_trim(clip=chain[0], user=user, cut_in=1.0, cut_out=None)
    client.force_login(person(project, "riley", Role.REVIEWER))
    page = client.get(f"/clips/{chain[0].pk}/chain/").content.decode()
    assert "data-trim-strip" not in page and 'name="trim_in"' not in page
    assert "Trimmed: plays 1.00–4.00 s of its 4.00 s of new footage" in page


def test_visitors_and_get_requests(client, user, chain):
    assert client.post(f"/clips/{chain[0].pk}/trim/").status_code == 302  # to log in
    client.force_login(user)
    assert client.get(f"/clips/{chain[0].pk}/trim/").status_code == 405


def test_an_unfinished_clip_cannot_be_trimmed(client, user, chain):
    Clip.objects.filter(pk=chain[2].pk).update(status=ClipStatus.FAILED)
    client.force_login(user)
    response = client.post(f"/clips/{chain[2].pk}/trim/", {"trim_in": "1"}, follow=True)
    assert "Only a clip with a finished video can be trimmed." in response.content.decode()


# --- the export --------------------------------------------------------------------------------


def run(root, user) -> ChainExport:
    made = chains.start_export(root=root, user=user)
    export.run_export(export_id=made.pk)
    made.refresh_from_db()
    return made


def probe(key: str) -> media.VideoInfo:
    with default_storage.open(key, "rb") as stored:
        return media.probe(stored)


@pytest.mark.django_db(transaction=True)
def test_a_trimmed_export_lasts_exactly_the_sum_of_the_trimmed_parts(user, chain):
    root, whole, last = chain
    trim.set_trim(clip=root, user=user, cut_in=None, cut_out=2.5)
    trim.set_trim(clip=whole, user=user, cut_in=0.75, cut_out=3.0)
    expected = 2.5 + 2.25 + 4.0
    assert chains.timeline(root).total == pytest.approx(expected)

    made = run(root, user)

    assert made.status == ExportStatus.READY, made.error_message
    # The second cut starts between keyframes: stitched by re-encoding.
    assert made.stream_copied is False
    info = probe(made.file_key)
    assert info.duration == pytest.approx(expected, abs=1e-3)
    with default_storage.open(made.file_key, "rb") as stored, av.open(stored) as container:
        assert sum(1 for _ in container.decode(video=0)) == round(expected * 24)


def keyframed_clip(project, user, account, *, seconds: int, keyframe_every: int, **fields) -> Clip:
    """A 24 fps clip with a keyframe every ``keyframe_every`` frames, its frames numbered by
    brightness so that what the export kept can be read back."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "keyed.mp4"
        with av.open(str(path), "w", format="mp4") as container:
            every = keyframe_every
            stream = container.add_stream(
                "libx264",
                rate=24,
                options={
                    "preset": "veryfast",
                    "x264-params": f"keyint={every}:min-keyint={every}:scenecut=0:bframes=0",
                },
            )
            stream.width, stream.height, stream.pix_fmt = 160, 96, "yuv420p"
            stream.time_base = Fraction(1, 24)
            for index in range(seconds * 24):
                picture = np.full((96, 160, 3), index % 250, dtype=np.uint8)
                frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
                frame.pts = index
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        info = media.probe(str(path))
        with path.open("rb") as handle:
            key = default_storage.save(f"clips/{project.pk}/keyed.mp4", File(handle))
    return Clip.objects.create(
        project=project,
        created_by=user,
        provider_account=account,
        model="kling-v1-6",
        prompt="Numbered frames",
        params={"duration": seconds},
        status=ClipStatus.READY,
        file_key=key,
        duration_seconds=info.duration,
        width=info.width,
        height=info.height,
        provider_task_id=f"task-keyed-{key[-12:]}",
        **fields,
    )


@pytest.mark.django_db(transaction=True)
def test_cuts_on_keyframes_are_joined_without_re_encoding(project, user, kling):
    root = keyframed_clip(project, user, kling, seconds=4, keyframe_every=24)
    take = keyframed_clip(
        project,
        user,
        kling,
        seconds=4,
        keyframe_every=24,
        parent=root,
        root=root,
        kind=ClipKind.CONTINUE,
        is_main_line=True,
    )
    trim.set_trim(clip=root, user=user, cut_in=1.0, cut_out=3.0)  # keyframes at 1 s and 3 s
    trim.set_trim(clip=take, user=user, cut_in=None, cut_out=2.0)

    made = run(root, user)

    assert made.status == ExportStatus.READY, made.error_message
    assert made.stream_copied is True
    assert probe(made.file_key).duration == pytest.approx(4.0, abs=1e-3)
    with default_storage.open(made.file_key, "rb") as stored, av.open(stored) as container:
        levels = [
            int(frame.to_ndarray(format="gray").mean().round())
            for frame in container.decode(video=0)
        ]
    assert len(levels) == 96
    # Frames 24-71 of the first part, then 0-47 of the second (brightness ~ frame number).
    assert abs(levels[0] - 24) <= 3 and abs(levels[47] - 71) <= 3
    assert abs(levels[48] - 0) <= 3 and abs(levels[95] - 47) <= 3
