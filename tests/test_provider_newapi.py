"""The NewAPI 15 s remix client against the seed's bodies and against its twin over HTTP."""

from __future__ import annotations

import base64
import io
import json
import time

import httpx
import pytest
from PIL import Image

from sandbox.models import SandboxTask
from videos import media
from videos.providers import newapi
from videos.providers.base import (
    Credentials,
    FrameInput,
    GenerationRequest,
    ProviderError,
    State,
    TaskState,
)

# --- the seed's example bodies, verbatim -------------------------------------------------

IN_PROGRESS = """{
"id": 1235905, "created_at": 1777175740, "updated_at": 1777175888,
"task_id": "task_zgUBKXVW6YhJkXPvuTJ2Y0jaLnycfEu9", "platform": "1", "user_id": 2,
"channel_id": 7, "quota": 425000, "action": "textGenerate", "status": "IN_PROGRESS",
"fail_reason": "", "submit_time": 1777175740, "start_time": 1777175789, "finish_time": 0,
"progress": "61%",
"properties": {"upstream_model_name": "veo_3_1-fast-remix",
               "origin_model_name": "veo_3_1-fast-remix"},
"data": {"id": "task_Dg8gD60Ntv0QgabS5jmGY6IwgraflRXo", "model": "veo_3_1-fast-remix",
         "object": "video", "status": "processing", "progress": 61,
         "remix_id": "video_08a9eb19-2ea9-4753-8fde-4ae1b0867952", "created_at": 1777175740,
         "remix_id_extend": "video_e8fb1fff-cf79-431d-8c57-9c87e8d36fd0"}
}"""

SUCCESS = """{
"id": 1235905, "created_at": 1777175740, "updated_at": 1777176026,
"task_id": "task_zgUBKXVW6YhJkXPvuTJ2Y0jaLnycfEu9", "platform": "1", "user_id": 2,
"channel_id": 7, "quota": 425000, "action": "textGenerate", "status": "SUCCESS",
"fail_reason": "https://xxx.com/v1/videos/task_Dg8gD60Ntv0QgabS5jmGY6IwgraflRXo/content",
"result_url": "https://xxx.com/v1/videos/task_Dg8gD60Ntv0QgabS5jmGY6IwgraflRXo/content",
"submit_time": 1777175740, "start_time": 1777175789, "finish_time": 1777175907,
"progress": "100%",
"properties": {"upstream_model_name": "veo_3_1-fast-remix",
               "origin_model_name": "veo_3_1-fast-remix"},
"data": {"id": "task_Dg8gD60Ntv0QgabS5jmGY6IwgraflRXo", "model": "veo_3_1-fast-remix",
         "object": "video", "status": "completed", "progress": 100,
         "remix_id": "video_08a9eb19-2ea9-4753-8fde-4ae1b0867952",
         "video_url": "https://videos-us3.ss2.life/extend/xxxxx175907133_3bd6883e.mp4",
         "created_at": 1777175740, "completed_at": 1777175907,
         "first_video_url": "https://videos-us3.ss2.life/video/a8a0f0cb-7983-4ea2-9b55-5785b983b8da?Expires=...",
         "remix_id_extend": "video_e8fb1fff-cf79-431d-8c57-9c87e8d36fd0"}
}"""

EXTEND_FAILED = """{
"id": 1235906, "task_id": "task_xxxxxxxxxxxx", "status": "FAILURE",
"fail_reason": "第一段视频生成成功,但二创失败:线路繁忙,请重试 (E-2003)", "progress": "50%",
"data": {"id": "task_yyyyyyyyyyyy", "model": "veo_3_1-fast-remix", "object": "video",
         "status": "failed", "progress": 50, "created_at": 1777175740,
         "error": {"code": "extend_failed",
                   "message": "第一段视频生成成功,但二创失败:线路繁忙,请重试 (E-2003)"},
         "video_url": "https://videos-us3.ss2.life/video/a8a0f0cb-xxxx-xxxx",
         "remix_id": "video_08a9eb19-xxxx-xxxx", "remix_id_extend": "video_e8fb1fff-xxxx-xxxx"}
}"""

GENERATE_FAILED = """{
"id": 1235907, "task_id": "task_xxxxxxxxxxxx", "status": "FAILURE",
"fail_reason": "视频生成失败:违反谷歌AI安全协议 请调整图片和提示词 (E-1005)", "progress": "0%",
"data": {"id": "task_zzzzzzzzzzzz", "model": "veo_3_1-fast-remix", "object": "video",
         "status": "failed", "progress": 0, "created_at": 1777175740,
         "error": {"code": "generate_failed",
                   "message": "视频生成失败:违反谷歌AI安全协议 请调整图片和提示词 (E-1005)"},
         "remix_id": "video_xxxxxxxx-xxxx-xxxx"}
}"""


def test_in_progress_at_61_percent_is_running_in_the_extension_phase():
    state = newapi.parse_status(json.loads(IN_PROGRESS))
    assert state.state is State.RUNNING
    assert state.progress == 61
    assert state.phase == "Extending to 15 s"
    assert state.raw["data"]["remix_id_extend"] == "video_e8fb1fff-cf79-431d-8c57-9c87e8d36fd0"


def test_success_gives_the_fifteen_second_video_from_data_not_the_content_link():
    state = newapi.parse_status(json.loads(SUCCESS))
    assert state.state is State.SUCCEEDED
    assert state.progress == 100
    assert state.video_url == "https://videos-us3.ss2.life/extend/xxxxx175907133_3bd6883e.mp4"
    assert state.raw["data"]["remix_id"] == "video_08a9eb19-2ea9-4753-8fde-4ae1b0867952"
    assert state.raw["data"]["first_video_url"].startswith("https://videos-us3.ss2.life/video/")


def test_a_failed_extension_is_partial_and_keeps_the_first_eight_seconds():
    state = newapi.parse_status(json.loads(EXTEND_FAILED))
    assert state.state is State.PARTIAL
    assert state.is_final
    assert state.video_url == "https://videos-us3.ss2.life/video/a8a0f0cb-xxxx-xxxx"
    assert state.error_code == "extend_failed"
    assert "retry the extension" in state.error_message
    assert "continue from the 8 s clip" in state.error_message
    assert "busy" in state.error_message
    assert state.provider_message == "第一段视频生成成功,但二创失败:线路繁忙,请重试 (E-2003)"
    assert state.raw["data"]["remix_id"] == "video_08a9eb19-xxxx-xxxx"
    # Kept on the clip: the seed's way to retry the extension by hand.
    assert state.facts == {"remix_id": "video_08a9eb19-xxxx-xxxx"}


def test_a_safety_refusal_of_the_first_part_fails_and_asks_for_other_prompt_or_images():
    state = newapi.parse_status(json.loads(GENERATE_FAILED))
    assert state.state is State.FAILED
    assert state.video_url == ""
    assert state.error_code == "generate_failed"
    assert "Change the prompt or images" in state.error_message
    assert "(E-1005)" in state.provider_message


def test_a_busy_line_on_the_first_part_says_try_again_later():
    body = json.loads(GENERATE_FAILED)
    body["data"]["error"]["message"] = "视频生成失败:线路繁忙,请重试 (E-2003)"
    state = newapi.parse_status(body)
    assert state.state is State.FAILED
    assert state.error_message == "The provider was too busy to make this video. Try again later."


def test_early_progress_is_the_first_phase_and_unknown_words_count_as_running():
    body = json.loads(IN_PROGRESS)
    body["data"].update(progress=20)
    del body["data"]["remix_id_extend"]
    assert newapi.parse_status(body).phase == "Generating first 8 s"
    body["data"]["status"] = "thinking"
    body["status"] = "WARMING_UP"
    assert newapi.parse_status(body).state is State.RUNNING


def test_success_without_data_falls_back_to_the_gateway_link():
    body = json.loads(SUCCESS)
    del body["data"]
    del body["result_url"]
    state = newapi.parse_status(body)
    assert state.state is State.SUCCEEDED
    assert state.video_url.endswith("/v1/videos/task_Dg8gD60Ntv0QgabS5jmGY6IwgraflRXo/content")


@pytest.mark.parametrize(
    "answer",
    [
        {"task_id": "task_abc", "id": "other"},
        {"id": "task_abc", "object": "video", "status": "queued"},
        {"code": "success", "data": {"task_id": "task_abc"}},
        {"data": {"id": "task_abc"}},
    ],
)
def test_submission_answers_yield_the_task_id_wherever_it_is(answer):
    assert newapi.task_id_from(answer) == "task_abc"


def test_a_submission_answer_without_an_id_is_a_permanent_error():
    with pytest.raises(ProviderError) as caught:
        newapi.task_id_from({"object": "video"})
    assert caught.value.code == "no_task_id"
    assert caught.value.permanent


def test_every_model_is_fifteen_seconds_with_frames_by_its_name():
    specs = {spec.name: spec for spec in newapi.MODELS}
    assert len(specs) == 8
    assert all(spec.durations == (15,) and spec.extend is None for spec in specs.values())
    assert specs["veo_3_1-hd-fl-remix"].frame_roles == ("first", "last")
    assert specs["veo_3_1-hd-fl-remix"].resolutions == ("1080p",)
    assert specs["veo_3_1-remix"].frame_roles == ("reference",)
    assert specs["veo_3_1-remix"].max_references == 3
    assert specs["veo_3_1-remix"].prompts == ("prompt", "prompt_extend")


def test_a_request_without_the_second_prompt_is_refused_before_sending():
    client = newapi.Client("http://127.0.0.1:9", Credentials("sk-unused"))
    with pytest.raises(ProviderError) as caught:
        client.submit(GenerationRequest(model="veo_3_1-remix", prompt="A fox"))
    assert caught.value.permanent
    assert "second prompt" in caught.value.message


def test_a_lone_last_frame_is_refused_because_it_would_become_the_first():
    client = newapi.Client("http://127.0.0.1:9", Credentials("sk-unused"))
    request = GenerationRequest(
        model="veo_3_1-fl-remix",
        prompt="A fox",
        params={"prompt_extend": "It runs"},
        frames=(FrameInput(role="last", url="https://example.com/last.png"),),
    )
    with pytest.raises(ProviderError) as caught:
        client.submit(request)
    assert caught.value.code == "invalid_frames"


# --- against the twin ---------------------------------------------------------------------

KEY = "sk-newapi-test-0007"


def png(color: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 18), color).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def base_url(live_server) -> str:
    return f"{live_server.url}/sandbox/newapi"


@pytest.fixture
def client(base_url) -> newapi.Client:
    return newapi.Client(base_url, Credentials(KEY))


def remix(model: str = "veo_3_1-fast-remix", *, prompt: str = "A fox in snow", **kwargs):
    params = {"prompt_extend": "The fox leaps into the river", "aspect_ratio": "16:9"}
    params.update(kwargs.pop("params", {}))
    return GenerationRequest(model=model, prompt=prompt, params=params, **kwargs)


def follow(client: newapi.Client, task_id: str, timeout: float = 20) -> list[TaskState]:
    states = [client.status(task_id)]
    deadline = time.monotonic() + timeout
    while not states[-1].is_final:
        assert time.monotonic() < deadline, f"still {states[-1].state} after {timeout} s"
        time.sleep(0.05)
        states.append(client.status(task_id))
    return states


def seconds_of(url: str) -> float:
    response = httpx.get(url, timeout=30)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "video/mp4"
    return media.probe(io.BytesIO(response.content)).duration


def received(task_id: str) -> dict:
    return SandboxTask.objects.get(task_id=task_id).request


@pytest.mark.django_db(transaction=True)
def test_text_to_video_runs_both_phases_and_ends_with_a_fifteen_second_mp4(client):
    task_id = client.submit(remix())

    seen = received(task_id)
    assert seen["content_type"] == "multipart/form-data"
    assert seen["model"] == "veo_3_1-fast-remix"
    assert seen["prompt"] == "A fox in snow"
    assert seen["prompt_extend"] == "The fox leaps into the river"
    assert seen["size"] == "1280x720"
    assert seen["input_reference"] == []
    assert SandboxTask.objects.get(task_id=task_id).api_key_hint == KEY[-4:]

    states = follow(client, task_id)
    running = [state for state in states if state.state is State.RUNNING]
    first = [state for state in running if state.phase == "Generating first 8 s"]
    second = [state for state in running if state.phase == "Extending to 15 s"]
    assert first and second
    assert all(state.raw["data"]["remix_id"] for state in running)
    assert not any("remix_id_extend" in state.raw["data"] for state in first)
    assert all(state.raw["data"]["remix_id_extend"] for state in second)
    assert [state.progress for state in states] == sorted(state.progress for state in states)

    final = states[-1]
    assert final.state is State.SUCCEEDED
    assert seconds_of(final.video_url) == pytest.approx(15.0, abs=0.05)
    assert seconds_of(final.raw["data"]["first_video_url"]) == pytest.approx(8.0, abs=0.05)
    assert final.raw["result_url"] == final.raw["fail_reason"]
    assert final.raw["action"] == "textGenerate"


@pytest.mark.django_db(transaction=True)
def test_uploaded_reference_images_travel_as_file_parts_in_order(client):
    frames = tuple(
        FrameInput(role="reference", content=png(color), filename=f"{color}.png")
        for color in ("red", "green", "blue")
    )
    task_id = client.submit(remix("veo_3_1-hd-remix", frames=frames))

    seen = received(task_id)
    assert [part["form"] for part in seen["input_reference"]] == ["file", "file", "file"]
    assert [part["filename"] for part in seen["input_reference"]] == [
        "red.png",
        "green.png",
        "blue.png",
    ]
    assert {part["content_type"] for part in seen["input_reference"]} == {"image/png"}
    assert seen["size"] == "1920x1080"


@pytest.mark.django_db(transaction=True)
def test_frames_can_travel_as_data_uris_when_asked(client):
    first = png("orange")
    task_id = client.submit(
        remix(
            "veo_3_1-fast-fl-remix",
            params={"frame_transport": "data_uri", "aspect_ratio": "9:16"},
            frames=(FrameInput(role="first", content=first),),
        )
    )

    seen = received(task_id)
    assert seen["input_reference"] == [
        {"form": "data_uri", "content_type": "image/png", "bytes": len(first)}
    ]
    assert seen["size"] == "720x1280"


@pytest.mark.django_db(transaction=True)
def test_a_url_first_frame_and_an_uploaded_last_frame_keep_their_order(client):
    last = png("purple")
    task_id = client.submit(
        remix(
            "veo_3_1-fast-fl-hd-remix",
            params={"aspect_ratio": "9:16"},
            frames=(
                FrameInput(role="last", content=last),
                FrameInput(role="first", url="https://images.example.com/first.png"),
            ),
        )
    )

    seen = received(task_id)
    assert seen["input_reference"] == [
        {"form": "url", "url": "https://images.example.com/first.png"},
        {"form": "data_uri", "content_type": "image/png", "bytes": len(last)},
    ]
    assert seen["size"] == "1080x1920"


@pytest.mark.django_db(transaction=True)
def test_the_twin_refuses_json_bodies_in_newapis_error_shape(base_url):
    response = httpx.post(
        f"{base_url}/v1/videos",
        json={"model": "veo_3_1-remix", "prompt": "a", "prompt_extend": "b"},
        headers={"Authorization": f"Bearer {KEY}"},
    )
    assert response.status_code == 400
    assert set(response.json()["error"]) == {"message", "type", "code"}
    assert "multipart/form-data" in response.json()["error"]["message"]


@pytest.mark.django_db(transaction=True)
def test_the_twin_wants_a_bearer_key_a_known_model_and_few_enough_images(base_url):
    form = {"model": "veo_3_1-fl-remix", "prompt": "a", "prompt_extend": "b"}
    three = [("input_reference[]", (f"{n}.png", png("white"), "image/png")) for n in range(3)]

    no_key = httpx.post(f"{base_url}/v1/videos", data=form, files=three)
    too_many = httpx.post(
        f"{base_url}/v1/videos", data=form, files=three, headers={"Authorization": "Bearer k"}
    )
    unknown = httpx.post(
        f"{base_url}/v1/videos",
        data={**form, "model": "veo_3_1-fast"},
        files=three[:1],
        headers={"Authorization": "Bearer k"},
    )

    assert no_key.status_code == 401
    assert too_many.status_code == 400
    assert "1 or 2" in too_many.json()["error"]["message"]
    assert unknown.status_code == 400
    assert "Invalid model" in unknown.json()["error"]["message"]
    assert not SandboxTask.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_failed_extension_ends_partial_with_a_playable_eight_second_clip(client):
    task_id = client.submit(remix(prompt="A fox in snow [sandbox:extend_failed]"))

    final = follow(client, task_id)[-1]

    assert final.state is State.PARTIAL
    assert final.error_code == "extend_failed"
    assert "(E-2003)" in final.provider_message
    assert final.raw["data"]["remix_id_extend"]
    assert seconds_of(final.video_url) == pytest.approx(8.0, abs=0.05)


@pytest.mark.parametrize("fault", ["fail", "policy"])
@pytest.mark.django_db(transaction=True)
def test_a_refused_first_part_fails_with_nothing_to_keep(client, fault):
    task_id = client.submit(remix(prompt=f"A fox [sandbox:{fault}]"))

    final = follow(client, task_id)[-1]

    assert final.state is State.FAILED
    assert final.error_code == "generate_failed"
    assert "Change the prompt or images" in final.error_message
    assert final.video_url == ""
    assert "remix_id_extend" not in final.raw["data"]


@pytest.mark.django_db(transaction=True)
def test_an_expired_result_reports_success_but_its_links_are_gone(client):
    task_id = client.submit(remix(prompt="A fox [sandbox:expired]"))

    final = follow(client, task_id)[-1]

    assert final.state is State.SUCCEEDED
    assert httpx.get(final.video_url).status_code == 404
    assert httpx.get(final.raw["result_url"]).status_code == 404


@pytest.mark.django_db(transaction=True)
def test_a_task_that_never_finishes_stays_running(client, settings):
    task_id = client.submit(remix(prompt="A fox [sandbox:never]"))
    time.sleep(settings.SANDBOX_TASK_SECONDS * 1.3)

    state = client.status(task_id)

    assert state.state is State.RUNNING
    assert state.phase == "Extending to 15 s"


@pytest.mark.django_db(transaction=True)
def test_an_unknown_task_is_a_permanent_404(client):
    with pytest.raises(ProviderError) as caught:
        client.status("task_doesnotexist")
    assert caught.value.http_status == 404
    assert caught.value.permanent


@pytest.mark.parametrize(
    ("status", "permanent", "words"),
    [
        (400, True, "invalid"),
        (401, True, "API key"),
        (402, True, "balance"),
        (403, True, "refused access"),
        (404, True, "does not know"),
        (429, False, "rate-limiting"),
        (500, False, "internal error"),
        (502, False, "gateway"),
        (503, False, "temporarily unavailable"),
    ],
)
@pytest.mark.django_db(transaction=True)
def test_submission_errors_become_plain_provider_errors(client, status, permanent, words):
    with pytest.raises(ProviderError) as caught:
        client.submit(remix(prompt=f"A fox [sandbox:{status}]"))

    error = caught.value
    assert error.http_status == status
    assert error.permanent is permanent
    assert words in error.message
    assert error.provider_message  # the gateway's own words travel along
    assert error.retry_after == (2.0 if status == 429 else None)
    assert not SandboxTask.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_an_unreadable_answer_is_never_resent(client):
    with pytest.raises(ProviderError) as caught:
        client.submit(remix(prompt="A fox [sandbox:malformed]"))
    assert caught.value.code == "no_answer"
    assert not caught.value.safe_to_resend
    assert "upstream hiccup" in caught.value.provider_message


@pytest.mark.django_db(transaction=True)
def test_a_submission_that_times_out_is_never_resent_because_it_may_have_landed(client, settings):
    settings.PROVIDER_TIMEOUT_SECONDS = 0.5
    settings.SANDBOX_TIMEOUT_SECONDS = 1.0

    with pytest.raises(ProviderError) as caught:
        client.submit(remix(prompt="A fox [sandbox:timeout]"))

    assert caught.value.code == "no_answer"
    assert not caught.value.safe_to_resend
    deadline = time.monotonic() + 5
    while not SandboxTask.objects.filter(kind="remix").exists():
        assert time.monotonic() < deadline, "the late submission never created its task"
        time.sleep(0.05)


def test_data_uri_parts_carry_the_exact_bytes():
    content = png("teal")
    parts = newapi.form_parts(
        remix(
            "veo_3_1-remix",
            params={"frame_transport": "data_uri"},
            frames=(FrameInput(role="reference", content=content, content_type="image/png"),),
        )
    )
    name, (filename, value, content_type) = parts[-1]
    assert (name, filename, content_type) == ("input_reference[]", None, None)
    assert value == "data:image/png;base64," + base64.b64encode(content).decode()
