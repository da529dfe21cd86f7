"""The hand-off between parts: the sharpest late frame is sent, colours can be matched to the
first part, and every provider twin starts its video from the frame it was given."""

from __future__ import annotations

import base64
import io

import av
import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.test import RequestFactory
from PIL import Image

from sandbox import inputs
from sandbox.models import SandboxTask
from tests.chain_helpers import finish, generate, stored_clip
from videos import chains, handoff, picture, seams
from videos.models import Clip, Frame

pytestmark = pytest.mark.django_db(transaction=True)

KLING = {"duration": 5, "aspect_ratio": "16:9", "resolution": "std"}


@pytest.fixture(autouse=True)
def quick_sandbox(fast_sandbox, settings):
    # A chain waits on several provider tasks in a row; the twin's need not take long.
    settings.SANDBOX_TASK_SECONDS = 0.5


def frames_of(clip: Clip) -> list[np.ndarray]:
    with default_storage.open(clip.file_key, "rb") as video, av.open(video) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def pixels(content: bytes, size: tuple[int, int]) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(content)).convert("RGB").resize(size))


def scored(drain_queue, clip: Clip) -> Clip:
    drain_queue(until=lambda: seams.is_scored(Clip.objects.get(pk=clip.pk)), timeout=60)
    clip.refresh_from_db()
    return clip


def continued(drain_queue, source: Clip, *, user, account, prompt: str, match: bool = False):
    take = chains.continue_clip(
        source=source,
        user=user,
        account=account,
        model="kling-v1-6",
        prompt=prompt,
        params=KLING,
        match_colours=match,
    )
    return scored(drain_queue, finish(drain_queue, take))


def test_the_hand_off_frame_is_sharper_than_the_blurred_end_the_sandbox_made(
    client, user, project, live_server, sandbox_account, drain_queue
):
    kling = sandbox_account("kling")
    blurred = generate(
        drain_queue,
        project=project,
        user=user,
        account=kling,
        model="kling-v1-6",
        params=KLING,
        prompt="A lighthouse at dusk [sandbox:blur_end]",
    )
    every_frame = frames_of(blurred)
    final_sharpness = picture.sharpness(every_frame[-1])

    picked = handoff.pick(blurred)
    print(
        f"\nfinal frame sharpness {final_sharpness:.0f}; chosen at {picked.at_seconds:.3f} s "
        f"of {picked.end_seconds:.3f} s: {picked.sharpness:.0f}"
    )
    assert picked.sharpness > 3 * final_sharpness
    # Past the blurred quarter second, but still within the last half second.
    assert picked.end_seconds - 0.5 <= picked.at_seconds < picked.end_seconds - 0.2
    assert picked.considered >= 12

    client.force_login(user)
    page = client.get(f"/clips/{blurred.pk}/continue/").content.decode()
    assert f"The frame at <strong>{picked.at_seconds:.2f} s</strong>" in page
    assert "the final frame is softer, so it is not used" in page
    assert 'src="data:image/jpeg;base64,' in page
    # The first part of a chain has nothing to match its colours to.
    assert "Match colours" not in page

    response = client.post(
        f"/clips/{blurred.pk}/continue/",
        {
            "target": f"{kling.pk}:kling-v1-6",
            "prompt": "The light turns",
            "duration": "5",
            "aspect_ratio": "16:9",
            "resolution": "std",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    take = scored(drain_queue, finish(drain_queue, Clip.objects.get(parent=blurred)))
    assert take.quality["handoff"]["at"] == pytest.approx(picked.at_seconds, abs=0.001)
    # What Kling received is the sharp frame, not the blurred last one.
    sent = SandboxTask.objects.get(provider="kling", kind="image2video")
    received = base64.b64decode(sent.request["body"]["image"])
    height, width = every_frame[-1].shape[:2]
    assert picture.sharpness(pixels(received, (width, height))) > 3 * final_sharpness
    assert "sharper than the previous part" in take.quality["seam"]["notes"]


def test_matching_colours_reduces_the_colour_distance_of_the_next_seam(
    client, user, project, live_server, sandbox_account, drain_queue
):
    kling = sandbox_account("kling")
    prompt = "A fox in the snow"
    root = scored(
        drain_queue,
        generate(
            drain_queue,
            project=project,
            user=user,
            account=kling,
            model="kling-v1-6",
            params=KLING,
            prompt=prompt,
        ),
    )
    drifting = f"{prompt} [sandbox:drift]"
    warm = continued(drain_queue, root, user=user, account=kling, prompt=drifting)
    assert "colour shifted warmer" in warm.quality["seam"]["notes"]

    client.force_login(user)
    page = client.get(f"/clips/{warm.pk}/continue/?match_colours=on").content.decode()
    assert "Match colours to the chain’s first part" in page
    assert "Before matching" in page and "Sent, colours matched" in page

    as_it_is = continued(drain_queue, warm, user=user, account=kling, prompt=drifting)
    matched = continued(drain_queue, warm, user=user, account=kling, prompt=drifting, match=True)
    assert matched.quality["handoff"]["matched"] is True
    plain_seam, matched_seam = as_it_is.quality["seam"], matched.quality["seam"]
    plain_drift, matched_drift = as_it_is.quality["drift"], matched.quality["drift"]
    print(
        f"\nseam after part 2, colour difference: {plain_seam['delta_e']:.2f} as it is, "
        f"{matched_seam['delta_e']:.2f} matched (histogram distance "
        f"{plain_seam['colour']:.3f} -> {matched_seam['colour']:.3f}); drift from the first "
        f"part {plain_drift['delta_e']:.2f} -> {matched_drift['delta_e']:.2f}"
    )
    assert matched_seam["delta_e"] < plain_seam["delta_e"] / 2
    assert matched_seam["colour"] < plain_seam["colour"]
    assert "colour shifted warmer" in plain_seam["notes"]
    assert not any(note.startswith("colour") for note in matched_seam["notes"])
    assert matched_drift["delta_e"] < plain_drift["delta_e"]


def _target(project, kind: str) -> str:
    """The first model at ``kind`` that starts from a first frame."""
    account, spec = next(
        (account, spec)
        for account, spec in chains.continue_targets(project)
        if account.kind == kind
    )
    return f"{account.pk}:{spec.name}"


@pytest.mark.parametrize(
    ("kind", "form", "how"),
    [
        ("kling", {"duration": "5", "aspect_ratio": "16:9", "resolution": "std"}, "base64"),
        (
            "newapi",
            {
                "duration": "15",
                "aspect_ratio": "16:9",
                "resolution": "720p",
                "prompt_extend": "It carries on",
            },
            "file",
        ),
        ("kie", {"duration": "8", "aspect_ratio": "16:9", "resolution": "720p"}, "url"),
        ("apimart", {"duration": "8", "aspect_ratio": "16:9", "resolution": "720p"}, "url"),
    ],
)
def test_each_twin_starts_its_video_from_the_frame_it_received(
    client, settings, user, project, live_server, sandbox_account, drain_queue, kind, form, how
):
    # Links to this studio are what URL-only providers fetch (apimart, kie).
    settings.PUBLIC_URL = live_server.url
    account = sandbox_account(kind)
    source = stored_clip(
        project=project, user=user, account=account, seconds=4, prompt="A kite over green hills"
    )
    client.force_login(user)
    response = client.post(
        f"/clips/{source.pk}/continue/",
        {"target": _target(project, kind), "prompt": "The kite climbs", **form},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    take = finish(drain_queue, Clip.objects.get(parent=source))
    assert take.params["frame_transport"] == how
    frame = Frame.objects.get(clip=take)
    with default_storage.open(frame.image.name, "rb") as handle:
        still = handle.read()
    first = frames_of(take)[0]
    height, width = first.shape[:2]
    # Below the twin's counter and label: the picture itself.
    below = slice(height // 4, height)
    sent = pixels(still, (width, height)).astype(np.int16)[below]
    # The new video opens on the still it was sent, not on a scene of its own.
    from_still = np.abs(first.astype(np.int16)[below] - sent).mean()
    from_scene = np.abs(frames_of(source)[0].astype(np.int16)[below] - sent).mean()
    print(
        f"\n{kind} ({how}): the first frame differs from the still by {from_still:.2f}, "
        f"the source's opening frame by {from_scene:.2f}"
    )
    assert from_still < 3
    assert from_scene > from_still + 3


def test_the_sandbox_reads_frames_only_from_this_studio():
    request = RequestFactory().get("/sandbox/kling/v1/videos/image2video")
    buffer = io.BytesIO()
    Image.new("RGB", (8, 6), (200, 40, 10)).save(buffer, "PNG")
    encoded = base64.b64encode(buffer.getvalue()).decode()

    assert inputs.read_image(encoded, request=request).size == (8, 6)
    data_uri = inputs.read_image(f"data:image/png;base64,{encoded}", request=request)
    assert data_uri.getpixel((0, 0)) == (200, 40, 10)
    # Anyone else's link is never fetched (no request leaves: the host is refused first).
    assert inputs.read_image("https://example.com/frame.png", request=request) is None
    assert inputs.read_image("http://10.0.0.8/frame.png", request=request) is None
    assert inputs.read_image("not an image", request=request) is None
