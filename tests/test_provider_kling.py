"""Kling: the seed's answers through the parser, and the client against its twin over HTTP.

Contract bodies are copied verbatim from seeds/kling-video-extend.md. The seed prints them with
``//`` comments and a ``boolean`` placeholder, which ``seed_json`` turns into JSON.
"""

from __future__ import annotations

import base64
import io
import json
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import jwt
import pytest
from django.utils import timezone
from PIL import Image

from sandbox.models import SandboxTask
from videos import media
from videos.models import Clip, ClipStatus, ProviderAccount, ProviderKind
from videos.providers import MODULES, kling
from videos.providers.base import (
    Credentials,
    FrameInput,
    GenerationRequest,
    ProviderError,
    State,
    TaskState,
)

ACCESS_KEY = "ak-sandbox-test-0001"
# The twin's documented rule: the secret of access key AK is "sandbox-secret-" + AK.
SECRET_KEY = "sandbox-secret-" + ACCESS_KEY
PLAIN_KEY = "sk-kling-plain-key-0001"

SEED_CREATE_ANSWER = """{
    "code": 0,
    "message": "string",
    "request_id": "string",
    "data": {
        "task_id": "string",
        "task_status": "string",  // submitted/processing/succeed/failed
        "task_info": {
            "external_task_id": "string"
        },
        "created_at": 1722769557708,
        "updated_at": 1722769557708
    }
}"""

SEED_QUERY_ANSWER = """{
    "code": 0,
    "message": "string",
    "request_id": "string",
    "data": {
        "task_id": "string",
        "task_status": "string",
        "task_status_msg": "string",
        "task_info": {
            "parent_video": {
                "id": "string",         // 延长前的视频ID
                "url": "string",        // 延长前视频的URL（30天后清理）
                "duration": "string"    // 延长前的视频总时长(s)
            },
            "external_task_id": "string"
        },
        "task_result": {
            "videos": [
                {
                    "id": "string",           // 延长后的完整视频ID
                    "url": "string",          // 延长后视频的URL
                    "watermark_url": "string",// 含水印视频URL
                    "duration": "string"      // 视频总时长(s)
                }
            ]
        },
        "watermark_info": {
            "enabled": boolean
        },
        "final_unit_deduction": "string",
        "created_at": 1722769557708,
        "updated_at": 1722769557708
    }
}"""

SEED_LIST_ANSWER = """{
    "code": 0,
    "message": "string",
    "request_id": "string",
    "data": [
        {
            "task_id": "string",
            "task_status": "string",
            "task_status_msg": "string",
            "task_info": {
                "parent_video": {
                    "id": "string",
                    "url": "string",
                    "duration": "string"
                },
                "external_task_id": "string"
            },
            "task_result": {
                "videos": [
                    {
                        "id": "string",
                        "url": "string",
                        "watermark_url": "string",
                        "duration": "string"
                    }
                ]
            },
            "watermark_info": {
                "enabled": boolean
            },
            "final_unit_deduction": "string",
            "created_at": 1722769557708,
            "updated_at": 1722769557708
        }
    ]
}"""


def seed_json(text: str) -> dict:
    return json.loads(re.sub(r"//[^\n]*", "", text).replace(": boolean", ": true"))


def filled_in(text: str, **values: str) -> dict:
    """The seed's query answer with its "string" placeholders replaced, field by field."""
    body = seed_json(text)
    data = body["data"]
    data["task_status"] = values.get("task_status", "succeed")
    data["task_status_msg"] = values.get("task_status_msg", "")
    data["task_id"] = "784312345678901234"
    data["task_info"]["parent_video"].update(
        id="parent-video-1", url="https://cdn.example/parent.mp4", duration="5"
    )
    data["task_result"]["videos"][0].update(
        id="video-after-1",
        url="https://cdn.example/whole.mp4",
        watermark_url="https://cdn.example/whole-wm.mp4",
        duration="9.625",
    )
    data["final_unit_deduction"] = values.get("final_unit_deduction", "3.5")
    return body


def answer(status: int, body: dict | str, headers: dict[str, str] | None = None) -> httpx.Response:
    text = body if isinstance(body, str) else json.dumps(body)
    return httpx.Response(status, content=text.encode(), headers=headers)


def tiny_png(width: int = 640, height: int = 360) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (40, 90, 160)).save(buffer, format="PNG")
    return buffer.getvalue()


def wait_for(kling_client: kling.Client, task_id: str, timeout: float = 20) -> TaskState:
    deadline = time.monotonic() + timeout
    while True:
        state = kling_client.status(task_id)
        if state.is_final:
            return state
        assert time.monotonic() < deadline, f"{task_id} still {state.state} after {timeout} s"
        time.sleep(0.2)


def video_seconds(url: str) -> float:
    response = httpx.get(url, timeout=30)
    assert response.status_code == 200
    return media.probe(io.BytesIO(response.content)).duration


def twin_task(task_id: str) -> SandboxTask:
    return SandboxTask.objects.get(provider="kling", task_id=kling.split_task_id(task_id)[1])


@pytest.fixture
def base_url(live_server) -> str:
    return f"{live_server.url}/sandbox/kling"


@pytest.fixture
def kling_client(base_url) -> kling.Client:
    return kling.Client(base_url, Credentials(key=ACCESS_KEY, secret=SECRET_KEY))


def generate(kling_client: kling.Client, prompt: str = "A paper boat on a rain puddle", **params):
    request = GenerationRequest(
        model=params.pop("model", "kling-v1-6"),
        prompt=prompt,
        params={"duration": 5, "aspect_ratio": "16:9", "resolution": "std", **params},
    )
    return kling_client.submit(request)


# --- registry and capabilities -------------------------------------------------------------


def test_kling_is_registered_and_only_v1_models_offer_extension():
    assert MODULES["kling"] is kling
    extendable = {spec.name for spec in kling.MODELS if spec.extend}
    assert extendable == {"kling-v1", "kling-v1-5", "kling-v1-6"}
    assert any(spec.extend is None for spec in kling.MODELS)
    assert kling.EXTEND.adds_seconds == 4.5
    assert kling.EXTEND.max_total_seconds == 180
    assert kling.EXTEND.returns == "whole"
    for spec in kling.MODELS:
        assert spec.durations == (5, 10)
        assert spec.resolutions == ("std", "pro") or spec.extend is None
        assert spec.frame_transports == ("url", "base64")


# --- contract: the seed's exact answers ----------------------------------------------------


def test_seed_create_answer_gives_the_task_id():
    body = kling.parse_answer(answer(200, seed_json(SEED_CREATE_ANSWER)))
    assert kling.created_task_id(body) == "string"


def test_seed_query_answer_with_placeholders_counts_as_a_running_extension():
    body = kling.parse_answer(answer(200, seed_json(SEED_QUERY_ANSWER)))
    state = kling.parse_task(body["data"], raw=body)
    # "string" is not a status word Kling documents: unknown words mean still running.
    assert state.state is State.RUNNING
    assert state.phase == "Extending"
    assert state.cost is None  # "string" is no amount
    assert state.raw["video_id"] == "string"
    assert state.raw["request_id"] == "string"


def test_seed_query_answer_filled_in_succeeds_with_cost_video_id_and_thirty_day_expiry():
    body = filled_in(SEED_QUERY_ANSWER)
    state = kling.parse_task(body["data"], raw=body)
    assert state.state is State.SUCCEEDED
    assert state.video_url == "https://cdn.example/whole.mp4"
    assert state.cost == Decimal("3.5")
    assert state.raw["video_id"] == "video-after-1"
    assert state.raw["video_seconds"] == 9.625
    # created_at is in milliseconds: 1722769557708 is 2024-08-04 11:05:57.708 UTC.
    created = datetime(2024, 8, 4, 11, 5, 57, 708000, tzinfo=UTC)
    assert state.expires_at == created + timedelta(days=30)


def test_seed_query_answer_as_failed_keeps_klings_reason():
    body = filled_in(
        SEED_QUERY_ANSWER,
        task_status="failed",
        task_status_msg="risk control",
        final_unit_deduction="0",
    )
    state = kling.parse_task(body["data"], raw=body)
    assert state.state is State.FAILED
    assert state.provider_message == "risk control"
    assert "Change the prompt" in state.error_message
    assert state.cost == Decimal("0")


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("submitted", State.QUEUED),
        ("processing", State.RUNNING),
        ("succeed", State.SUCCEEDED),
        ("failed", State.FAILED),
        ("queued-for-gpu", State.RUNNING),
    ],
)
def test_every_status_word_is_normalised(word, expected):
    body = filled_in(SEED_QUERY_ANSWER, task_status=word)
    assert kling.parse_task(body["data"], raw=body).state is expected


def test_seed_list_answer_gives_ids_the_studio_can_poll():
    body = kling.parse_answer(answer(200, seed_json(SEED_LIST_ANSWER)))
    [(task_id, state)] = kling.parse_task_list(body, family="video-extend")
    assert task_id == "video-extend:string"
    assert kling.split_task_id(task_id) == ("video-extend", "string")
    assert state.state is State.RUNNING
    assert state.raw["video_id"] == "string"


# --- error mapping -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("http_status", "code", "permanent", "words"),
    [
        (401, 1000, True, "API key"),
        (401, 1004, True, "clock"),
        (429, 1101, True, "arrears"),
        (429, 1102, True, "resource pack"),
        (403, 1103, True, "access"),
        (400, 1201, True, "setting"),
        (404, 1203, True, "does not know"),
        (400, 1301, True, "content policy"),
        (429, 1303, False, "as many tasks"),
        (500, 5000, False, "internal error"),
        (503, 5001, False, "temporarily unavailable"),
    ],
)
def test_documented_kling_codes_become_plain_errors(http_status, code, permanent, words):
    body = {"code": code, "message": "as Kling said it", "request_id": "r-1"}
    with pytest.raises(ProviderError) as caught:
        kling.parse_answer(answer(http_status, body))
    error = caught.value
    assert error.code == str(code)
    assert error.permanent is permanent
    assert error.http_status == http_status
    assert words in error.message
    assert error.provider_message == "as Kling said it"


def test_rate_limit_carries_retry_after_and_may_be_resent():
    body = {"code": 1302, "message": "too fast", "request_id": "r-2"}
    with pytest.raises(ProviderError) as caught:
        kling.parse_answer(answer(429, body, {"Retry-After": "7"}))
    assert caught.value.retry_after == 7
    assert caught.value.safe_to_resend


def test_undocumented_code_falls_back_to_the_http_status():
    with pytest.raises(ProviderError) as caught:
        kling.parse_answer(answer(502, {"code": 9999, "message": "odd", "request_id": "r"}))
    assert caught.value.http_status == 502
    assert not caught.value.permanent


def test_non_zero_code_on_http_200_is_an_error():
    with pytest.raises(ProviderError) as caught:
        kling.parse_answer(
            answer(200, {"code": 1201, "message": "bad duration", "request_id": "r"})
        )
    assert caught.value.permanent
    assert caught.value.http_status == 400


def test_unreadable_200_is_an_unknown_outcome_never_resent():
    with pytest.raises(ProviderError) as caught:
        kling.parse_answer(answer(200, "<html>oops</html>"))
    assert caught.value.code == "no_answer"
    assert not caught.value.safe_to_resend


def test_a_task_id_without_its_endpoint_family_is_refused():
    with pytest.raises(ProviderError) as caught:
        kling.Client("https://kling.invalid", Credentials(key="sk-x")).status("784312345678901234")
    assert caught.value.code == "bad_task_id"
    assert caught.value.permanent


def test_image_only_model_without_a_first_frame_is_refused_before_any_call():
    kling_client = kling.Client("https://kling.invalid", Credentials(key="sk-x"))
    with pytest.raises(ProviderError) as caught:
        generate(kling_client, model="kling-v1-5")
    assert caught.value.code == "needs_first_frame"
    assert caught.value.permanent


# --- auth ------------------------------------------------------------------------------------


def test_client_signs_a_fresh_hs256_jwt_with_the_secret_key():
    kling_client = kling.Client(
        "https://kling.invalid",
        Credentials(key=ACCESS_KEY, secret="a-secret-key-of-thirty-two-bytes"),
    )
    scheme, token = kling_client.authorization().split(" ")
    assert scheme == "Bearer"
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
    claims = jwt.decode(token, "a-secret-key-of-thirty-two-bytes", algorithms=["HS256"])
    now = int(time.time())
    assert claims["iss"] == ACCESS_KEY
    assert abs(claims["exp"] - (now + 1800)) <= 2
    assert abs(claims["nbf"] - (now - 5)) <= 2


def test_client_without_a_secret_sends_the_plain_key():
    kling_client = kling.Client("https://kling.invalid", Credentials(key=PLAIN_KEY))
    assert kling_client.authorization() == f"Bearer {PLAIN_KEY}"


# --- against the twin over HTTP ------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_text_to_video_reaches_the_twin_signed_and_finishes_as_a_five_second_mp4(kling_client):
    task_id = generate(
        kling_client, negative_prompt="blur", cfg_scale=0.7, external_task_id="clip-42"
    )
    assert task_id.startswith("text2video:")

    received = twin_task(task_id).request
    assert received["body"] == {
        "model_name": "kling-v1-6",
        "prompt": "A paper boat on a rain puddle",
        "negative_prompt": "blur",
        "cfg_scale": 0.7,
        "mode": "std",
        "duration": "5",
        "aspect_ratio": "16:9",
        "external_task_id": "clip-42",
    }
    scheme, token = received["authorization"].split(" ")
    assert scheme == "Bearer"
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = jwt.decode(token, SECRET_KEY, algorithms=["HS256"])
    assert claims["iss"] == ACCESS_KEY
    assert claims["exp"] - claims["nbf"] == 1805

    state = wait_for(kling_client, task_id)
    assert state.state is State.SUCCEEDED
    assert state.cost == Decimal("1")
    assert state.raw["video_id"]
    assert state.expires_at > timezone.now() + timedelta(days=29)
    assert video_seconds(state.video_url) == pytest.approx(5.0, abs=0.05)


@pytest.mark.django_db(transaction=True)
def test_plain_bearer_key_is_accepted_as_is(base_url):
    kling_client = kling.Client(base_url, Credentials(key=PLAIN_KEY))
    task_id = generate(kling_client)
    assert twin_task(task_id).request["authorization"] == f"Bearer {PLAIN_KEY}"
    assert kling_client.status(task_id).state in {State.QUEUED, State.RUNNING}


@pytest.mark.django_db(transaction=True)
def test_twin_refuses_bad_signatures_expired_and_future_tokens(base_url):
    wrong = kling.Client(
        base_url, Credentials(key=ACCESS_KEY, secret="not-the-secret-for-this-access-key")
    )
    with pytest.raises(ProviderError) as caught:
        generate(wrong)
    assert (caught.value.http_status, caught.value.code, caught.value.permanent) == (
        401,
        "1000",
        True,
    )

    now = int(time.time())
    expired = jwt.encode({"iss": ACCESS_KEY, "exp": now - 60, "nbf": now - 1900}, SECRET_KEY)
    future = jwt.encode({"iss": ACCESS_KEY, "exp": now + 1800, "nbf": now + 600}, SECRET_KEY)
    url = f"{base_url}/v1/videos/text2video"
    for token, code in ((expired, 1004), (future, 1003), ("not-a-key", 1002)):
        response = httpx.post(
            url, json={"prompt": "x"}, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 401
        assert response.json()["code"] == code
        assert set(response.json()) == {"code", "message", "request_id"}
    assert httpx.post(url, json={"prompt": "x"}).json()["code"] == 1001


@pytest.mark.django_db(transaction=True)
def test_image_to_video_sends_raw_base64_and_a_url_tail(kling_client):
    png = tiny_png(360, 640)
    request = GenerationRequest(
        model="kling-v1-6",
        prompt="The kite lifts off",
        params={"duration": 10, "aspect_ratio": "16:9", "resolution": "pro"},
        frames=(
            FrameInput(role="first", content=png),
            FrameInput(role="last", url="https://images.example/last.png"),
        ),
    )
    task_id = kling_client.submit(request)
    assert task_id.startswith("image2video:")
    task = twin_task(task_id)
    body = task.request["body"]
    assert not body["image"].startswith("data:")
    assert base64.b64decode(body["image"]) == png
    assert body["image_tail"] == "https://images.example/last.png"
    assert body["duration"] == "10" and body["mode"] == "pro"
    assert "aspect_ratio" not in body  # text2video only
    assert task.height > task.width  # the portrait image decides the shape


@pytest.mark.django_db(transaction=True)
def test_a_data_uri_frame_is_sent_without_its_prefix(kling_client):
    png = tiny_png()
    data_uri = "data:image/png;base64," + base64.b64encode(png).decode()
    request = GenerationRequest(
        model="kling-v1",
        prompt="",
        params={"duration": 5},
        frames=(FrameInput(role="first", url=data_uri),),
    )
    task_id = kling_client.submit(request)
    assert base64.b64decode(twin_task(task_id).request["body"]["image"]) == png


@pytest.mark.django_db(transaction=True)
def test_twin_validates_inputs_as_klings_docs_describe(kling_client, base_url):
    headers = {"Authorization": kling_client.authorization()}
    small = base64.b64encode(tiny_png(200, 200)).decode()
    good = base64.b64encode(tiny_png()).decode()
    refused = {
        "text2video": [
            {"prompt": "x", "duration": 5},
            {"prompt": "x" * 2501},
            {"prompt": "x", "cfg_scale": 1.5},
            {"prompt": "x", "mode": "ultra"},
            {"prompt": "x", "aspect_ratio": "4:3"},
            {"prompt": ""},
        ],
        "image2video": [
            {"image": "data:image/png;base64," + good},
            {"image": small},
            {"image": "not base64 at all!"},
            {"model_name": "kling-v1-6"},
        ],
    }
    for family, bodies in refused.items():
        for body in bodies:
            response = httpx.post(f"{base_url}/v1/videos/{family}", json=body, headers=headers)
            assert response.status_code == 400, body
            assert response.json()["code"] == 1201, body
    accepted = httpx.post(
        f"{base_url}/v1/videos/image2video", json={"image": good}, headers=headers
    )
    assert accepted.json()["code"] == 0
    assert set(accepted.json()) == set(seed_json(SEED_CREATE_ANSWER))
    assert set(accepted.json()["data"]) == set(seed_json(SEED_CREATE_ANSWER)["data"])
    unknown_model = httpx.post(
        f"{base_url}/v1/videos/text2video",
        json={"prompt": "x", "model_name": "kling-v9"},
        headers=headers,
    )
    assert (unknown_model.status_code, unknown_model.json()["code"]) == (404, 1203)


@pytest.mark.django_db(transaction=True)
def test_generate_extend_extend_grows_the_whole_video_and_stops_at_three_minutes(
    kling_client, base_url
):
    first = wait_for(kling_client, generate(kling_client, "A lighthouse at dusk"))
    assert first.state is State.SUCCEEDED
    lengths = [video_seconds(first.video_url)]
    assert lengths[0] == pytest.approx(5.0, abs=0.05)

    source = first
    extension_ids = []
    for prompt in ("The beam sweeps the sea", "A ship answers with its horn"):
        extension_id = kling_client.extend(source.raw["video_id"], prompt=prompt)
        assert extension_id.startswith("video-extend:")
        extension_ids.append(extension_id)
        state = wait_for(kling_client, extension_id)
        assert state.state is State.SUCCEEDED
        lengths.append(video_seconds(state.video_url))
        assert 4.45 <= lengths[-1] - lengths[-2] <= 5.05
        assert state.raw["video_seconds"] == pytest.approx(lengths[-1], abs=0.05)
        parent = state.raw["data"]["task_info"]["parent_video"]
        assert parent["id"] == source.raw["video_id"]
        assert float(parent["duration"]) == pytest.approx(lengths[-2], abs=0.05)
        source = state

    # The query answer keeps the seed's shapes: strings for duration and units, ms times.
    data = source.raw["data"]
    seed = seed_json(SEED_QUERY_ANSWER)["data"]
    assert set(data) == set(seed)
    assert set(data["task_info"]) == set(seed["task_info"])
    assert set(data["task_info"]["parent_video"]) == set(seed["task_info"]["parent_video"])
    assert set(data["task_result"]["videos"][0]) == set(seed["task_result"]["videos"][0])
    assert isinstance(data["task_result"]["videos"][0]["duration"], str)
    assert data["final_unit_deduction"] == "1"
    assert data["created_at"] > 1_700_000_000_000

    listed = kling_client.list_extend_tasks(page=1, size=30)
    assert [task_id for task_id, _ in listed] == list(reversed(extension_ids))
    assert all(state.state is State.SUCCEEDED for _, state in listed)

    # A video already near three minutes cannot grow past 180 s.
    SandboxTask.objects.filter(pk=twin_task(extension_ids[-1]).pk).update(seconds=176)
    with pytest.raises(ProviderError) as caught:
        kling_client.extend(source.raw["video_id"], prompt="One more")
    assert caught.value.permanent and caught.value.code == "1201"
    assert "3 minutes" in caught.value.provider_message


@pytest.mark.django_db(transaction=True)
def test_only_young_v1_videos_can_be_extended(kling_client):
    newer = wait_for(
        kling_client, generate(kling_client, model="kling-v2-1-master", resolution="1080p")
    )
    assert newer.state is State.SUCCEEDED
    with pytest.raises(ProviderError) as caught:
        kling_client.extend(newer.raw["video_id"])
    assert caught.value.permanent and "cannot be extended" in caught.value.provider_message

    older_id = generate(kling_client, model="kling-v1")
    older = wait_for(kling_client, older_id)
    SandboxTask.objects.filter(pk=twin_task(older_id).pk).update(
        created_at=timezone.now() - timedelta(days=31)
    )
    with pytest.raises(ProviderError) as caught:
        kling_client.extend(older.raw["video_id"])
    assert "30 days" in caught.value.provider_message

    with pytest.raises(ProviderError) as caught:
        kling_client.extend("no-such-video")
    assert caught.value.http_status == 404


@pytest.mark.django_db(transaction=True)
def test_list_pages_are_bounded_as_documented(kling_client):
    assert kling_client.list_extend_tasks(page=1000, size=500) == []
    for page, size in ((0, 30), (1001, 30), (1, 0), (1, 501)):
        with pytest.raises(ProviderError) as caught:
            kling_client.list_extend_tasks(page=page, size=size)
        assert caught.value.code == "1201" and caught.value.permanent


@pytest.mark.django_db(transaction=True)
def test_unknown_task_is_not_found(kling_client):
    with pytest.raises(ProviderError) as caught:
        kling_client.status("video-extend:100000000000000000")
    assert caught.value.http_status == 404


# --- callbacks -----------------------------------------------------------------------------


@pytest.fixture
def callback_receiver() -> Iterator[tuple[str, list[bytes]]]:
    received: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/kling/callback", received
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.django_db(transaction=True)
def test_callbacks_arrive_on_every_status_change_and_parse(kling_client, callback_receiver):
    url, received = callback_receiver
    task_id = kling_client.submit(
        GenerationRequest(
            model="kling-v1",
            prompt="Fireflies over a meadow",
            params={"duration": 5},
            callback_url=url,
        )
    )
    assert twin_task(task_id).request["body"]["callback_url"] == url
    deadline = time.monotonic() + 15
    while len(received) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)

    parsed = [kling.parse_callback(body) for body in received]
    assert [state.state for _, state in parsed] == [State.QUEUED, State.RUNNING, State.SUCCEEDED]
    kling_id = kling.split_task_id(task_id)[1]
    assert {callback_id for callback_id, _ in parsed} == {kling_id}
    assert task_id in kling.task_ids_for(kling_id)
    final = parsed[-1][1]
    assert final.video_url and final.raw["video_id"] and final.cost == Decimal("1")


def test_a_wrapped_callback_body_parses_too_and_junk_is_refused():
    task_id, state = kling.parse_callback(json.dumps(filled_in(SEED_QUERY_ANSWER)).encode())
    assert task_id == "784312345678901234" and state.state is State.SUCCEEDED
    with pytest.raises(ValueError):
        kling.parse_callback(b'{"hello": "world"}')


# --- faults --------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("fault", "code", "permanent", "retry_after"),
    [
        ("429", "1302", False, 2),
        ("1102", "1102", True, 2),
        ("401", "1000", True, None),
        ("500", "5000", False, None),
        ("503", "5001", False, None),
        ("policy", "1301", True, None),
    ],
)
def test_submission_faults_come_back_as_klings_errors(
    kling_client, fault, code, permanent, retry_after
):
    with pytest.raises(ProviderError) as caught:
        generate(kling_client, f"A storm [sandbox:{fault}]")
    assert caught.value.code == code
    assert caught.value.permanent is permanent
    assert caught.value.retry_after == retry_after
    assert not SandboxTask.objects.filter(provider="kling").exists()


@pytest.mark.django_db(transaction=True)
def test_malformed_and_timed_out_submissions_are_never_resent(kling_client, settings):
    with pytest.raises(ProviderError) as caught:
        generate(kling_client, "A storm [sandbox:malformed]")
    assert caught.value.code == "no_answer" and not caught.value.safe_to_resend

    settings.PROVIDER_TIMEOUT_SECONDS = 0.5
    settings.SANDBOX_TIMEOUT_SECONDS = 1.5
    with pytest.raises(ProviderError) as caught:
        generate(kling_client, "A storm [sandbox:timeout]")
    assert caught.value.code == "no_answer" and not caught.value.safe_to_resend


@pytest.mark.django_db(transaction=True)
def test_task_faults_fail_hang_or_expire(kling_client):
    failed = wait_for(kling_client, generate(kling_client, "A storm [sandbox:fail]"))
    assert failed.state is State.FAILED and failed.provider_message

    expired = wait_for(kling_client, generate(kling_client, "A storm [sandbox:expired]"))
    assert expired.state is State.SUCCEEDED
    assert httpx.get(expired.video_url).status_code == 404

    hanging = generate(kling_client, "A storm [sandbox:never]")
    time.sleep(1.8)
    assert kling_client.status(hanging).state is State.RUNNING


# --- through the studio ----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_kling_clip_goes_through_the_studio_pipeline(
    client, base_url, user, project, drain_queue
):
    account = ProviderAccount.objects.create(
        all_projects=True,
        kind=ProviderKind.KLING,
        label="Kling (sandbox)",
        base_url=base_url,
        credential=ACCESS_KEY,
        secret_key=SECRET_KEY,
    )
    client.force_login(user)
    response = client.post(
        f"/projects/{project.pk}/clips/new/",
        {
            "provider_account": account.pk,
            "model": "kling-v1-6",
            "prompt": "A lantern drifting down a river",
            "duration": "5",
            "aspect_ratio": "9:16",
            "resolution": "pro",
        },
    )
    assert response.status_code == 302
    clip = Clip.objects.get()

    drain_queue(until=lambda: Clip.objects.get(pk=clip.pk).is_final, timeout=60)

    clip.refresh_from_db()
    assert clip.status == ClipStatus.READY, clip.error_message
    assert clip.provider_task_id.startswith("text2video:")
    assert clip.cost == Decimal("3.5")
    assert clip.duration_seconds == pytest.approx(5.0, abs=0.05)
    assert clip.height > clip.width
