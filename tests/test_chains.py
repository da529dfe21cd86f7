"""Chains across all four sandbox providers, and across providers through the last frame."""

from __future__ import annotations

import base64
import io
from datetime import timedelta
from decimal import Decimal

import av
import pytest
from django.core.files.storage import default_storage
from django.utils import timezone
from PIL import Image, ImageChops, ImageStat

from sandbox.models import SandboxTask
from tests.chain_helpers import finish, generate, stored_clip
from videos import chains
from videos.models import Activity, Clip, ClipKind, ClipStatus, Frame, ModelPrice, Project

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def quick_sandbox(fast_sandbox, settings):
    # A chain waits on several provider tasks in a row; the twin's need not take long.
    settings.SANDBOX_TASK_SECONDS = 0.5


def extend(client, clip: Clip, **fields) -> Clip:
    response = client.post(f"/clips/{clip.pk}/extend/", {"prompt": "The camera rises", **fields})
    assert response.status_code == 302, response.content.decode()[:3000]
    return Clip.objects.get(pk=int(response["Location"].strip("/").split("/")[-1]))


def lengths(root: Clip) -> list[float]:
    return [round(segment.length, 3) for segment in chains.timeline(root).segments]


def test_apimart_remix_takes_branch_and_either_can_continue_the_main_line(
    client, user, project, live_server, sandbox_account, drain_queue
):
    account = sandbox_account("apimart")
    root = generate(
        drain_queue,
        project=project,
        user=user,
        account=account,
        model="veo3.1-fast-official",
        params={"duration": 8, "aspect_ratio": "16:9", "resolution": "720p"},
        prompt="A lighthouse at dusk",
    )
    client.force_login(user)
    assert "Extend" in client.get(f"/clips/{root.pk}/extend/").content.decode()

    whole = finish(drain_queue, extend(client, root, prompt="The beam sweeps the bay"))
    raw = finish(drain_queue, extend(client, root, prompt="A ship appears", raw="on"))

    assert (whole.status, whole.kind, whole.parent_id) == (ClipStatus.READY, "extend", root.pk)
    assert whole.duration_seconds == pytest.approx(15, abs=0.05)
    assert whole.new_from_seconds == pytest.approx(8, abs=0.05)
    assert raw.duration_seconds == pytest.approx(7, abs=0.05) and raw.new_from_seconds == 0
    sent = SandboxTask.objects.filter(provider="apimart", kind="remix").order_by("created_at")
    assert [(task.request["model"], task.request["raw"]) for task in sent] == [
        ("veo3.1-fast", False),
        ("veo3.1-fast", True),
    ]
    # The first take to succeed continues the main line until someone picks another.
    assert chains.timeline(root).clip_ids == [root.pk, whole.pk]
    assert lengths(root) == [pytest.approx(8, abs=0.05), pytest.approx(7, abs=0.05)]
    response = client.post(f"/clips/{raw.pk}/main-take/")
    assert response.status_code == 302
    assert chains.timeline(root).clip_ids == [root.pk, raw.pk]
    assert chains.timeline(root).total == pytest.approx(15, abs=0.1)
    assert Clip.objects.filter(parent=root, is_main_line=True).get() == raw
    # A remix is 15 s already: apimart offers nothing further, and says so.
    page = client.get(f"/clips/{whole.pk}/").content.decode()
    assert "apimart&#x27;s remix turns an 8 s generation into 15 s" in page


def test_apimart_remix_is_refused_for_a_clip_that_is_not_eight_seconds(
    client, user, project, live_server, sandbox_account
):
    account = sandbox_account("apimart")
    clip = stored_clip(project=project, user=user, account=account, seconds=6)
    client.force_login(user)
    html = client.post(f"/clips/{clip.pk}/extend/", {"prompt": "More"}).content.decode()
    assert "turns an 8 s generation into 15 s" in html and "This clip is 6.0 s" in html
    assert not Clip.objects.filter(parent=clip).exists()
    assert not SandboxTask.objects.exists()


def test_kie_extend_returns_the_continuation_and_the_timeline_plays_it_after_the_source(
    client, user, project, live_server, sandbox_account, drain_queue
):
    account = sandbox_account("kie")
    root = generate(
        drain_queue,
        project=project,
        user=user,
        account=account,
        model="veo3_fast",
        params={"duration": 8, "aspect_ratio": "16:9", "resolution": "720p"},
        prompt="Rain on a tin roof",
    )
    client.force_login(user)
    take = finish(drain_queue, extend(client, root, prompt="The rain stops"))
    assert take.status == ClipStatus.READY, take.error_message
    # kie's resultUrls: the new 7 s alone, from the source's last frame (current docs).
    assert take.duration_seconds == pytest.approx(7, abs=0.05)
    assert take.new_from_seconds == 0
    assert take.timeline_range() == (0, pytest.approx(7, abs=0.05))
    sent = SandboxTask.objects.get(provider="kie", kind="extend")
    assert sent.request["taskId"] == root.provider_task_id
    assert lengths(root) == [pytest.approx(8, abs=0.05), pytest.approx(7, abs=0.05)]


def test_kie_refuses_to_extend_a_1080p_result_before_anything_is_sent(
    client, user, project, live_server, sandbox_account
):
    account = sandbox_account("kie")
    clip = stored_clip(
        project=project,
        user=user,
        account=account,
        seconds=8,
        model="veo3_fast",
        params={"duration": 8, "aspect_ratio": "16:9", "resolution": "1080p"},
    )
    client.force_login(user)
    clip_page = client.get(f"/clips/{clip.pk}/").content.decode()
    assert "once its 1080p version has been made" in clip_page
    assert f'href="/clips/{clip.pk}/extend/"' not in clip_page
    html = client.post(f"/clips/{clip.pk}/extend/", {"prompt": "More"}).content.decode()
    assert "kie cannot extend a video once its 1080p version has been made" in html
    assert not Clip.objects.filter(parent=clip).exists()
    assert not SandboxTask.objects.exists()


def test_kling_extends_twice_each_hop_adding_four_and_a_half_to_five_seconds(
    client, user, project, live_server, sandbox_account, drain_queue
):
    account = sandbox_account("kling")
    root = generate(
        drain_queue,
        project=project,
        user=user,
        account=account,
        model="kling-v1-6",
        params={"duration": 5, "aspect_ratio": "16:9", "resolution": "std"},
        prompt="A paper boat on a stream",
    )
    assert root.params["provider_video_id"]
    client.force_login(user)
    first = finish(drain_queue, extend(client, root, prompt="The boat drifts on"))
    second = finish(drain_queue, extend(client, first, prompt="It reaches a waterfall"))
    for source, take in ((root, first), (first, second)):
        assert take.status == ClipStatus.READY, take.error_message
        assert 4.5 - 0.05 <= take.duration_seconds - source.duration_seconds <= 5.05
        assert take.new_from_seconds == pytest.approx(source.duration_seconds)
        assert take.params["provider_video_id"] not in {"", source.params["provider_video_id"]}
    sent = SandboxTask.objects.filter(provider="kling", kind="video-extend").order_by("created_at")
    assert [task.request["body"]["video_id"] for task in sent] == [
        root.params["provider_video_id"],
        first.params["provider_video_id"],
    ]
    line = chains.timeline(root)
    assert line.clip_ids == [root.pk, first.pk, second.pk]
    assert line.total == pytest.approx(second.duration_seconds, abs=0.01)
    assert Activity.objects.filter(verb="extended").count() == 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model": "kling-v2-1-master"}, "kling-v2-1-master videos cannot be extended"),
        ({"submitted_at": timezone.now() - timedelta(days=31)}, "made in the last 30 days"),
        ({"duration_seconds": 176.0}, "up to 180 s in all; this one is 176.0 s"),
        ({"params": {"duration": 5}}, "did not report this video's id"),
    ],
)
def test_kling_rules_are_enforced_before_submission(
    client, user, project, live_server, sandbox_account, change, message
):
    account = sandbox_account("kling")
    clip = stored_clip(
        project=project,
        user=user,
        account=account,
        seconds=5,
        model="kling-v1-6",
        params={"duration": 5, "provider_video_id": "vid-1"},
    )
    Clip.objects.filter(pk=clip.pk).update(**change)
    client.force_login(user)
    html = client.post(f"/clips/{clip.pk}/extend/", {"prompt": "More"}).content.decode()
    assert message in html.replace("&#x27;", "'")
    assert not Clip.objects.filter(parent=clip).exists()
    assert not SandboxTask.objects.exists()


def test_newapi_extend_failed_clip_is_continued_from_its_last_frame(
    client, user, project, live_server, sandbox_account, drain_queue
):
    account = sandbox_account("newapi")
    partial = generate(
        drain_queue,
        project=project,
        user=user,
        account=account,
        model="veo_3_1-fast-remix",
        params={
            "duration": 15,
            "aspect_ratio": "16:9",
            "resolution": "720p",
            "prompt_extend": "The fox runs into the forest",
        },
        prompt="A fox in the snow [sandbox:extend_failed]",
    )
    assert partial.status == ClipStatus.PARTIAL and partial.error_code == "extend_failed"
    client.force_login(user)
    page = client.get(f"/clips/{partial.pk}/").content.decode()
    # A partial NewAPI clip offers its failed extension again, or a continuation.
    assert "NewAPI extends only within its 15 s request" in page
    assert f'href="/clips/{partial.pk}/continue/"' in page

    form = client.get(f"/clips/{partial.pk}/continue/").content.decode()
    assert "A fox in the snow" in form  # the prompt is pre-filled from the parent
    response = client.post(
        f"/clips/{partial.pk}/continue/",
        {
            "target": f"{account.pk}:veo_3_1-fast-fl-remix",
            "prompt": "The fox looks up",
            "prompt_extend": "It runs into the forest",
            "duration": "15",
            "aspect_ratio": "16:9",
            "resolution": "720p",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    take = finish(drain_queue, Clip.objects.get(parent=partial))
    assert (take.kind, take.status) == (ClipKind.CONTINUE, ClipStatus.READY)
    assert take.duration_seconds == pytest.approx(15, abs=0.05)
    frame = Frame.objects.get(clip=take)
    assert frame.role == "first" and frame.image.name
    sent = SandboxTask.objects.get(provider="newapi", model="veo_3_1-fast-fl-remix", kind="remix")
    [reference] = sent.request["input_reference"]
    assert reference["form"] == "file" and reference["content_type"] == "image/jpeg"
    assert reference["bytes"] == frame.image.size
    assert chains.timeline(partial).clip_ids == [partial.pk, take.pk]
    assert chains.timeline(partial).total == pytest.approx(8 + 15, abs=0.1)


def _frames(clip: Clip) -> list[Image.Image]:
    with default_storage.open(clip.file_key, "rb") as handle, av.open(handle) as container:
        return [frame.to_image() for frame in container.decode(video=0)]


def last_frame_decoded_slowly(clip: Clip) -> Image.Image:
    return _frames(clip)[-1]


def first_frame(clip: Clip) -> Image.Image:
    return _frames(clip)[0]


def mean_difference(a: Image.Image, b: Image.Image) -> float:
    b = b.convert("RGB").resize(a.size)
    return sum(ImageStat.Stat(ImageChops.difference(a, b)).mean) / 3


def test_a_chain_crosses_providers_through_the_last_frame(
    client, user, project, live_server, sandbox_account, drain_queue
):
    kie = sandbox_account("kie")
    kling = sandbox_account("kling")
    root = generate(
        drain_queue,
        project=project,
        user=user,
        account=kie,
        model="veo3_fast",
        params={"duration": 8, "aspect_ratio": "16:9", "resolution": "720p"},
        prompt="A kite over green hills",
    )
    client.force_login(user)
    form = client.get(f"/clips/{root.pk}/continue/").content.decode()
    assert f'value="{kling.pk}:kling-v1-6"' in form
    response = client.post(
        f"/clips/{root.pk}/continue/",
        {
            "target": f"{kling.pk}:kling-v1-6",
            "prompt": "The kite climbs into the clouds",
            "duration": "5",
            "aspect_ratio": "16:9",
            "resolution": "std",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    take = finish(drain_queue, Clip.objects.get(parent=root))
    assert take.status == ClipStatus.READY, take.error_message
    assert (take.kind, take.provider_account, take.model) == ("continue", kling, "kling-v1-6")

    # The first frame Kling received is the last frame of kie's video, scaled up to Kling's
    # 300 px minimum (the sandbox renders small videos).
    sent = SandboxTask.objects.get(provider="kling", kind="image2video")
    received = base64.b64decode(sent.request["body"]["image"])
    with default_storage.open(Frame.objects.get(clip=take).image.name, "rb") as handle:
        assert handle.read() == received
    image = Image.open(io.BytesIO(received)).convert("RGB")
    assert min(image.size) >= 300
    assert mean_difference(image, last_frame_decoded_slowly(root)) < 3
    assert mean_difference(image, first_frame(root)) > 3

    # And the chain goes on at Kling with Kling's own extension.
    extended = finish(drain_queue, extend(client, take, prompt="Higher still"))
    assert extended.status == ClipStatus.READY, extended.error_message
    line = chains.timeline(root)
    assert line.clip_ids == [root.pk, take.pk, extended.pk]
    assert [s.clip.provider_account.kind for s in line.segments] == ["kie", "kling", "kling"]
    assert line.total == pytest.approx(8 + extended.duration_seconds, abs=0.05)


def test_continuing_offers_only_models_that_start_from_a_first_frame(
    client, user, project, live_server, sandbox_account
):
    newapi = sandbox_account("newapi")
    apimart = sandbox_account("apimart")
    clip = stored_clip(project=project, user=user, account=newapi, seconds=8)
    client.force_login(user)
    form = client.get(f"/clips/{clip.pk}/continue/").content.decode()
    assert f'value="{newapi.pk}:veo_3_1-fast-fl-remix"' in form
    # Reference-image models have no first frame; apimart fetches links, and this studio has
    # no public address for it to fetch from.
    assert f'value="{newapi.pk}:veo_3_1-fast-remix"' not in form
    assert f'value="{apimart.pk}:' not in form


def test_continue_form_follows_the_chosen_model(
    client, user, project, live_server, sandbox_account
):
    newapi = sandbox_account("newapi")
    kling = sandbox_account("kling")
    clip = stored_clip(project=project, user=user, account=newapi, seconds=8)
    client.force_login(user)
    html = client.get(
        f"/clips/{clip.pk}/continue/?target={kling.pk}:kling-v1-6",
        headers={"HX-Request": "true"},
    ).content.decode()
    assert html.lstrip().startswith('<div id="continue-fields">')
    assert ">Mode</label>" in html and 'value="10"' in html
    assert "Extension prompt" not in html
    response = client.post(
        f"/clips/{clip.pk}/continue/",
        {"target": f"{kling.pk}:kling-v1-6", "prompt": "", "duration": "7"},
    )
    html = response.content.decode()
    assert 'id="id_prompt-error"' in html and 'id="id_duration-error"' in html
    assert not Clip.objects.filter(parent=clip).exists()


def test_an_extension_that_would_pass_the_budget_is_refused_before_anything_is_sent(
    client, user, project, live_server, sandbox_account
):
    account = sandbox_account("kling")
    ModelPrice.objects.create(kind="kling", model="kling-v1-6", per_second=Decimal("0.50"))
    Project.objects.filter(pk=project.pk).update(budget=Decimal("1.00"))
    clip = stored_clip(
        project=project,
        user=user,
        account=account,
        seconds=5,
        model="kling-v1-6",
        params={"duration": 5, "provider_video_id": "vid-1"},
    )
    client.force_login(user)
    html = client.post(f"/clips/{clip.pk}/extend/", {"prompt": "More"}).content.decode()
    assert "This clip would cost about $2.50" in html and "Nothing was sent." in html
    assert not Clip.objects.filter(parent=clip).exists()
    assert not SandboxTask.objects.exists()
