"""Every documented option the form offers reaches the provider twin as that provider wants it.

Each test posts the studio's own new-clip (or extend) form, runs the tracker until the twin
has the task, and reads what the twin received: field names, values and JSON types.
"""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from sandbox.models import SandboxTask
from tests.chain_helpers import done, generate
from tests.test_frames import image_bytes
from videos.models import Clip

pytestmark = pytest.mark.django_db(transaction=True)

FIRST = image_bytes("PNG", (640, 360), (200, 40, 40))


@pytest.fixture
def studio(client, user, live_server, settings):
    settings.PUBLIC_URL = live_server.url
    client.force_login(user)
    return client


def sent(drain_queue, clip: Clip) -> SandboxTask:
    drain_queue(
        until=lambda: Clip.objects.get(pk=clip.pk).status not in {"queued", "submitting"},
        timeout=30,
    )
    clip.refresh_from_db()
    assert clip.provider_task_id, clip.error_message
    return SandboxTask.objects.get(task_id=clip.provider_task_id.rpartition(":")[2])


def post_new(studio, project, data: dict) -> Clip:
    response = studio.post(f"/projects/{project.pk}/clips/new/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    return Clip.objects.order_by("-pk").first()


def form_html(studio, project, account, model: str) -> str:
    return studio.get(
        f"/projects/{project.pk}/clips/new/", {"provider_account": account.pk, "model": model}
    ).content.decode()


# --- apimart ----------------------------------------------------------------------------------


def test_apimart_gets_seed_sound_people_fit_and_enhance_with_their_documented_types(
    studio, project, sandbox_account, drain_queue
):
    apimart = sandbox_account("apimart")
    clip = post_new(
        studio,
        project,
        {
            "provider_account": apimart.pk,
            "model": "veo3.1-quality-official",
            "prompt": "A ragdoll cat walks through a sunlit room",
            "negative_prompt": "blurry, text",
            "duration": "8",
            "aspect_ratio": "16:9",
            "resolution": "1080p",
            "seed": "12345",
            "generate_audio": "on",
            "person_generation": "disallow",
            "resize_mode": "crop",
            "enhance_prompt": "on",
            "first_frame": SimpleUploadedFile("cat.png", FIRST, "image/png"),
        },
    )
    body = sent(drain_queue, clip).request
    # The seed's "完整参数" example, field for field and type for type.
    assert body["seed"] == 12345 and type(body["seed"]) is int
    assert body["generate_audio"] is True
    assert body["person_generation"] == "disallow"
    assert body["resize_mode"] == "crop"
    assert body["enhance_prompt"] is True
    assert body["negative_prompt"] == "blurry, text"
    assert body["duration"] == 8 and type(body["duration"]) is int


def test_apimart_never_gets_enhance_false_nor_a_fit_without_a_frame(
    studio, project, sandbox_account, drain_queue
):
    apimart = sandbox_account("apimart")
    clip = post_new(
        studio,
        project,
        {
            "provider_account": apimart.pk,
            "model": "veo3.1-fast-official",
            "prompt": "Waves on a shore",
            "duration": "4",
            "aspect_ratio": "9:16",
            "resolution": "720p",
            "person_generation": "allow_adult",
            "resize_mode": "pad",
            # enhance_prompt and generate_audio left unticked.
        },
    )
    body = sent(drain_queue, clip).request
    assert "enhance_prompt" not in body  # "设置为 false 会导致请求报错"
    assert "resize_mode" not in body  # text-to-video: "❌ 不适用"
    assert "seed" not in body
    assert body["generate_audio"] is False
    assert body["person_generation"] == "allow_adult"


def test_an_apimart_seed_out_of_range_is_refused_by_the_form(studio, project, sandbox_account):
    apimart = sandbox_account("apimart")
    response = studio.post(
        f"/projects/{project.pk}/clips/new/",
        {
            "provider_account": apimart.pk,
            "model": "veo3.1-fast-official",
            "prompt": "Waves",
            "duration": "8",
            "aspect_ratio": "16:9",
            "resolution": "720p",
            "person_generation": "allow_adult",
            "resize_mode": "pad",
            "seed": "4294967296",
        },
    )
    assert response.status_code == 200
    assert "less than or equal to 4294967295" in response.content.decode()
    assert not Clip.objects.exists()


# --- kie --------------------------------------------------------------------------------------


def test_kie_gets_seeds_watermark_and_both_switches_on_generate(
    studio, project, sandbox_account, drain_queue
):
    kie = sandbox_account("kie")
    html = form_html(studio, project, kie, "veo3_fast")
    assert 'name="negative_prompt"' not in html  # kie takes no negative prompt: not offered
    assert "This model makes sound." in html
    clip = post_new(
        studio,
        project,
        {
            "provider_account": kie.pk,
            "model": "veo3_fast",
            "prompt": "Bees over a meadow",
            "negative_prompt": "bees",  # not a kie field: dropped, never sent
            "duration": "8",
            "aspect_ratio": "16:9",
            "resolution": "720p",
            "seeds": "54321",
            "watermark": "Clipchain",
            "enable_fallback": "on",
            # enable_translation left unticked: kie's default is on, so false is sent.
        },
    )
    body = sent(drain_queue, clip).request
    assert body["seeds"] == 54321 and type(body["seeds"]) is int
    assert body["watermark"] == "Clipchain"
    assert body["enableFallback"] is True
    assert body["enableTranslation"] is False
    assert "negative_prompt" not in body and "negativePrompt" not in body
    assert "negative_prompt" not in clip.params


def test_kie_seeds_outside_10000_to_99999_are_refused_before_anything_is_sent(
    studio, project, sandbox_account
):
    kie = sandbox_account("kie")
    response = studio.post(
        f"/projects/{project.pk}/clips/new/",
        {
            "provider_account": kie.pk,
            "model": "veo3",
            "prompt": "A lake",
            "duration": "8",
            "aspect_ratio": "16:9",
            "resolution": "720p",
            "seeds": "123",
        },
    )
    assert "greater than or equal to 10000" in response.content.decode()
    assert not Clip.objects.exists() and not SandboxTask.objects.exists()


def test_kie_extend_gets_seeds_and_watermark_from_the_extend_form(
    studio, user, project, sandbox_account, drain_queue
):
    kie = sandbox_account("kie")
    root = generate(
        drain_queue,
        project=project,
        user=user,
        account=kie,
        model="veo3",
        params={"duration": 8, "aspect_ratio": "16:9", "resolution": "720p"},
        prompt="Rain on a tin roof",
    )
    page = studio.get(f"/clips/{root.pk}/extend/").content.decode()
    assert 'name="seeds"' in page and 'name="watermark"' in page
    assert 'name="enable_fallback"' not in page  # not on kie's extend page
    response = studio.post(
        f"/clips/{root.pk}/extend/",
        {"prompt": "The rain stops", "seeds": "22222", "watermark": "Draft"},
    )
    assert response.status_code == 302
    take = Clip.objects.get(parent=root)
    body = sent(drain_queue, take).request
    assert body == {
        "taskId": root.provider_task_id,
        "prompt": "The rain stops",
        "seeds": 22222,
        "watermark": "Draft",
        "callBackUrl": body["callBackUrl"],
    }


# --- Kling ------------------------------------------------------------------------------------


def test_kling_gets_cfg_scale_as_a_number_and_the_negative_prompt(
    studio, project, sandbox_account, drain_queue
):
    kling = sandbox_account("kling")
    clip = post_new(
        studio,
        project,
        {
            "provider_account": kling.pk,
            "model": "kling-v1-6",
            "prompt": "A kite rises over a beach",
            "negative_prompt": "people",
            "duration": "5",
            "aspect_ratio": "16:9",
            "resolution": "std",
            "cfg_scale": "0.7",
        },
    )
    body = sent(drain_queue, clip).request["body"]
    assert body["cfg_scale"] == 0.7 and type(body["cfg_scale"]) is float
    assert body["negative_prompt"] == "people"
    assert body["external_task_id"].startswith(f"clipchain-{clip.pk}-")


def test_kling_2_1_master_is_not_offered_cfg_scale_and_never_sends_it(
    studio, project, sandbox_account, drain_queue
):
    kling = sandbox_account("kling")
    html = form_html(studio, project, kling, "kling-v2-1-master")
    assert 'name="cfg_scale"' not in html
    assert 'name="negative_prompt"' in html
    clip = post_new(
        studio,
        project,
        {
            "provider_account": kling.pk,
            "model": "kling-v2-1-master",
            "prompt": "A city at night",
            "duration": "5",
            "aspect_ratio": "16:9",
            "resolution": "1080p",
            "cfg_scale": "0.9",  # typed into a field that was never there
        },
    )
    assert "cfg_scale" not in sent(drain_queue, clip).request["body"]


def test_kling_extend_gets_cfg_scale_and_the_negative_prompt(
    studio, user, project, sandbox_account, drain_queue
):
    kling = sandbox_account("kling")
    root = generate(
        drain_queue,
        project=project,
        user=user,
        account=kling,
        model="kling-v1-6",
        params={"duration": 5, "aspect_ratio": "16:9", "resolution": "std"},
        prompt="A kite",
    )
    response = studio.post(
        f"/clips/{root.pk}/extend/",
        {"prompt": "It climbs higher", "negative_prompt": "rain", "cfg_scale": "0.25"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    take = Clip.objects.get(parent=root)
    body = sent(drain_queue, take).request["body"]
    assert body["video_id"] == root.params["provider_video_id"]
    assert body["cfg_scale"] == 0.25 and type(body["cfg_scale"]) is float
    assert body["negative_prompt"] == "rain"


# --- NewAPI -----------------------------------------------------------------------------------


def test_newapi_is_offered_no_avoid_field_and_sends_none(
    studio, project, sandbox_account, drain_queue
):
    newapi = sandbox_account("newapi")
    html = form_html(studio, project, newapi, "veo_3_1-fast-remix")
    assert 'name="negative_prompt"' not in html
    clip = post_new(
        studio,
        project,
        {
            "provider_account": newapi.pk,
            "model": "veo_3_1-fast-remix",
            "prompt": "A red door opens",
            "prompt_extend": "A blue room behind it",
            "negative_prompt": "green",
            "duration": "15",
            "aspect_ratio": "16:9",
            "resolution": "720p",
        },
    )
    received = sent(drain_queue, clip).request
    assert "negative_prompt" not in received and "negative_prompt" not in clip.params
    drain_queue(until=done(clip.pk), timeout=60)


def test_use_as_template_keeps_the_options(studio, project, sandbox_account, drain_queue):
    kie = sandbox_account("kie")
    clip = post_new(
        studio,
        project,
        {
            "provider_account": kie.pk,
            "model": "veo3",
            "prompt": "Bees",
            "duration": "8",
            "aspect_ratio": "16:9",
            "resolution": "720p",
            "seeds": "33333",
            "watermark": "Mark",
        },
    )
    html = studio.get(f"/clips/{clip.pk}/template/").content.decode()
    assert 'name="seeds" value="33333"' in html
    assert 'name="watermark" value="Mark"' in html
    # Left unticked the first time: unticked again, not back to kie's default.
    assert 'name="enable_translation" id="id_enable_translation" checked' not in html
