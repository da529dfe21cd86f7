"""kie.ai's Veo 3.1 API: the client against the seed's bodies, and against the twin over HTTP."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from sandbox.models import SandboxTask
from videos import media
from videos.providers import kie
from videos.providers.base import (
    Credentials,
    FrameInput,
    GenerationRequest,
    ProviderError,
    State,
    TaskState,
)

WEBHOOK_KEY = "test-kie-webhook-key"
NOW = datetime(2025, 6, 6, 10, 30, tzinfo=UTC)

# seeds/kie-veo31-extend.md, "请求示例".
SEED_EXTEND_REQUEST = {
    "taskId": "veo_task_abcdef123456",
    "prompt": "The dog continues running through the park, jumping over obstacles and "
    "playing with other dogs",
    "seeds": 12345,
    "watermark": "MyBrand",
    "callBackUrl": "https://your-callback-url.com/veo-extend-callback",
}
SEED_EXTEND_RESPONSE = {"code": 200, "msg": "success", "data": {"taskId": "veo_extend_task_xyz789"}}

# kie's record-info page, the example answer (PROVIDERS.md §3 names its fields).
RECORD_SUCCESS = {
    "code": 200,
    "msg": "success",
    "data": {
        "taskId": "veo_task_abcdef123456",
        "paramJson": '{"prompt":"A futuristic city with flying cars at sunset.",'
        '"waterMark":"KieAI"}',
        "completeTime": "2025-06-06 10:30:00",
        "response": {
            "taskId": "veo_task_abcdef123456",
            "resultUrls": ["http://example.com/video1.mp4"],
            "originUrls": ["http://example.com/original_video1.mp4"],
            "resolution": "1080p",
        },
        "successFlag": 1,
        "errorCode": None,
        "errorMessage": "",
        "createTime": "2025-06-06 10:25:00",
        "fallbackFlag": False,
    },
}

# kie's callback page, the success example.
CALLBACK_SUCCESS = {
    "code": 200,
    "msg": "Veo3.1 video generated successfully.",
    "data": {
        "taskId": "veo_task_abcdef123456",
        "info": {
            "resultUrls": ["http://example.com/video1.mp4"],
            "originUrls": ["http://example.com/original_video1.mp4"],
            "resolution": "1080p",
        },
        "fallbackFlag": False,
    },
}


def _record(**changes: Any) -> dict[str, Any]:
    data = {**RECORD_SUCCESS["data"], **changes}
    return {**RECORD_SUCCESS, "data": data}


class Receiver:
    """A tiny real HTTP server that records what it is sent and answers with ``reply``."""

    def __init__(self, reply: dict[str, Any] | None = None) -> None:
        self.reply = reply or {"ok": True}
        self.requests: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append(
                    {"path": self.path, "headers": dict(self.headers.items()), "body": body}
                )
                payload = json.dumps(receiver.reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def kie_client(live_server) -> kie.Client:
    return kie.Client(f"{live_server.url}/sandbox/kie", Credentials(key="kie-sandbox-key-0001"))


@pytest.fixture
def webhook_key(settings) -> str:
    settings.SANDBOX_KIE_WEBHOOK_KEY = WEBHOOK_KEY
    return WEBHOOK_KEY


def _wait_until(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError("gave up waiting")


def _finish(client: kie.Client, task_id: str) -> TaskState:
    def final() -> TaskState | None:
        state = client.status(task_id)
        return state if state.is_final else None

    return _wait_until(final)


def _probe(url: str, tmp_path, name: str) -> media.VideoInfo:
    response = httpx.get(url, timeout=60)
    assert response.status_code == 200
    assert response.headers["content-type"] == "video/mp4"
    target = tmp_path / name
    target.write_bytes(response.content)
    return media.probe(str(target))


def _signed(body: dict[str, Any], *, timestamp: int, key: str = WEBHOOK_KEY) -> dict[str, str]:
    return {
        "X-Webhook-Timestamp": str(timestamp),
        "X-Webhook-Signature": kie.signature(key, body["data"]["taskId"], str(timestamp)),
    }


# --- the seed's bodies -------------------------------------------------------------------


def test_extend_sends_the_seeds_example_request_and_reads_its_answer():
    fake_kie = Receiver(reply=SEED_EXTEND_RESPONSE)
    try:
        client = kie.Client(fake_kie.url, Credentials(key="kie-key-123"))
        task_id = client.extend(
            "veo_task_abcdef123456",
            prompt=SEED_EXTEND_REQUEST["prompt"],
            seeds=12345,
            watermark="MyBrand",
            callback_url="https://your-callback-url.com/veo-extend-callback",
        )
    finally:
        fake_kie.close()
    assert task_id == "veo_extend_task_xyz789"
    (sent,) = fake_kie.requests
    assert sent["path"] == "/api/v1/veo/extend"
    assert sent["headers"]["Authorization"] == "Bearer kie-key-123"
    assert sent["headers"]["Content-Type"] == "application/json"
    assert json.loads(sent["body"]) == SEED_EXTEND_REQUEST


def test_generate_with_reference_images_matches_kies_documented_example():
    request = GenerationRequest(
        model="veo3_fast",
        prompt="A dog playing in a park",
        params={
            "aspect_ratio": "16:9",
            "seeds": 12345,
            "watermark": "MyBrand",
            "enable_fallback": False,
            "enable_translation": True,
            "duration": 8,
            "resolution": "720p",
        },
        frames=(
            FrameInput(role="reference", url="http://example.com/image1.jpg"),
            FrameInput(role="reference", url="http://example.com/image2.jpg"),
        ),
        callback_url="http://your-callback-url.com/complete",
    )
    body = kie.Client("https://api.kie.ai", Credentials(key="k")).generation_body(request)
    assert body == {
        "prompt": "A dog playing in a park",
        "imageUrls": ["http://example.com/image1.jpg", "http://example.com/image2.jpg"],
        "model": "veo3_fast",
        "watermark": "MyBrand",
        "callBackUrl": "http://your-callback-url.com/complete",
        "aspectRatio": "16:9",
        "seeds": 12345,
        "enableFallback": False,
        "enableTranslation": True,
        "generationType": "REFERENCE_2_VIDEO",
    }


def test_frames_decide_the_generation_type():
    client = kie.Client("https://api.kie.ai", Credentials(key="k"))

    def body(*frames: FrameInput) -> dict[str, Any]:
        return client.generation_body(GenerationRequest("veo3", "p", frames=frames))

    assert body()["generationType"] == "TEXT_2_VIDEO"
    assert "imageUrls" not in body()
    first = FrameInput(role="first", url="https://img.example/first.png")
    last = FrameInput(role="last", url="https://img.example/last.png")
    assert body(first) == {
        "prompt": "p",
        "model": "veo3",
        "generationType": "FIRST_AND_LAST_FRAMES_2_VIDEO",
        "imageUrls": ["https://img.example/first.png"],
    }
    # The order kie reads is first, then last, whatever order the studio lists them in.
    assert body(last, first)["imageUrls"] == [first.url, last.url]


@pytest.mark.parametrize(
    ("frames", "code"),
    [
        ((FrameInput(role="first", content=b"png"),), "frame_url_required"),
        ((FrameInput(role="last", url="https://img.example/l.png"),), "last_without_first"),
        (
            (
                FrameInput(role="first", url="https://img.example/f.png"),
                FrameInput(role="reference", url="https://img.example/r.png"),
            ),
            "frame_mix",
        ),
    ],
)
def test_frames_kie_cannot_take_are_refused_before_anything_is_sent(frames, code):
    client = kie.Client("http://127.0.0.1:9", Credentials(key="k"))
    with pytest.raises(ProviderError) as caught:
        client.submit(GenerationRequest("veo3_fast", "p", frames=frames))
    assert caught.value.code == code
    assert caught.value.permanent


def test_record_info_success_is_a_finished_video_whose_link_lasts_twenty_minutes():
    state = kie.parse_status(RECORD_SUCCESS, now=NOW)
    assert state.state is State.SUCCEEDED
    assert state.progress == 100
    assert state.video_url == "http://example.com/video1.mp4"
    assert state.expires_at == NOW + timedelta(minutes=20)
    assert state.cost is None


def test_record_info_while_generating_is_running():
    state = kie.parse_status(_record(successFlag=0, response=None, completeTime=None))
    assert state.state is State.RUNNING
    assert not state.is_final
    assert state.phase


@pytest.mark.parametrize("flag", [2, 3])
def test_record_info_failures_keep_kies_words_and_say_what_to_do(flag):
    body = _record(
        successFlag=flag,
        response=None,
        errorCode=400,
        errorMessage="Your prompt was flagged by Website as violating content policies.",
    )
    state = kie.parse_status(body)
    assert state.state is State.FAILED
    assert state.error_code == "400"
    assert state.provider_message.startswith("Your prompt was flagged")
    assert "content policy" in state.error_message
    assert "try again" in state.error_message


def test_record_info_failure_without_an_error_code_names_the_flag():
    state = kie.parse_status(_record(successFlag=3, response=None, errorMessage="upstream"))
    assert state.state is State.FAILED
    assert state.error_code == "successFlag_3"
    assert state.provider_message == "upstream"


def test_an_unknown_success_flag_counts_as_still_running():
    assert kie.parse_status(_record(successFlag=7)).state is State.RUNNING
    assert kie.parse_status({"code": 200, "msg": "success", "data": None}).state is State.RUNNING


def test_credits_consumed_become_the_cost():
    state = kie.parse_status(_record(creditsConsumed=60))
    assert state.cost == Decimal("60")


def test_success_without_any_link_is_a_failure_not_a_silent_success():
    body = _record(response={"taskId": "t", "resultUrls": [], "originUrls": []})
    state = kie.parse_status(body)
    assert state.state is State.FAILED
    assert state.error_code == "no_video"


# --- callbacks ---------------------------------------------------------------------------


def test_a_correctly_signed_callback_gives_the_task_and_its_state():
    body = json.dumps(CALLBACK_SUCCESS).encode()
    now = NOW.timestamp()
    task_id, state = kie.verify_callback(
        _signed(CALLBACK_SUCCESS, timestamp=int(now) - 10), body, WEBHOOK_KEY, now=now
    )
    assert task_id == "veo_task_abcdef123456"
    assert state.state is State.SUCCEEDED
    assert state.video_url == "http://example.com/video1.mp4"


def test_header_names_are_read_whatever_their_case():
    now = NOW.timestamp()
    headers = {k.lower(): v for k, v in _signed(CALLBACK_SUCCESS, timestamp=int(now)).items()}
    task_id, _ = kie.verify_callback(
        headers, json.dumps(CALLBACK_SUCCESS).encode(), WEBHOOK_KEY, now=now
    )
    assert task_id == "veo_task_abcdef123456"


def test_a_duplicate_delivery_gives_the_same_result():
    body = json.dumps(CALLBACK_SUCCESS).encode()
    now = NOW.timestamp()
    headers = _signed(CALLBACK_SUCCESS, timestamp=int(now))
    first = kie.verify_callback(headers, body, WEBHOOK_KEY, now=now)
    second = kie.verify_callback(headers, body, WEBHOOK_KEY, now=now + 1)
    assert first[0] == second[0]
    assert (first[1].state, first[1].video_url) == (second[1].state, second[1].video_url)


def test_a_failure_callback_is_a_failed_state_with_kies_message():
    body = {
        "code": 400,
        "msg": "Your prompt was flagged by Website as violating content policies.",
        "data": {"taskId": "veo_task_abcdef123456", "fallbackFlag": False},
    }
    now = NOW.timestamp()
    _, state = kie.verify_callback(
        _signed(body, timestamp=int(now)), json.dumps(body).encode(), WEBHOOK_KEY, now=now
    )
    assert state.state is State.FAILED
    assert state.error_code == "400"
    assert "content policy" in state.error_message


@pytest.mark.parametrize(
    "tamper",
    [
        "wrong_key",
        "stale",
        "future",
        "other_task",
        "no_headers",
        "not_json",
        "timestamp_not_a_number",
    ],
)
def test_callbacks_that_cannot_be_trusted_are_refused(tamper):
    now = NOW.timestamp()
    body = json.dumps(CALLBACK_SUCCESS).encode()
    headers = _signed(CALLBACK_SUCCESS, timestamp=int(now))
    if tamper == "wrong_key":
        headers = _signed(CALLBACK_SUCCESS, timestamp=int(now), key="someone-else")
    elif tamper == "stale":
        headers = _signed(CALLBACK_SUCCESS, timestamp=int(now) - 301)
    elif tamper == "future":
        headers = _signed(CALLBACK_SUCCESS, timestamp=int(now) + 301)
    elif tamper == "other_task":
        forged = {**CALLBACK_SUCCESS, "data": {**CALLBACK_SUCCESS["data"], "taskId": "other"}}
        body = json.dumps(forged).encode()
    elif tamper == "no_headers":
        headers = {}
    elif tamper == "not_json":
        body = b"<html>"
    elif tamper == "timestamp_not_a_number":
        headers = {**headers, "X-Webhook-Timestamp": "yesterday"}
    with pytest.raises(kie.BadSignature):
        kie.verify_callback(headers, body, WEBHOOK_KEY, now=now)


def test_no_configured_key_means_no_callback_is_trusted():
    now = NOW.timestamp()
    with pytest.raises(kie.BadSignature):
        kie.verify_callback(
            _signed(CALLBACK_SUCCESS, timestamp=int(now), key=""),
            json.dumps(CALLBACK_SUCCESS).encode(),
            "",
            now=now,
        )


# --- against the twin, over HTTP ---------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_generate_becomes_an_eight_second_mp4(kie_client, tmp_path):
    task_id = kie_client.submit(
        GenerationRequest(
            "veo3_fast",
            "A lighthouse at dusk, waves rolling in",
            params={"aspect_ratio": "16:9", "duration": 8, "resolution": "720p"},
        )
    )
    received = SandboxTask.objects.get(task_id=task_id)
    assert received.request == {
        "prompt": "A lighthouse at dusk, waves rolling in",
        "model": "veo3_fast",
        "generationType": "TEXT_2_VIDEO",
        "aspectRatio": "16:9",
    }
    assert received.api_key_hint == "0001"
    assert kie_client.status(task_id).state is State.RUNNING

    state = _finish(kie_client, task_id)
    assert state.state is State.SUCCEEDED
    assert state.expires_at is not None
    assert state.raw["data"]["response"]["resolution"] == "720p"
    info = _probe(state.video_url, tmp_path, "generated.mp4")
    assert info.duration == pytest.approx(8.0, abs=0.05)
    assert info.codec == "h264"
    assert info.width > info.height


@pytest.mark.django_db(transaction=True)
def test_extending_gives_the_continuation_and_the_stitched_whole_apart(kie_client, tmp_path):
    # kie's extend page: resultUrls is the continuation from the source's last frame; the
    # source and the continuation stitched together come as fullResultUrls.
    source_id = kie_client.submit(
        GenerationRequest("veo3", "A dog runs in a park", params={"aspect_ratio": "9:16"})
    )
    _finish(kie_client, source_id)
    extension_id = kie_client.extend(source_id, prompt="The dog jumps a fence", seeds=12345)
    assert SandboxTask.objects.get(task_id=extension_id).request == {
        "taskId": source_id,
        "prompt": "The dog jumps a fence",
        "seeds": 12345,
    }
    state = _finish(kie_client, extension_id)
    assert state.state is State.SUCCEEDED
    info = _probe(state.video_url, tmp_path, "extended.mp4")
    assert info.duration == pytest.approx(7.0, abs=0.05)
    assert info.height > info.width
    full = state.raw["data"]["response"]["fullResultUrls"][0]
    assert _probe(full, tmp_path, "whole.mp4").duration == pytest.approx(15.0, abs=0.05)
    extension = SandboxTask.objects.get(task_id=extension_id)
    # The counter runs on from where the source ended.
    assert extension.source.task_id == source_id
    assert extension.start_at == 8


@pytest.mark.django_db(transaction=True)
def test_an_unfinished_or_unknown_source_cannot_be_extended(kie_client):
    source_id = kie_client.submit(GenerationRequest("veo3", "A quiet lake"))
    with pytest.raises(ProviderError) as unfinished:
        kie_client.extend(source_id, prompt="Ripples spread")
    assert unfinished.value.code == "422"
    assert unfinished.value.permanent
    with pytest.raises(ProviderError) as unknown:
        kie_client.extend("veo_task_nobody_made", prompt="Ripples spread")
    assert unknown.value.code == "404"
    assert unknown.value.permanent


@pytest.mark.django_db(transaction=True)
def test_after_its_1080p_version_a_video_cannot_be_extended(kie_client, tmp_path):
    source_id = kie_client.submit(GenerationRequest("veo3_fast", "A city skyline at night"))
    _finish(kie_client, source_id)
    assert kie_client.get_1080p_video(source_id) is None  # "1080P is processing"
    hd_url = _wait_until(lambda: kie_client.get_1080p_video(source_id))
    hd = _probe(hd_url, tmp_path, "hd.mp4")
    assert hd.duration == pytest.approx(8.0, abs=0.05)

    with pytest.raises(ProviderError) as refused:
        kie_client.extend(source_id, prompt="Fireworks start")
    assert refused.value.permanent
    assert "1080p" in refused.value.message
    assert "1080P" in refused.value.provider_message


@pytest.mark.django_db(transaction=True)
def test_the_signed_callback_arrives_twice_over_http_and_verifies(
    kie_client, receiver, webhook_key
):
    task_id = kie_client.submit(
        GenerationRequest("veo3_fast", "Bees over a meadow", callback_url=f"{receiver.url}/hook")
    )
    assert SandboxTask.objects.get(task_id=task_id).request["callBackUrl"] == (
        f"{receiver.url}/hook"
    )
    _wait_until(lambda: len(receiver.requests) >= 2)
    results = [
        kie.verify_callback(sent["headers"], sent["body"], webhook_key)
        for sent in receiver.requests
    ]
    assert {task for task, _ in results} == {task_id}
    assert {state.state for _, state in results} == {State.SUCCEEDED}
    polled = kie_client.status(task_id)
    assert {state.video_url for _, state in results} == {polled.video_url}
    assert receiver.requests[0]["path"] == "/hook"
    with pytest.raises(kie.BadSignature):
        kie.verify_callback(receiver.requests[0]["headers"], receiver.requests[0]["body"], "x")


@pytest.mark.django_db(transaction=True)
def test_a_failed_task_is_called_back_as_failed(kie_client, receiver, webhook_key):
    task_id = kie_client.submit(
        GenerationRequest("veo3", "Storm [sandbox:fail]", callback_url=receiver.url)
    )
    _wait_until(lambda: len(receiver.requests) >= 2)
    _, state = kie.verify_callback(
        receiver.requests[0]["headers"], receiver.requests[0]["body"], webhook_key
    )
    assert state.state is State.FAILED
    assert kie_client.status(task_id).state is State.FAILED


@pytest.mark.django_db(transaction=True)
def test_a_callback_receiver_that_is_down_does_not_break_the_task(kie_client):
    dead = Receiver()
    dead.close()
    task_id = kie_client.submit(
        GenerationRequest("veo3_fast", "A paper boat", callback_url=dead.url)
    )
    assert _finish(kie_client, task_id).state is State.SUCCEEDED
    time.sleep(0.5)  # let both deliveries fail
    assert kie_client.status(task_id).state is State.SUCCEEDED


@pytest.mark.django_db(transaction=True)
def test_first_and_last_frames_reach_kie_as_image_urls(kie_client):
    task_id = kie_client.submit(
        GenerationRequest(
            "veo3",
            "Morning becomes night",
            frames=(
                FrameInput(role="first", url="https://img.example/morning.png"),
                FrameInput(role="last", url="https://img.example/night.png"),
            ),
        )
    )
    received = SandboxTask.objects.get(task_id=task_id).request
    assert received["generationType"] == "FIRST_AND_LAST_FRAMES_2_VIDEO"
    assert received["imageUrls"] == [
        "https://img.example/morning.png",
        "https://img.example/night.png",
    ]


@pytest.mark.django_db(transaction=True)
def test_reference_images_are_for_the_fast_model_only(kie_client):
    with pytest.raises(ProviderError) as caught:
        kie_client.submit(
            GenerationRequest(
                "veo3",
                "A product shot",
                frames=(FrameInput(role="reference", url="https://img.example/r.png"),),
            )
        )
    assert caught.value.code == "422"
    assert caught.value.permanent
    assert "veo3_fast" in caught.value.provider_message


@pytest.mark.django_db(transaction=True)
def test_a_seed_outside_kies_range_is_a_validation_error(kie_client):
    with pytest.raises(ProviderError) as caught:
        kie_client.submit(GenerationRequest("veo3", "A fox", params={"seeds": 123}))
    assert caught.value.code == "422"
    assert caught.value.permanent
    assert "10000" in caught.value.provider_message


@pytest.mark.django_db(transaction=True)
def test_a_request_without_a_key_is_refused_in_kies_body_code_style(live_server):
    response = httpx.get(
        f"{live_server.url}/sandbox/kie/api/v1/veo/record-info", params={"taskId": "x"}
    )
    assert response.status_code == 200
    assert response.json()["code"] == 401
    with pytest.raises(ProviderError) as caught:
        kie.parse_answer(response)
    assert caught.value.code == "401"
    assert caught.value.permanent
    assert "API key" in caught.value.message


def test_an_account_without_a_key_is_refused_before_anything_is_sent():
    client = kie.Client("http://127.0.0.1:9", Credentials(key=""))
    with pytest.raises(ProviderError) as caught:
        client.status("anything")
    assert caught.value.code == "no_key"
    assert caught.value.permanent


@pytest.mark.django_db(transaction=True)
def test_an_unknown_task_is_not_found(kie_client):
    with pytest.raises(ProviderError) as caught:
        kie_client.status("veo_task_never_made")
    assert caught.value.code == "404"
    assert caught.value.permanent


# --- faults -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "permanent", "safe_to_resend", "words"),
    [
        (400, True, False, "fetch a frame image"),
        (401, True, False, "API key"),
        (402, True, False, "credits"),
        (404, True, False, "does not know"),
        (422, True, False, "parameter"),
        (429, False, True, "rate-limiting"),
        (455, False, True, "maintenance"),
        (500, False, True, "internal error"),
        (501, True, False, "could not make"),
        (505, True, False, "switched this feature off"),
    ],
)
@pytest.mark.django_db(transaction=True)
def test_each_documented_body_code_is_a_plain_provider_error(
    kie_client, code, permanent, safe_to_resend, words
):
    with pytest.raises(ProviderError) as caught:
        kie_client.submit(GenerationRequest("veo3_fast", f"A cat [sandbox:{code}]"))
    error = caught.value
    assert error.code == str(code)
    assert error.permanent is permanent
    assert error.safe_to_resend is safe_to_resend
    assert words in error.message
    assert error.provider_message
    assert error.retry_after == (2.0 if code == 429 else None)
    assert not SandboxTask.objects.filter(provider="kie").exists()


@pytest.mark.django_db(transaction=True)
def test_an_extension_that_kie_fails_at_once_says_so(kie_client):
    with pytest.raises(ProviderError) as caught:
        kie_client.extend("veo_task_abcdef123456", prompt="More [sandbox:501]")
    assert caught.value.code == "501"
    assert caught.value.permanent
    assert "could not extend" in caught.value.message
    assert caught.value.provider_message.startswith("Extension Failed")


@pytest.mark.django_db(transaction=True)
def test_a_content_policy_refusal_uses_kies_wording(kie_client):
    with pytest.raises(ProviderError) as caught:
        kie_client.submit(GenerationRequest("veo3", "Something [sandbox:policy]"))
    assert caught.value.code == "400"
    assert caught.value.permanent
    assert caught.value.message == kie.POLICY_MESSAGE
    assert "flagged" in caught.value.provider_message


@pytest.mark.django_db(transaction=True)
def test_an_unreadable_answer_is_never_resent_blindly(kie_client):
    with pytest.raises(ProviderError) as caught:
        kie_client.submit(GenerationRequest("veo3", "Waves [sandbox:malformed]"))
    assert caught.value.code == "malformed"
    assert not caught.value.permanent
    assert not caught.value.safe_to_resend


@pytest.mark.django_db(transaction=True)
def test_a_submission_that_answers_too_late_is_not_resent(kie_client, settings):
    settings.PROVIDER_TIMEOUT_SECONDS = 0.5
    settings.SANDBOX_TIMEOUT_SECONDS = 1.5
    with pytest.raises(ProviderError) as caught:
        kie_client.submit(GenerationRequest("veo3", "Slow [sandbox:timeout]"))
    assert caught.value.code == "no_answer"
    assert not caught.value.safe_to_resend
    time.sleep(1.2)  # let the twin finish its late answer before the database is flushed


@pytest.mark.django_db(transaction=True)
def test_a_task_that_fails_is_generation_failed_with_kies_error(kie_client):
    task_id = kie_client.submit(GenerationRequest("veo3", "Rain [sandbox:fail]"))
    state = _finish(kie_client, task_id)
    assert state.state is State.FAILED
    assert state.raw["data"]["successFlag"] == 3
    assert state.error_code == "501"
    assert state.provider_message
    assert "try again" in state.error_message


@pytest.mark.django_db(transaction=True)
def test_a_task_that_never_finishes_keeps_running(kie_client):
    task_id = kie_client.submit(GenerationRequest("veo3", "Forever [sandbox:never]"))
    time.sleep(2.0)
    assert kie_client.status(task_id).state is State.RUNNING


@pytest.mark.django_db(transaction=True)
def test_an_expired_link_answers_404_though_the_task_succeeded(kie_client):
    task_id = kie_client.submit(GenerationRequest("veo3", "Dunes [sandbox:expired]"))
    state = _finish(kie_client, task_id)
    assert state.state is State.SUCCEEDED
    assert httpx.get(state.video_url, timeout=10).status_code == 404
