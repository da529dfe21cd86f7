"""Twin of kie.ai's Veo 3.1 API: /api/v1/veo/generate, /extend, /record-info, /get-1080p-video.

Bodies, body codes and callbacks follow seeds/kie-veo31-extend.md and PROVIDERS.md §3. Every
answer is HTTP 200 with kie's ``{"code","msg","data"}``; errors live in ``code``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
from datetime import datetime
from typing import Any

import httpx
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path, reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from sandbox import callbacks, faults, inputs
from sandbox.common import bearer_key, json_object
from sandbox.models import SandboxTask
from sandbox.render import frame_size
from sandbox.videos import video_response

logger = logging.getLogger(__name__)

PROVIDER = "kie"
MODELS = {"veo3", "veo3_fast"}
# "Auto" is in kie's generate page; one mirror spells the field aspect_ratio (PROVIDERS.md §3).
ASPECT_RATIOS = {"16:9", "9:16", "Auto"}
GENERATION_TYPES = {"TEXT_2_VIDEO", "FIRST_AND_LAST_FRAMES_2_VIDEO", "REFERENCE_2_VIDEO"}
GENERATION_SECONDS = 8
# Google's Veo extension: +7 s per hop, up to 148 s (PROVIDERS.md, "Facts").
EXTEND_SECONDS = 7
MAX_TOTAL_SECONDS = 148
# An extension's stitched whole (fullResultUrls) is a task of its own: the extension's id + this.
FULL_SUFFIX = "-full"
CALLBACK_COPIES = 2  # "sent once or more": the twin always sends a duplicate.
CALLBACK_TIMEOUT = httpx.Timeout(5.0, connect=2.0)
# Sandbox rule, not kie's: the twin calls back only to the studio it runs in.
CALLBACK_ELSEWHERE = (
    "callBackUrl must point at this studio (the sandbox calls back only to the studio it runs in)"
)

# The seed's code table, in kie's own words.
MESSAGES = {
    400: "Failed to fetch the image. Kindly verify any access limits set by you or your "
    "service provider.",
    401: "Unauthorized - Authentication credentials are missing or invalid",
    402: "Insufficient Credits - Account does not have enough credits to perform the operation",
    404: "Not Found - The requested resource or endpoint does not exist",
    422: "Validation Error - Request parameters failed validation",
    429: "Rate Limited - Request limit has been exceeded for this resource",
    455: "Service Unavailable - System is currently undergoing maintenance",
    500: "Server Error - An unexpected error occurred while processing the request",
    501: "Generation Failed - Video generation task failed",
    505: "Feature Disabled - The requested feature is currently disabled",
}
EXTEND_FAILED = "Extension Failed - Video extension task failed"
POLICY = "Your prompt was flagged by Website as violating content policies."
HD_NOT_EXTENDABLE = "Videos that have been upgraded to 1080P cannot be extended."
HD_PROCESSING = "1080P is processing. It should be ready in 1-2 minutes. Please check back shortly."
FAILED_UPSTREAM = "Video generation failed upstream. Please try again later."


def answer(code: int, msg: str | None = None, data: Any = None) -> JsonResponse:
    response = JsonResponse(
        {"code": code, "msg": msg if msg is not None else MESSAGES.get(code, ""), "data": data}
    )
    if code == 429:
        response["Retry-After"] = "2"
    return response


# Sandbox rule for trying "Test connection" (README, "The provider sandbox"): besides the bad
# keys common.bearer_key refuses, keys starting with EMPTY_KEY_PREFIX have no credits left.
EMPTY_KEY_PREFIX = "sk-empty"
SANDBOX_CREDITS = 1000


def _submit_fault(fault: str, *, extend: bool = False) -> HttpResponse | None:
    """The answer a submission fault asks for, or None to carry on."""
    code = faults.status_code(fault)
    if code is not None:
        if code == 501 and extend:
            return answer(501, EXTEND_FAILED)
        return answer(code)
    if fault == "policy":
        return answer(400, POLICY)
    if fault == "malformed":
        return HttpResponse("<html><body>upstream hiccup</body></html>", content_type="text/html")
    return None


def _is_url(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://"))


def _validate_common(body: dict[str, Any]) -> str | None:
    if not isinstance(body.get("prompt"), str) or not body["prompt"].strip():
        return "prompt is required"
    seeds = body.get("seeds")
    if seeds is not None and (
        not isinstance(seeds, int) or isinstance(seeds, bool) or not 10000 <= seeds <= 99999
    ):
        return "seeds must be an integer between 10000 and 99999"
    if body.get("watermark") is not None and not isinstance(body["watermark"], str):
        return "watermark must be a string"
    if body.get("callBackUrl") not in (None, "") and not _is_url(body["callBackUrl"]):
        return "callBackUrl must be a valid URL"
    if body.get("callBackUrl") and not callbacks.is_studio_address(body["callBackUrl"]):
        return CALLBACK_ELSEWHERE
    return None


def _validate_generation(body: dict[str, Any]) -> str | None:
    problem = _validate_common(body)
    if problem:
        return problem
    model = body.get("model", "veo3_fast")
    if model not in MODELS:
        return f"model must be veo3 or veo3_fast, not {model!r}"
    ratio = body.get("aspectRatio", body.get("aspect_ratio", "16:9"))
    if ratio not in ASPECT_RATIOS:
        return "Ratio error: aspectRatio must be 16:9, 9:16 or Auto"
    for flag in ("enableFallback", "enableTranslation"):
        if flag in body and not isinstance(body[flag], bool):
            return f"{flag} must be a boolean"
    images = body.get("imageUrls", [])
    if not isinstance(images, list) or not all(_is_url(url) for url in images):
        return "imageUrls must be a list of image URLs"
    kind = body.get("generationType") or (
        "FIRST_AND_LAST_FRAMES_2_VIDEO" if images else "TEXT_2_VIDEO"
    )
    if kind not in GENERATION_TYPES:
        return f"generationType must be one of {', '.join(sorted(GENERATION_TYPES))}"
    if kind == "TEXT_2_VIDEO" and images:
        return "TEXT_2_VIDEO takes no imageUrls"
    if kind == "FIRST_AND_LAST_FRAMES_2_VIDEO" and not 1 <= len(images) <= 2:
        return "FIRST_AND_LAST_FRAMES_2_VIDEO needs 1 or 2 imageUrls"
    if kind == "REFERENCE_2_VIDEO":
        if not 1 <= len(images) <= 3:
            return "REFERENCE_2_VIDEO needs 1 to 3 imageUrls"
        if model != "veo3_fast":
            return "REFERENCE_2_VIDEO only supports the veo3_fast model"
    return None


def _new_task_id() -> str:
    return secrets.token_hex(16)


def _video_url(request: HttpRequest, task_id: str) -> str:
    return request.build_absolute_uri(reverse("sandbox:kie-video", args=[task_id]))


def _succeeded(task: SandboxTask) -> bool:
    return task.fraction_done >= 1.0 and task.fault not in {"never", "fail"}


def _create(http_request: HttpRequest, /, task_id: str = "", **fields: Any) -> SandboxTask:
    task = SandboxTask.objects.create(
        provider=PROVIDER,
        task_id=task_id or _new_task_id(),
        run_seconds=settings.SANDBOX_TASK_SECONDS,
        **fields,
    )
    callback_url = task.request.get("callBackUrl")
    if callback_url and task.fault != "never":
        _schedule_callbacks(callback_url, _callback_body(http_request, task), task.run_seconds)
    return task


@csrf_exempt
@require_POST
def generate(request: HttpRequest) -> HttpResponse:
    key = bearer_key(request)
    if key is None:
        return answer(401)
    body = json_object(request)
    if body is None:
        return answer(422, "Request body must be a JSON object")
    fault = faults.requested(request, body.get("prompt"))
    refusal = _submit_fault(fault)
    if refusal is not None:
        return refusal
    problem = _validate_generation(body)
    if problem:
        return answer(422, problem)
    ratio = body.get("aspectRatio", body.get("aspect_ratio", "16:9"))
    width, height = frame_size(
        "9:16" if ratio == "9:16" else "16:9", "720p", settings.SANDBOX_MAX_EDGE
    )
    task = _create(
        request,
        kind="generate",
        api_key_hint=key[-4:],
        request=body,
        model=body.get("model", "veo3_fast"),
        prompt=body["prompt"],
        seconds=GENERATION_SECONDS,
        width=width,
        height=height,
        fault=fault if fault in faults.TASK_FAULTS else "",
    )
    images = body.get("imageUrls", [])
    # Only FIRST_AND_LAST_FRAMES_2_VIDEO starts from its images; references only guide.
    framed = (body.get("generationType") or "FIRST_AND_LAST_FRAMES_2_VIDEO") != "REFERENCE_2_VIDEO"
    inputs.keep(
        task,
        request=request,
        first=images[0] if framed and images else None,
        last=images[1] if framed and len(images) > 1 else None,
        texts=(body["prompt"],),
    )
    if fault == "timeout":
        time.sleep(settings.SANDBOX_TIMEOUT_SECONDS)
    return answer(200, "success", {"taskId": task.task_id})


@csrf_exempt
@require_POST
def extend(request: HttpRequest) -> HttpResponse:
    key = bearer_key(request)
    if key is None:
        return answer(401)
    body = json_object(request)
    if body is None:
        return answer(422, "Request body must be a JSON object")
    fault = faults.requested(request, body.get("prompt"))
    refusal = _submit_fault(fault, extend=True)
    if refusal is not None:
        return refusal
    if not isinstance(body.get("taskId"), str) or not body["taskId"].strip():
        return answer(422, "taskId is required")
    problem = _validate_common(body)
    if problem:
        return answer(422, problem)
    parent = SandboxTask.objects.filter(
        provider=PROVIDER, task_id=body["taskId"], kind__in=("generate", "extend")
    ).first()
    if parent is None:
        return answer(404, "The original video or task does not exist")
    if not _succeeded(parent):
        return answer(422, "The original video task has not completed successfully")
    # Seed: "生成1080P之后的视频不能扩展".
    if SandboxTask.objects.filter(provider=PROVIDER, kind="hd1080", source=parent).exists():
        return answer(422, HD_NOT_EXTENDABLE)
    # The chain's first generation: every hop takes its scene, so it looks like one shot.
    root = parent.source if parent.kind == "extend" and parent.source else parent
    total = _total_seconds(parent, root) + EXTEND_SECONDS
    if total > MAX_TOTAL_SECONDS:
        return answer(422, f"The video cannot be extended beyond {MAX_TOTAL_SECONDS} seconds")
    # kie's extend page: resultUrls is "the newly generated continuation clip (720p) that
    # starts from the last frame of the source video"; the callback adds fullResultUrls,
    # the source and the continuation stitched together (a task row of its own here).
    task_id = _new_task_id()
    SandboxTask.objects.create(
        provider=PROVIDER,
        task_id=f"{task_id}{FULL_SUFFIX}",
        kind="extend-full",
        api_key_hint=key[-4:],
        model=parent.model,
        prompt=body["prompt"],
        seconds=total,
        width=parent.width,
        height=parent.height,
        source=root,
        start_at=root.start_at,
        run_seconds=settings.SANDBOX_TASK_SECONDS,
    )
    task = _create(
        request,
        task_id=task_id,
        kind="extend",
        api_key_hint=key[-4:],
        request=body,
        model=parent.model,
        prompt=body["prompt"],
        seconds=EXTEND_SECONDS,
        width=parent.width,
        height=parent.height,
        source=root,
        start_at=parent.start_at + parent.seconds,
        fault=fault if fault in faults.TASK_FAULTS else "",
    )
    inputs.keep(task, request=request, texts=(body["prompt"],))
    if fault == "timeout":
        time.sleep(settings.SANDBOX_TIMEOUT_SECONDS)
    return answer(200, "success", {"taskId": task.task_id})


def _total_seconds(task: SandboxTask, root: SandboxTask) -> float:
    """How long the chain is up to the end of ``task`` (a continuation counts from its root)."""
    return task.start_at - root.start_at + task.seconds


def _info(request: HttpRequest, task: SandboxTask) -> dict[str, Any]:
    url = _video_url(request, task.task_id)
    info: dict[str, Any] = {"resultUrls": [url], "originUrls": [url], "resolution": "720p"}
    if task.kind == "extend":
        info["fullResultUrls"] = [_video_url(request, f"{task.task_id}{FULL_SUFFIX}")]
    return info


def _kie_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _record(request: HttpRequest, task: SandboxTask) -> dict[str, Any]:
    data: dict[str, Any] = {
        "taskId": task.task_id,
        "paramJson": json.dumps(task.request),
        "completeTime": None,
        "response": None,
        "successFlag": 0,
        "errorCode": None,
        "errorMessage": "",
        "createTime": _kie_time(task.created_at),
        "fallbackFlag": False,
    }
    if task.fraction_done < 1.0 or task.fault == "never":
        return data
    data["completeTime"] = _kie_time(task.finished_at)
    if task.fault == "fail":
        data.update(successFlag=3, errorCode=501, errorMessage=FAILED_UPSTREAM)
        return data
    data.update(successFlag=1, response={"taskId": task.task_id, **_info(request, task)})
    return data


def _queried_task(request: HttpRequest) -> SandboxTask | JsonResponse:
    """The Veo task named by ?taskId=, or kie's answer when the key or the id is wrong."""
    if bearer_key(request) is None:
        return answer(401)
    task_id = request.GET.get("taskId", "").strip()
    if not task_id:
        return answer(422, "taskId is required")
    task = SandboxTask.objects.filter(
        provider=PROVIDER, task_id=task_id, kind__in=("generate", "extend")
    ).first()
    return task if task is not None else answer(404, "record is not found")


@require_GET
def record_info(request: HttpRequest) -> JsonResponse:
    task = _queried_task(request)
    if isinstance(task, JsonResponse):
        return task
    return answer(200, "success", _record(request, task))


@require_GET
def credit(request: HttpRequest) -> JsonResponse:
    """Remaining credits (docs.kie.ai, Common API, "Get Remaining Credits")."""
    key = bearer_key(request)
    if key is None:
        return answer(401)
    return answer(200, "success", 0 if key.startswith(EMPTY_KEY_PREFIX) else SANDBOX_CREDITS)


@require_GET
def get_1080p_video(request: HttpRequest) -> JsonResponse:
    task = _queried_task(request)
    if isinstance(task, JsonResponse):
        return task
    if not _succeeded(task):
        return answer(422, "The video task has not completed successfully")
    hd = SandboxTask.objects.filter(provider=PROVIDER, kind="hd1080", source=task).first()
    if hd is None:
        landscape = task.width >= task.height
        width, height = frame_size(
            "16:9" if landscape else "9:16", "1080p", settings.SANDBOX_MAX_EDGE
        )
        hd = SandboxTask.objects.create(
            provider=PROVIDER,
            task_id=f"{task.task_id}-1080p",
            kind="hd1080",
            api_key_hint=task.api_key_hint,
            request={"taskId": task.task_id, "index": request.GET.get("index", "0")},
            model=task.model,
            prompt=task.prompt,
            seconds=task.seconds,
            width=width,
            height=height,
            source=task,
            start_at=task.start_at,
            run_seconds=settings.SANDBOX_TASK_SECONDS,
        )
    if hd.fraction_done < 1.0:
        return answer(400, HD_PROCESSING)
    return answer(200, "success", {"resultUrl": _video_url(request, hd.task_id)})


@require_GET
def video(request: HttpRequest, task_id: str) -> HttpResponse:
    task = SandboxTask.objects.filter(provider=PROVIDER, task_id=task_id).first()
    if task is None or not _succeeded(task) or task.fault == "expired":
        return HttpResponse("Not Found", status=404, content_type="text/plain")
    version = " · 1080p" if task.kind == "hd1080" else ""
    return video_response(request, task, label=f"SANDBOX · kie · {task.model}{version}")


# --- callbacks ---------------------------------------------------------------------------


def _callback_body(request: HttpRequest, task: SandboxTask) -> dict[str, Any]:
    """What kie POSTs when the task ends, worked out now so the sender needs no database."""
    if task.fault == "fail":
        return {
            "code": 501,
            "msg": FAILED_UPSTREAM,
            "data": {"taskId": task.task_id, "info": None, "fallbackFlag": False},
        }
    return {
        "code": 200,
        "msg": "Veo3.1 video generated successfully.",
        "data": {"taskId": task.task_id, "info": _info(request, task), "fallbackFlag": False},
    }


def sign(webhook_key: str, task_id: str, timestamp: str) -> str:
    """base64(HMAC-SHA256(key, taskId + "." + timestamp)) (kie's webhook verification guide)."""
    digest = hmac.new(
        webhook_key.encode(), f"{task_id}.{timestamp}".encode(), hashlib.sha256
    ).digest()
    return base64.b64encode(digest).decode()


def _schedule_callbacks(url: str, body: dict[str, Any], delay: float) -> None:
    key = getattr(settings, "SANDBOX_KIE_WEBHOOK_KEY", "sandbox-kie-webhook-key")
    timer = threading.Timer(delay, _deliver, args=(url, body, key))
    timer.daemon = True
    timer.start()


def _deliver(url: str, body: dict[str, Any], key: str) -> None:
    if not callbacks.is_studio_address(url):
        # Refused at submission already; checked again here in case a new path forgets.
        logger.warning("kie sandbox: callback to %s refused, not this studio", url)
        return
    # A receiver that is down, slow or broken must never hurt the twin. httpx does not
    # follow redirects here, so the studio's address cannot bounce the post elsewhere.
    content = json.dumps(body).encode()
    for _ in range(CALLBACK_COPIES):
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Webhook-Timestamp": timestamp,
            "X-Webhook-Signature": sign(key, body["data"]["taskId"], timestamp),
        }
        try:
            httpx.post(url, content=content, headers=headers, timeout=CALLBACK_TIMEOUT)
        except Exception:  # noqa: BLE001 - delivery is best effort, like kie's own
            logger.info("kie sandbox: callback to %s was not delivered", url, exc_info=True)


urlpatterns = [
    path("api/v1/veo/generate", generate, name="kie-generate"),
    path("api/v1/veo/extend", extend, name="kie-extend"),
    path("api/v1/veo/record-info", record_info, name="kie-record-info"),
    path("api/v1/veo/get-1080p-video", get_1080p_video, name="kie-1080p"),
    path("api/v1/chat/credit", credit, name="kie-credit"),
    path("files/<str:task_id>.mp4", video, name="kie-video"),
]
