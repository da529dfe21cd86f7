"""apimart (Veo 3.1): the seed's bodies through the parser, and the client against its twin.

Contract bodies are copied verbatim from seeds/apimart-veo31-generations.md,
seeds/apimart-veo31-remix-extend.md and PROVIDERS.md §1.
"""

from __future__ import annotations

import io
import json
import time
from datetime import UTC, datetime

import httpx
import pytest

from sandbox.models import SandboxTask
from videos import media
from videos.providers import apimart
from videos.providers.base import (
    Credentials,
    FrameInput,
    GenerationRequest,
    ProviderError,
    State,
    TaskState,
)

KEY = "sk-sandbox-test-key-0001"

GENERATIONS_SUBMIT_ANSWER = """{
  "code": 200,
  "data": [
    {
      "status": "submitted",
      "task_id": "task_xxxxxxxxxx"
    }
  ]
}"""

REMIX_SUBMIT_ANSWER = """{
    "code": 200,
    "data": [
      {
        "status": "submitted",
        "task_id": "task_01JQXYZ9999NEWEXTENDID"
      }
    ]
  }"""

# The remix page's error examples: status -> exact body.
ERROR_BODIES = {
    400: """{
    "error": {
      "code": 400,
      "message": "Invalid request parameters",
      "type": "invalid_request_error"
    }
  }""",
    401: """{
    "error": {
      "code": 401,
      "message": "Invalid authentication credentials",
      "type": "authentication_error"
    }
  }""",
    402: """{
    "error": {
      "code": 402,
      "message": "Insufficient balance. Please top up your account",
      "type": "payment_required"
    }
  }""",
    403: """{
    "error": {
      "code": 403,
      "message": "Access forbidden. You don't have permission to access this resource",
      "type": "permission_error"
    }
  }""",
    404: """{
    "error": {
      "code": 404,
      "message": "Video not found",
      "type": "not_found_error"
    }
  }""",
    429: """{
    "error": {
      "code": 429,
      "message": "Rate limit exceeded. Please try again later",
      "type": "rate_limit_error"
    }
  }""",
    500: """{
    "error": {
      "code": 500,
      "message": "Internal server error. Please try again later",
      "type": "server_error"
    }
  }""",
    502: """{
    "error": {
      "code": 502,
      "message": "Bad gateway. The server is temporarily unavailable",
      "type": "bad_gateway"
    }
  }""",
}
PERMANENT_STATUSES = {400, 401, 402, 403, 404}

COMPLETED_IN_THE_WILD = (
    '{"code":200,"data":{"id":"task_01K…","status":"completed","progress":100,'
    '"created":1765000891,"completed":1765001046,"estimated_time":600,"actual_time":155,'
    '"result":{"videos":[{"expires_at":1765087446,"url":["https://…/x.mp4"]}]}}}'
)


def answer(status: int, text: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, content=text.encode(), headers=headers)


# --- contract: the documented bodies through the parser ---------------------------------


def test_generations_submit_answer_gives_its_task_id() -> None:
    body = apimart.parse_response(answer(200, GENERATIONS_SUBMIT_ANSWER))
    assert apimart.task_id_from(body) == "task_xxxxxxxxxx"


def test_remix_submit_answer_gives_the_new_task_id() -> None:
    body = apimart.parse_response(answer(200, REMIX_SUBMIT_ANSWER))
    assert apimart.task_id_from(body) == "task_01JQXYZ9999NEWEXTENDID"


@pytest.mark.parametrize("status", sorted(ERROR_BODIES))
def test_each_documented_error_body_becomes_a_plain_provider_error(status: int) -> None:
    headers = {"Retry-After": "2"} if status == 429 else None
    with pytest.raises(ProviderError) as caught:
        apimart.parse_response(answer(status, ERROR_BODIES[status], headers))
    error = caught.value
    assert error.http_status == status
    assert error.code == str(status)
    assert error.permanent is (status in PERMANENT_STATUSES)
    assert error.retry_after == (2.0 if status == 429 else None)
    assert error.provider_message == json.loads(ERROR_BODIES[status])["error"]["message"]
    assert error.message and error.message != error.provider_message


def test_an_error_body_inside_a_200_is_still_an_error() -> None:
    with pytest.raises(ProviderError) as caught:
        apimart.parse_response(answer(200, ERROR_BODIES[402]))
    assert caught.value.http_status == 402
    assert caught.value.permanent
    assert "top it up" in caught.value.message


def test_a_200_that_is_not_json_is_transient_and_never_resent() -> None:
    with pytest.raises(ProviderError) as caught:
        apimart.parse_response(answer(200, "<html>upstream error</html>"))
    error = caught.value
    assert error.code == "malformed"
    assert not error.permanent
    assert not error.safe_to_resend
    assert "could not read" in error.message
    assert "<html>upstream error</html>" in error.provider_message


def test_a_submission_refused_for_safety_asks_for_another_prompt() -> None:
    body = '{"error":{"code":400,"message":"Prompt violates safety policy","type":"x"}}'
    with pytest.raises(ProviderError) as caught:
        apimart.parse_response(answer(400, body))
    assert caught.value.code == "content_policy"
    assert caught.value.permanent
    assert "Change the prompt or frames" in caught.value.message


def test_completed_example_with_url_array_is_a_finished_video() -> None:
    state = apimart.parse_status(json.loads(COMPLETED_IN_THE_WILD))
    assert state.state is State.SUCCEEDED
    assert state.progress == 100
    assert state.video_url == "https://…/x.mp4"
    assert state.expires_at == datetime.fromtimestamp(1765087446, tz=UTC)
    assert state.estimate_seconds == 155  # actual_time, once finished


def test_completed_example_with_url_as_a_plain_string_is_a_finished_video() -> None:
    body = json.loads(COMPLETED_IN_THE_WILD)
    body["data"]["result"]["videos"][0]["url"] = "https://…/x.mp4"
    state = apimart.parse_status(body)
    assert state.state is State.SUCCEEDED
    assert state.video_url == "https://…/x.mp4"
    assert state.expires_at == datetime.fromtimestamp(1765087446, tz=UTC)


def test_completed_without_any_video_is_a_failure_to_retry() -> None:
    body = json.loads(COMPLETED_IN_THE_WILD)
    body["data"]["result"] = {"videos": [{"url": []}]}
    state = apimart.parse_status(body)
    assert state.state is State.FAILED
    assert state.error_code == "no_video"


@pytest.mark.parametrize(
    ("word", "expected", "phase"),
    [
        ("pending", State.QUEUED, "Waiting in the provider's queue"),
        ("processing", State.RUNNING, "Generating"),
        ("upscaling", State.RUNNING, "Generating"),
        ("", State.RUNNING, "Generating"),
    ],
)
def test_waiting_words_and_unknown_words_keep_the_task_running(
    word: str, expected: State, phase: str
) -> None:
    body = {
        "code": 200,
        "data": {"id": "task_1", "status": word, "progress": 42, "estimated_time": 600},
    }
    state = apimart.parse_status(body)
    assert state.state is expected
    assert not state.is_final
    assert state.progress == 42
    assert state.phase == phase
    assert state.estimate_seconds == 600


def test_a_task_failed_for_safety_tells_the_creator_to_change_the_prompt_or_frames() -> None:
    body = {
        "code": 200,
        "data": {
            "status": "failed",
            "error": {"code": "x", "message": "The prompt violates Responsible AI practices"},
        },
    }
    state = apimart.parse_status(body)
    assert state.state is State.FAILED
    assert state.error_code == "content_policy"
    assert "Change the prompt or frames" in state.error_message
    assert state.provider_message == "The prompt violates Responsible AI practices"


def test_a_task_failed_for_another_reason_says_so_with_the_providers_words() -> None:
    state = apimart.parse_status(
        {"code": 200, "data": {"status": "failed", "error": "upstream busy"}}
    )
    assert state.state is State.FAILED
    assert state.error_code == "failed"
    assert "Try again" in state.error_message
    assert state.provider_message == "upstream busy"


def test_a_cancelled_task_is_cancelled_not_failed() -> None:
    state = apimart.parse_status({"code": 200, "data": {"status": "cancelled"}})
    assert state.state is State.CANCELLED


@pytest.mark.parametrize(
    ("generation_model", "remix_model"),
    [
        ("veo3.1-fast-official", "veo3.1-fast"),
        ("veo3.1-quality-official", "veo3.1-quality"),
        ("veo3.1-fast", "veo3.1-fast"),
        ("some-future-model", "some-future-model"),
    ],
)
def test_remix_model_is_the_same_family_as_the_generation(
    generation_model: str, remix_model: str
) -> None:
    assert apimart.remix_model_for(generation_model) == remix_model


def test_every_generation_model_has_a_remix_model() -> None:
    for spec in apimart.MODELS:
        assert spec.extend is not None
        assert apimart.remix_model_for(spec.name) in {"veo3.1-fast", "veo3.1-quality"}


# --- real HTTP against the twin -----------------------------------------------------------

live = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def quick_tasks(fast_sandbox: None, settings) -> None:
    settings.SANDBOX_TASK_SECONDS = 0.5


@pytest.fixture
def base_url(live_server) -> str:
    return f"{live_server.url}/sandbox/apimart"


@pytest.fixture
def client(base_url: str) -> apimart.Client:
    return apimart.Client(base_url, Credentials(key=KEY))


def until_final(client: apimart.Client, task_id: str, timeout: float = 20) -> TaskState:
    deadline = time.monotonic() + timeout
    while True:
        state = client.status(task_id)
        if state.is_final or time.monotonic() > deadline:
            return state
        time.sleep(0.1)


def generate(client: apimart.Client, prompt: str, **params: object) -> str:
    model = str(params.pop("model", "veo3.1-fast-official"))
    return client.submit(GenerationRequest(model=model, prompt=prompt, params=params))


@pytest.fixture
def finished_source(client: apimart.Client) -> str:
    task_id = generate(client, "A lighthouse at dusk", duration=8, aspect_ratio="16:9")
    assert until_final(client, task_id).state is State.SUCCEEDED
    return task_id


def download(url: str) -> media.VideoInfo:
    response = httpx.get(url, timeout=60)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "video/mp4"
    return media.probe(io.BytesIO(response.content))


@live
def test_every_generation_field_arrives_with_its_documented_json_type(
    client: apimart.Client,
) -> None:
    request = GenerationRequest(
        model="veo3.1-quality-official",
        prompt="A ragdoll cat walks through a sunlit room",
        params={
            "negative_prompt": "blurry, watermark",
            "duration": "6",  # as a form would hand it over
            "aspect_ratio": "9:16",
            "resolution": "1080p",
            "seed": "12345",
            "sample_count": 1,
            "generate_audio": True,
            "person_generation": "disallow",
            "resize_mode": "crop",
            "enhance_prompt": True,
            "studio_note": "never sent",
        },
        frames=(
            FrameInput(role="first", url="https://example.com/start.png"),
            FrameInput(role="last", url="https://example.com/end.png"),
        ),
    )
    task_id = client.submit(request)

    task = SandboxTask.objects.get(task_id=task_id)
    assert task.api_key_hint == KEY[-4:]
    assert task.request == {
        "model": "veo3.1-quality-official",
        "prompt": "A ragdoll cat walks through a sunlit room",
        "negative_prompt": "blurry, watermark",
        "duration": 6,
        "aspect_ratio": "9:16",
        "resolution": "1080p",
        "seed": 12345,
        "sample_count": 1,
        "generate_audio": True,
        "person_generation": "disallow",
        "resize_mode": "crop",
        "enhance_prompt": True,
        "first_frame_image": "https://example.com/start.png",
        "last_frame_image": "https://example.com/end.png",
    }
    for name in ("duration", "seed", "sample_count"):
        assert type(task.request[name]) is int
    assert type(task.request["generate_audio"]) is bool

    state = until_final(client, task_id)
    assert state.state is State.SUCCEEDED
    assert state.video_url.endswith(f"/sandbox/apimart/files/{task_id}.mp4")
    assert state.expires_at is not None and state.expires_at > datetime.now(UTC)


@live
def test_text_to_video_sends_neither_resize_mode_nor_a_false_enhance_prompt(
    client: apimart.Client,
) -> None:
    task_id = generate(
        client, "Waves at night", resize_mode="pad", enhance_prompt=False, generate_audio="false"
    )
    sent = SandboxTask.objects.get(task_id=task_id).request
    assert sent == {
        "model": "veo3.1-fast-official",
        "prompt": "Waves at night",
        "generate_audio": False,
    }


@live
def test_the_twin_refuses_a_quoted_duration_like_apimart(base_url: str) -> None:
    response = httpx.post(
        f"{base_url}/v1/videos/generations",
        json={"model": "veo3.1-fast-official", "prompt": "A fox", "duration": "8"},
        headers={"Authorization": f"Bearer {KEY}"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert not SandboxTask.objects.exists()


def test_an_account_without_a_key_is_refused_before_anything_is_sent() -> None:
    client = apimart.Client("http://127.0.0.1:9", Credentials(key=" "))
    with pytest.raises(ProviderError) as caught:
        generate(client, "A fox")
    assert caught.value.code == "no_key"
    assert caught.value.permanent


@live
def test_the_twin_answers_a_request_without_bearer_auth_with_the_documented_401(
    base_url: str,
) -> None:
    response = httpx.post(
        f"{base_url}/v1/videos/generations",
        json={"model": "veo3.1-fast-official", "prompt": "A fox"},
        headers={"Authorization": f"Basic {KEY}"},
    )
    assert response.status_code == 401
    assert response.json() == json.loads(ERROR_BODIES[401])


@live
def test_status_query_accepts_the_documented_language_parameter(
    base_url: str, client: apimart.Client
) -> None:
    task_id = generate(client, "A fox")
    response = httpx.get(
        f"{base_url}/v1/tasks/{task_id}",
        params={"language": "en"},
        headers={"Authorization": f"Bearer {KEY}"},
    )
    assert response.status_code == 200
    assert response.json()["data"]["id"] == task_id


@live
def test_remix_of_a_finished_eight_second_video_is_a_fifteen_second_mp4(
    client: apimart.Client, finished_source: str
) -> None:
    remix_id = client.remix(
        finished_source, model="veo3.1-fast-official", prompt="The tide comes in"
    )

    remix = SandboxTask.objects.get(task_id=remix_id)
    assert remix.request == {"model": "veo3.1-fast", "prompt": "The tide comes in", "raw": False}
    assert remix.source is not None and remix.source.task_id == finished_source
    state = until_final(client, remix_id)
    assert state.state is State.SUCCEEDED
    info = download(state.video_url)
    assert info.duration == pytest.approx(15.0, abs=0.05)
    assert info.codec == "h264"


@live
def test_raw_remix_is_only_the_new_seven_seconds_and_carries_the_counter_on(
    client: apimart.Client, finished_source: str
) -> None:
    remix_id = client.remix(
        finished_source,
        model="veo3.1-fast",
        prompt="The tide comes in",
        raw=True,
        aspect_ratio="9:16",
        resolution="4K",
    )

    remix = SandboxTask.objects.get(task_id=remix_id)
    # The remix page writes "4k" where generations write "4K".
    assert remix.request["resolution"] == "4k"
    assert remix.request["raw"] is True
    assert remix.start_at == pytest.approx(8.0)
    state = until_final(client, remix_id)
    assert state.state is State.SUCCEEDED
    info = download(state.video_url)
    assert info.duration == pytest.approx(7.0, abs=0.05)
    assert info.height > info.width


@live
def test_remix_with_another_model_family_is_refused_for_good(
    client: apimart.Client, finished_source: str
) -> None:
    with pytest.raises(ProviderError) as caught:
        client.remix(finished_source, model="veo3.1-quality", prompt="The tide comes in")
    assert caught.value.permanent
    assert caught.value.http_status == 400
    assert "veo3.1-fast" in caught.value.provider_message


@live
def test_remix_of_an_unknown_task_is_video_not_found(client: apimart.Client) -> None:
    with pytest.raises(ProviderError) as caught:
        client.remix("task_01UNKNOWN", model="veo3.1-fast", prompt="More")
    assert caught.value.http_status == 404
    assert caught.value.permanent
    assert caught.value.provider_message == "Video not found"


@live
def test_remix_of_an_unfinished_task_is_refused(client: apimart.Client) -> None:
    task_id = generate(client, "A fox")
    with pytest.raises(ProviderError) as caught:
        client.remix(task_id, model="veo3.1-fast", prompt="More")
    assert caught.value.http_status == 400
    assert caught.value.permanent


# --- faults --------------------------------------------------------------------------------


def submit_with_fault(client: apimart.Client, endpoint: str, fault: str) -> str:
    prompt = f"A fox [sandbox:{fault}]"
    if endpoint == "generations":
        return generate(client, prompt)
    # Submission faults answer before the source is looked up.
    return client.remix("task_01ANY", model="veo3.1-fast", prompt=prompt)


@live
@pytest.mark.parametrize("endpoint", ["generations", "remix"])
@pytest.mark.parametrize("status", sorted(ERROR_BODIES))
def test_each_documented_status_fault_maps_to_its_provider_error(
    client: apimart.Client, endpoint: str, status: int
) -> None:
    with pytest.raises(ProviderError) as caught:
        submit_with_fault(client, endpoint, str(status))
    error = caught.value
    assert error.http_status == status
    assert error.code == str(status)
    assert error.permanent is (status in PERMANENT_STATUSES)
    assert error.retry_after == (2.0 if status == 429 else None)
    assert error.provider_message == json.loads(ERROR_BODIES[status])["error"]["message"]
    assert not SandboxTask.objects.exists()


@live
@pytest.mark.parametrize("endpoint", ["generations", "remix"])
def test_a_malformed_answer_is_transient_and_not_resent(
    client: apimart.Client, endpoint: str
) -> None:
    with pytest.raises(ProviderError) as caught:
        submit_with_fault(client, endpoint, "malformed")
    assert caught.value.code == "malformed"
    assert not caught.value.permanent
    assert not caught.value.safe_to_resend


@live
def test_a_submission_that_times_out_may_have_been_taken_so_it_is_not_resent(
    client: apimart.Client, settings
) -> None:
    settings.PROVIDER_TIMEOUT_SECONDS = 0.3
    settings.SANDBOX_TIMEOUT_SECONDS = 1.0
    with pytest.raises(ProviderError) as caught:
        generate(client, "A fox [sandbox:timeout]")
    assert caught.value.code == "no_answer"
    assert not caught.value.safe_to_resend
    # The twin carries on after the client gave up; waiting for it also keeps its late
    # write out of the next test's database.
    deadline = time.monotonic() + 10
    while not SandboxTask.objects.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert SandboxTask.objects.count() == 1  # the provider took it after all


def finished_with_fault(client: apimart.Client, fault: str) -> tuple[str, TaskState]:
    task_id = generate(client, f"A fox [sandbox:{fault}]")
    assert SandboxTask.objects.get(task_id=task_id).fault == fault
    return task_id, until_final(client, task_id, timeout=10)


@live
def test_policy_fault_fails_the_task_and_asks_for_another_prompt(
    client: apimart.Client,
) -> None:
    _, state = finished_with_fault(client, "policy")
    assert state.state is State.FAILED
    assert state.error_code == "content_policy"
    assert "Change the prompt or frames" in state.error_message
    assert "safety policy" in state.provider_message


@live
def test_fail_fault_ends_the_task_failed_with_the_providers_error(
    client: apimart.Client,
) -> None:
    _, state = finished_with_fault(client, "fail")
    assert state.state is State.FAILED
    assert state.error_code == "failed"
    assert state.provider_message == "Video generation failed, please retry"


@live
def test_expired_fault_finishes_but_its_link_answers_404(client: apimart.Client) -> None:
    _, state = finished_with_fault(client, "expired")
    assert state.state is State.SUCCEEDED
    assert httpx.get(state.video_url).status_code == 404


@live
def test_never_fault_keeps_reporting_running(client: apimart.Client) -> None:
    task_id = generate(client, "A fox [sandbox:never]")
    states: list[TaskState] = []
    stop_at = time.monotonic() + 1.5  # three times the task's run time
    while time.monotonic() < stop_at:
        states.append(client.status(task_id))
        time.sleep(0.2)
    assert len(states) >= 5
    assert all(state.state is State.RUNNING for state in states)
    assert all(state.progress < 100 for state in states)


@live
def test_policy_fault_on_a_remix_fails_the_remix(
    client: apimart.Client, finished_source: str
) -> None:
    remix_id = client.remix(finished_source, model="veo3.1-fast", prompt="More [sandbox:policy]")
    state = until_final(client, remix_id)
    assert state.state is State.FAILED
    assert state.error_code == "content_policy"
