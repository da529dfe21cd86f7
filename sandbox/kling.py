"""Twin of Kling's video API: text2video, image2video and video-extend (create, query, list).

Paths, bodies, status words and answers follow seeds/kling-video-extend.md and PROVIDERS.md §4;
error codes and their HTTP statuses follow Kling's public general-information page (1000-1004
auth, 1100-1103 account, 1200-1203 request, 1300-1304 policy and limits, 5000-5002 server).

Auth, checked the way Kling does: ``Authorization: Bearer <JWT>`` signed HS256 with the account's
secret key, ``iss`` = access key, ``exp`` and ``nbf`` enforced. The sandbox keeps no key store,
so by rule the secret key of access key ``AK`` is ``"sandbox-secret-" + AK``. Newer accounts hold
one plain bearer key: any key starting with ``sk-`` is accepted as is.

Each SandboxTask keeps what arrived in ``request``: ``{"body": <JSON body>, "authorization":
<header>, "video_id": …}`` plus ``parent`` (the source video) for extensions. ``kind`` is the
endpoint family. An extension renders the WHOLE extended video, counter from 0, with the scene
of the generation the chain started from (``source``).

Callbacks: when the body names a ``callback_url``, the task object (the query answer's ``data``)
is POSTed there on every status change: submitted, processing, then succeed or failed. A daemon
thread sends them at the times the status changes, with a short timeout; errors are ignored.
"""

from __future__ import annotations

import base64
import binascii
import io
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import jwt
from django.conf import settings
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods
from PIL import Image, UnidentifiedImageError

from sandbox import callbacks, faults, inputs
from sandbox.common import json_object
from sandbox.models import SandboxTask
from sandbox.render import frame_size
from sandbox.videos import video_response

PROVIDER = "kling"
SECRET_PREFIX = "sandbox-secret-"
PLAIN_KEY_PREFIX = "sk-"

TEXT_MODELS = frozenset(
    {
        "kling-v1",
        "kling-v1-6",
        "kling-v2-master",
        "kling-v2-1-master",
        "kling-v2-5-turbo",
        "kling-v2-6",
    }
)
IMAGE_MODELS = TEXT_MODELS | {"kling-v1-5", "kling-v2-1"}
# "Only videos of the V1.0/V1.5/V1.6 models can be extended" (PROVIDERS.md §4).
EXTENDABLE_MODELS = frozenset({"kling-v1", "kling-v1-5", "kling-v1-6"})
# Master models have no std/pro choice and render 1080p; kling-v1 is 720p in both modes.
FIXED_1080P_MODELS = frozenset({"kling-v2-1-master", "kling-v2-5-turbo"})

PROMPT_LIMIT = 2500
MAX_TOTAL_SECONDS = 180
RETENTION = timedelta(days=30)
IMAGE_MAX_BYTES = 10 * 1024 * 1024
IMAGE_MIN_EDGE = 300
CALLBACK_TIMEOUT_SECONDS = 3.0
# Faults that show on the task rather than on the submission (faults.py); NewAPI's
# "extend_failed" has no Kling counterpart.
TASK_FAULTS = frozenset({"never", "fail", "expired"})

ERRORS: dict[int, tuple[int, str]] = {
    1000: (401, "Authentication failed"),
    1001: (401, "Authorization is empty"),
    1002: (401, "Authorization is invalid"),
    1003: (401, "Authorization is not yet valid"),
    1004: (401, "Authorization has expired"),
    1100: (429, "Account exception"),
    1101: (429, "Account in arrears (postpaid scenario)"),
    1102: (429, "Resource pack depleted or expired (prepaid scenario)"),
    1103: (403, "Unauthorized access to requested resource"),
    1200: (400, "Invalid request parameters"),
    1201: (400, "Invalid parameters"),
    1202: (404, "Invalid request method"),
    1203: (404, "Requested resource does not exist"),
    1300: (400, "Trigger platform strategy"),
    1301: (400, "Trigger the content security policy of the platform"),
    1302: (429, "The API request is too fast, please slow down the request frequency"),
    1303: (429, "parallel task over resource pack limit"),
    1304: (429, "Trigger the IP whitelisting policy of the platform"),
    5000: (500, "Server internal error"),
    5001: (503, "Server temporarily unavailable, usually due to maintenance"),
    5002: (504, "Server internal timeout, usually due to a backlog"),
}
# A fault asked for by HTTP status answers with the Kling code that comes with that status.
FAULT_CODES = {
    400: 1201,
    401: 1000,
    403: 1103,
    404: 1203,
    429: 1302,
    500: 5000,
    503: 5001,
    504: 5002,
}


def error(code: int, message: str | None = None) -> JsonResponse:
    status, default_message = ERRORS[code]
    response = JsonResponse(
        {"code": code, "message": message or default_message, "request_id": _request_id()},
        status=status,
    )
    if status == 429:
        response["Retry-After"] = "2"
    return response


def _request_id() -> str:
    return str(uuid.uuid4())


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def _seconds_text(seconds: float) -> str:
    return format(round(seconds, 3), "g")


# --- auth ----------------------------------------------------------------------------------


def authenticate(request: HttpRequest) -> tuple[str | None, JsonResponse | None]:
    """The caller's account (access key or plain key), or Kling's 401 answer."""
    header = request.headers.get("Authorization", "")
    if not header.strip():
        return None, error(1001)
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme != "Bearer" or not token:
        return None, error(1002)
    if token.count(".") != 2:
        if token.startswith(PLAIN_KEY_PREFIX):
            return token, None
        return None, error(1002)
    try:
        issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
    except jwt.PyJWTError:
        return None, error(1002)
    if not isinstance(issuer, str) or not issuer:
        return None, error(1002, "Authorization is invalid: iss is required")
    try:
        jwt.decode(
            token,
            SECRET_PREFIX + issuer,
            algorithms=["HS256"],
            options={"require": ["iss", "exp", "nbf"]},
        )
    except jwt.ExpiredSignatureError:
        return None, error(1004)
    except jwt.ImmatureSignatureError:
        return None, error(1003)
    except jwt.PyJWTError as exc:
        return None, error(1000, f"Authentication failed: {exc}")
    return issuer, None


# --- validation ----------------------------------------------------------------------------


def _check_common(body: dict[str, Any]) -> str | None:
    for name in ("prompt", "negative_prompt"):
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            return f"{name} must be a string"
        if isinstance(value, str) and len(value) > PROMPT_LIMIT:
            return f"{name} cannot exceed {PROMPT_LIMIT} characters"
    cfg_scale = body.get("cfg_scale")
    if cfg_scale is not None and (
        isinstance(cfg_scale, bool)
        or not isinstance(cfg_scale, int | float)
        or not 0 <= cfg_scale <= 1
    ):
        return "cfg_scale must be a number in [0, 1]"
    callback_url = body.get("callback_url")
    if callback_url is not None and (
        not isinstance(callback_url, str) or not callback_url.startswith(("http://", "https://"))
    ):
        return "callback_url must be an http(s) URL"
    if callback_url and not callbacks.is_studio_address(callback_url):
        # Sandbox rule, not Kling's: the twin calls back only to the studio it runs in.
        return "callback_url must point at this studio (the sandbox calls back only there)"
    external_task_id = body.get("external_task_id")
    if external_task_id is not None and not isinstance(external_task_id, str):
        return "external_task_id must be a string"
    return None


def _check_generation(body: dict[str, Any], family: str) -> str | None:
    problem = _check_common(body)
    if problem:
        return problem
    if family == "text2video" and not (body.get("prompt") or "").strip():
        return "prompt is required"
    # Duration is a string enum: a bare number is refused.
    if body.get("duration", "5") not in ("5", "10"):
        return 'duration must be the string "5" or "10"'
    if body.get("mode", "std") not in ("std", "pro"):
        return "mode must be std or pro"
    if family == "text2video" and body.get("aspect_ratio", "16:9") not in ("16:9", "9:16", "1:1"):
        return "aspect_ratio must be 16:9, 9:16 or 1:1"
    return None


def _check_image(value: Any, field: str) -> tuple[str | None, tuple[int, int] | None]:
    """A problem with an image field, or its pixel size when it came as Base64."""
    if not isinstance(value, str) or not value.strip():
        return f"{field} must be a URL or a Base64 string", None
    if value.startswith(("http://", "https://")):
        # Kling fetches the link and fails the task if it cannot; the twin fetches only
        # links to this studio itself (sandbox/inputs.py), when it renders.
        return None, None
    if value.startswith("data:"):
        return f"{field} must be Base64 without a data: prefix", None
    try:
        content = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return f"{field} is neither a URL nor valid Base64", None
    if len(content) > IMAGE_MAX_BYTES:
        return f"{field} cannot exceed 10MB", None
    try:
        with Image.open(io.BytesIO(content)) as image:
            kind, (width, height) = image.format, image.size
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        return f"{field} is not a readable image", None
    if kind not in ("JPEG", "PNG"):
        return f"{field} must be a .jpg, .jpeg or .png image", None
    if min(width, height) < IMAGE_MIN_EDGE:
        return f"{field} must be at least {IMAGE_MIN_EDGE}px wide and high", None
    if not 1 / 2.5 <= width / height <= 2.5:
        return f"{field} aspect ratio must be between 1:2.5 and 2.5:1", None
    return None, (width, height)


def _nearest_ratio(size: tuple[int, int] | None) -> str:
    if size is None:
        return "16:9"
    ratio = size[0] / size[1]
    return min(("16:9", "9:16", "1:1"), key=lambda name: abs(_ratio_value(name) - ratio))


def _ratio_value(name: str) -> float:
    width, height = name.split(":")
    return int(width) / int(height)


def _frame(model: str, mode: str, aspect_ratio: str) -> tuple[int, int]:
    high = model in FIXED_1080P_MODELS or (mode == "pro" and model != "kling-v1")
    return frame_size(aspect_ratio, "1080p" if high else "720p", settings.SANDBOX_MAX_EDGE)


def _units(model: str, mode: str, seconds: float) -> str:
    # Illustrative prices in Kling's resource-pack units: 1 per 5 s std, 3.5 per 5 s pro.
    per_five = Decimal("3.5") if mode == "pro" or model in FIXED_1080P_MODELS else Decimal("1")
    return format((per_five * Decimal(round(seconds / 5))).normalize(), "f")


# --- task state ----------------------------------------------------------------------------


def _new_task_id() -> str:
    return str(10**17 + secrets.randbelow(9 * 10**17))


def _status_at(task: SandboxTask, fraction: float) -> str:
    if fraction >= 1.0 and task.fault != "never":
        return "failed" if task.fault == "fail" else "succeed"
    return "submitted" if fraction < 0.1 else "processing"


def _changed_at(task: SandboxTask, status: str) -> datetime:
    offset = {"submitted": 0.0, "processing": 0.1}.get(status, 1.0) * task.run_seconds
    return task.created_at + timedelta(seconds=offset)


def _video_url(request: HttpRequest, task: SandboxTask) -> str:
    return request.build_absolute_uri(
        reverse("sandbox:kling-video", args=[task.request["video_id"]])
    )


def task_data(request: HttpRequest, task: SandboxTask, status: str) -> dict[str, Any]:
    """The task object as the query, list and callbacks show it, in the given status."""
    record = task.request
    info: dict[str, Any] = {}
    if task.kind == "video-extend":
        info["parent_video"] = record["parent"]
    info["external_task_id"] = record["body"].get("external_task_id", "")
    videos = []
    if status == "succeed":
        url = _video_url(request, task)
        videos.append(
            {
                "id": record["video_id"],
                "url": url,
                "watermark_url": f"{url}?watermark=1",
                "duration": _seconds_text(task.seconds),
            }
        )
    return {
        "task_id": task.task_id,
        "task_status": status,
        "task_status_msg": (
            "Generation failed, please try again later" if status == "failed" else ""
        ),
        "task_info": info,
        "task_result": {"videos": videos},
        "watermark_info": {"enabled": False},
        "final_unit_deduction": record["units"] if status == "succeed" else "0",
        "created_at": _ms(task.created_at),
        "updated_at": _ms(_changed_at(task, status)),
    }


def _answer(data: Any) -> JsonResponse:
    return JsonResponse(
        {"code": 0, "message": "SUCCEED", "request_id": _request_id(), "data": data}
    )


# --- callbacks -----------------------------------------------------------------------------


def _schedule_callbacks(request: HttpRequest, task: SandboxTask) -> None:
    url = task.request["body"].get("callback_url")
    if not url:
        return
    # Payloads are built now, in the request's thread: the sender never touches the database.
    events = [(0.0, task_data(request, task, "submitted"))]
    events.append((0.1 * task.run_seconds, task_data(request, task, "processing")))
    if task.fault != "never":
        final = _status_at(task, 1.0)
        events.append((task.run_seconds, task_data(request, task, final)))
    threading.Thread(
        target=_send_callbacks,
        args=(url, events),
        name=f"kling-callback-{task.task_id}",
        daemon=True,
    ).start()


def _send_callbacks(url: str, events: list[tuple[float, dict[str, Any]]]) -> None:
    if not callbacks.is_studio_address(url):
        # Refused at submission already; checked again here in case a new path forgets.
        return
    started = time.monotonic()
    for at, payload in events:
        delay = at - (time.monotonic() - started)
        if delay > 0:
            time.sleep(delay)
        try:
            httpx.post(url, json=payload, timeout=CALLBACK_TIMEOUT_SECONDS)
        except (httpx.HTTPError, httpx.InvalidURL):
            # A receiver that is down misses this notification, as with Kling; the query
            # endpoint stays the source of truth.
            continue


# --- faults --------------------------------------------------------------------------------


def _submission_fault(
    request: HttpRequest, body: dict[str, Any]
) -> tuple[str, HttpResponse | None]:
    """The fault asked for, and the answer that replaces a normal one (if any)."""
    fault = faults.requested(request, body.get("prompt"))
    if not fault:
        return "", None
    if fault.isdigit() and int(fault) in ERRORS:
        return fault, error(int(fault))
    status = faults.status_code(fault)
    if status is not None:
        return fault, error(FAULT_CODES.get(status, 5000 if status >= 500 else 1200))
    if fault == "policy":
        return fault, error(1301)
    if fault == "malformed":
        return fault, HttpResponse(b"<html>upstream hiccup</html>", content_type="text/html")
    return fault, None


# --- views ---------------------------------------------------------------------------------


def _create(request: HttpRequest, family: str, account: str) -> HttpResponse:
    body = json_object(request)
    if body is None:
        return error(1200, "Request body must be a JSON object")
    fault, answer = _submission_fault(request, body)
    if answer is not None:
        return answer
    if family == "video-extend":
        made = _make_extension(request, body, account)
    else:
        made = _make_generation(request, body, family, account)
    if isinstance(made, HttpResponse):
        return made
    task = made
    inputs.keep(
        task,
        request=request,
        first=body.get("image") if family == "image2video" else None,
        last=body.get("image_tail") if family == "image2video" else None,
        texts=(body.get("prompt"),),
    )
    if fault in TASK_FAULTS:
        task.fault = fault
        task.save(update_fields=["fault"])
    _schedule_callbacks(request, task)
    if fault == "timeout":
        # The task exists (and would be charged), but the answer comes too late to be read.
        time.sleep(settings.SANDBOX_TIMEOUT_SECONDS)
    data = task_data(request, task, "submitted")
    return _answer(
        {
            key: data[key]
            for key in ("task_id", "task_status", "task_info", "created_at", "updated_at")
        }
    )


def _make_generation(
    request: HttpRequest, body: dict[str, Any], family: str, account: str
) -> SandboxTask | HttpResponse:
    model = body.get("model_name", "kling-v1")
    if model not in (TEXT_MODELS if family == "text2video" else IMAGE_MODELS):
        return error(1203, f"model_name {model!r} is not available for {family}")
    problem = _check_generation(body, family)
    if problem:
        return error(1201, problem)
    aspect_ratio = body.get("aspect_ratio", "16:9")
    if family == "image2video":
        problem, size = _check_image(body.get("image"), "image")
        if problem:
            return error(1201, problem)
        if body.get("image_tail"):
            problem, _ = _check_image(body["image_tail"], "image_tail")
            if problem:
                return error(1201, problem)
        aspect_ratio = _nearest_ratio(size)
    mode = body.get("mode", "std")
    seconds = float(body.get("duration", "5"))
    width, height = _frame(model, mode, aspect_ratio)
    return SandboxTask.objects.create(
        provider=PROVIDER,
        task_id=_new_task_id(),
        kind=family,
        api_key_hint=account[-8:],
        request={
            "body": body,
            "authorization": request.headers["Authorization"],
            "video_id": str(uuid.uuid4()),
            "mode": mode,
            "units": _units(model, mode, seconds),
        },
        model=model,
        prompt=body.get("prompt", ""),
        seconds=seconds,
        width=width,
        height=height,
        run_seconds=settings.SANDBOX_TASK_SECONDS,
    )


def _make_extension(
    request: HttpRequest, body: dict[str, Any], account: str
) -> SandboxTask | HttpResponse:
    video_id = body.get("video_id")
    if not isinstance(video_id, str) or not video_id:
        return error(1201, "video_id is required")
    problem = _check_common(body)
    if problem:
        return error(1201, problem)
    parent = _finished_video(video_id, account)
    if parent is None:
        return error(1203, f"video {video_id} does not exist")
    if parent.created_at < timezone.now() - RETENTION:
        return error(1201, "The video was generated more than 30 days ago and cannot be extended")
    if parent.model not in EXTENDABLE_MODELS:
        return error(
            1201, f"Videos of {parent.model} cannot be extended (only kling-v1, v1-5 and v1-6)"
        )
    task_id = _new_task_id()
    # "Each extension adds 4-5 s": 4.5, 4.625 … 5.0 s, whole frames at 24 fps.
    adds = (108 + 3 * (int(task_id) % 5)) / 24
    total = parent.seconds + adds
    if total > MAX_TOTAL_SECONDS:
        return error(
            1201,
            f"The total duration of an extended video cannot exceed 3 minutes "
            f"(this video is {_seconds_text(parent.seconds)} s)",
        )
    mode = parent.request.get("mode", "std")
    return SandboxTask.objects.create(
        provider=PROVIDER,
        task_id=task_id,
        kind="video-extend",
        api_key_hint=account[-8:],
        request={
            "body": body,
            "authorization": request.headers["Authorization"],
            "video_id": str(uuid.uuid4()),
            "mode": mode,
            "units": _units(parent.model, mode, 5),
            "parent": {
                "id": video_id,
                "url": _video_url(request, parent),
                "duration": _seconds_text(parent.seconds),
            },
        },
        model=parent.model,
        prompt=body.get("prompt", ""),
        seconds=total,
        width=parent.width,
        height=parent.height,
        source=parent.source or parent,
        start_at=0,
        run_seconds=settings.SANDBOX_TASK_SECONDS,
    )


def _finished_video(video_id: str, account: str) -> SandboxTask | None:
    task = (
        SandboxTask.objects.select_related("source")
        .filter(provider=PROVIDER, api_key_hint=account[-8:], request__video_id=video_id)
        .first()
    )
    if task is None or _status_at(task, task.fraction_done) != "succeed":
        return None
    return task


def _list(request: HttpRequest, family: str, account: str) -> JsonResponse:
    bounds = {"pageNum": (1, 1, 1000), "pageSize": (30, 1, 500)}
    values: dict[str, int] = {}
    for name, (default, low, high) in bounds.items():
        raw = request.GET.get(name, str(default))
        if not raw.isdigit() or not low <= int(raw) <= high:
            return error(1201, f"{name} must be an integer in [{low}, {high}]")
        values[name] = int(raw)
    page, size = values["pageNum"], values["pageSize"]
    tasks = SandboxTask.objects.select_related("source").filter(
        provider=PROVIDER, kind=family, api_key_hint=account[-8:]
    )
    tasks = tasks.order_by("-created_at", "-pk")[(page - 1) * size : page * size]
    return _answer([task_data(request, t, _status_at(t, t.fraction_done)) for t in tasks])


def _collection(family: str) -> Callable[[HttpRequest], HttpResponse]:
    @csrf_exempt
    @require_http_methods(["GET", "POST"])
    def view(request: HttpRequest) -> HttpResponse:
        account, refusal = authenticate(request)
        if refusal is not None:
            return refusal
        assert account is not None
        if request.method == "POST":
            return _create(request, family, account)
        return _list(request, family, account)

    view.__name__ = f"kling_{family.replace('-', '_')}"
    return view


def _detail(family: str) -> Callable[..., JsonResponse]:
    @require_GET
    def view(request: HttpRequest, task_id: str) -> JsonResponse:
        account, refusal = authenticate(request)
        if refusal is not None:
            return refusal
        assert account is not None
        # The path takes the task_id or the caller's external_task_id (seed: "二选一").
        task = (
            SandboxTask.objects.select_related("source")
            .filter(provider=PROVIDER, kind=family, api_key_hint=account[-8:])
            .filter(Q(task_id=task_id) | Q(request__body__external_task_id=task_id))
            .first()
        )
        if task is None:
            return error(1203, f"task {task_id} does not exist")
        return _answer(task_data(request, task, _status_at(task, task.fraction_done)))

    view.__name__ = f"kling_{family.replace('-', '_')}_task"
    return view


@require_GET
def video(request: HttpRequest, video_id: str) -> HttpResponse:
    task = (
        SandboxTask.objects.select_related("source")
        .filter(provider=PROVIDER, request__video_id=video_id)
        .first()
    )
    if (
        task is None
        or _status_at(task, task.fraction_done) != "succeed"
        or task.fault == "expired"
        or task.created_at < timezone.now() - RETENTION
    ):
        return HttpResponse(status=404)
    return video_response(request, task, label=f"SANDBOX · Kling · {task.model}")


# Sandbox rule for trying "Test connection" (README, "The provider sandbox"): an account whose
# access key (or plain key) starts with EMPTY_KEY_PREFIX has used up its resource pack.
EMPTY_KEY_PREFIX = "sk-empty"
SANDBOX_PACK_UNITS = 1000.0


@require_GET
def account_costs(request: HttpRequest) -> JsonResponse:
    """The account's resource packs (Kling's "Account Information Inquiry", GET /account/costs).

    start_time and end_time (Unix milliseconds) are required; the query is free of charge.
    """
    account, refusal = authenticate(request)
    if refusal is not None:
        return refusal
    assert account is not None
    start, end = request.GET.get("start_time", ""), request.GET.get("end_time", "")
    if not (start.isdigit() and end.isdigit()) or int(start) > int(end):
        return error(1201, "start_time and end_time are required, in milliseconds")
    empty = account.startswith(EMPTY_KEY_PREFIX)
    bought = _ms(timezone.now() - timedelta(days=10))
    pack = {
        "resource_pack_name": "Video Generation - 1000 units (sandbox)",
        "resource_pack_id": "sandbox-pack-" + account[-8:],
        "resource_pack_type": "decreasing_total",
        "total_quantity": SANDBOX_PACK_UNITS,
        "remaining_quantity": 0.0 if empty else SANDBOX_PACK_UNITS,
        "purchase_time": bought,
        "effective_time": bought,
        "invalid_time": _ms(timezone.now() + timedelta(days=355)),
        "status": "runOut" if empty else "online",
    }
    return _answer({"code": 0, "msg": "", "resource_pack_subscribe_infos": [pack]})


urlpatterns = [
    path("account/costs", account_costs, name="kling-account-costs"),
    path("v1/videos/text2video", _collection("text2video"), name="kling-text2video"),
    path(
        "v1/videos/text2video/<str:task_id>",
        _detail("text2video"),
        name="kling-text2video-task",
    ),
    path("v1/videos/image2video", _collection("image2video"), name="kling-image2video"),
    path(
        "v1/videos/image2video/<str:task_id>",
        _detail("image2video"),
        name="kling-image2video-task",
    ),
    path("v1/videos/video-extend", _collection("video-extend"), name="kling-video-extend"),
    path(
        "v1/videos/video-extend/<str:task_id>",
        _detail("video-extend"),
        name="kling-video-extend-task",
    ),
    path("files/<str:video_id>.mp4", video, name="kling-video"),
]
