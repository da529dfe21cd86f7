"""Twin of apimart's Veo 3.1 API: /v1/videos/generations, /v1/videos/{id}/remix, /v1/tasks/{id}.

Bodies, status words and error shapes follow seeds/apimart-veo31-*.md and PROVIDERS.md §1.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path, reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from sandbox import faults, inputs
from sandbox.common import bearer_key, json_object
from sandbox.models import SandboxTask
from sandbox.render import frame_size
from sandbox.videos import video_response

PROVIDER = "apimart"
GENERATION_MODELS = {"veo3.1-fast-official", "veo3.1-quality-official"}
REMIX_MODELS = {"veo3.1-fast", "veo3.1-quality"}
REMIX_ADDS_SECONDS = 7
# Faults that show on the task rather than on the submission (faults.py).
TASK_FAULTS = {"never", "fail", "policy", "expired"}
# What a failed task carries in data.error (the seeds print no failed example; the shape
# follows the error bodies, and the policy wording is Google's, which apimart passes on).
TASK_ERRORS = {
    "fail": {"code": "generation_failed", "message": "Video generation failed, please retry"},
    "policy": {
        "code": "content_policy_violation",
        "message": (
            "The prompt or image violates the safety policy (Responsible AI practices) "
            "and was blocked"
        ),
    },
}
ERROR_TYPES = {
    400: ("Invalid request parameters", "invalid_request_error"),
    401: ("Invalid authentication credentials", "authentication_error"),
    402: ("Insufficient balance. Please top up your account", "payment_required"),
    403: (
        "Access forbidden. You don't have permission to access this resource",
        "permission_error",
    ),
    404: ("Video not found", "not_found_error"),
    429: ("Rate limit exceeded. Please try again later", "rate_limit_error"),
    500: ("Internal server error. Please try again later", "server_error"),
    502: ("Bad gateway. The server is temporarily unavailable", "bad_gateway"),
}


def error(status: int, message: str | None = None) -> JsonResponse:
    default_message, kind = ERROR_TYPES[status]
    return JsonResponse(
        {"error": {"code": status, "message": message or default_message, "type": kind}},
        status=status,
    )


# Sandbox rule for trying "Test connection" (README, "The provider sandbox"): besides the bad
# keys common.bearer_key refuses, keys starting with EMPTY_KEY_PREFIX have a zero balance.
EMPTY_KEY_PREFIX = "sk-empty"
SANDBOX_BALANCE = 100.0


def _new_task_id() -> str:
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    return "task_01" + "".join(secrets.choice(alphabet) for _ in range(24))


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _validate_generation(body: dict[str, Any]) -> str | None:
    if body.get("model") not in GENERATION_MODELS:
        return f"Invalid model: {body.get('model')!r}"
    if not isinstance(body.get("prompt"), str) or not body["prompt"].strip():
        return "prompt is required"
    if not isinstance(body.get("negative_prompt", ""), str):
        return "negative_prompt must be a string"
    duration = body.get("duration", 8)
    # "Must be a bare number (like 8), not quoted, or the request fails."
    if not _is_integer(duration) or duration not in (4, 6, 8):
        return "duration must be an integer: 4, 6 or 8"
    if body.get("aspect_ratio", "16:9") not in ("16:9", "9:16"):
        return "aspect_ratio must be 16:9 or 9:16"
    if body.get("resolution", "720p") not in ("720p", "1080p", "4K"):
        return "resolution must be 720p, 1080p or 4K"
    if "enhance_prompt" in body and body["enhance_prompt"] is not True:
        return "enhance_prompt can only be true"
    seed = body.get("seed")
    if seed is not None and (not _is_integer(seed) or not 0 <= seed <= 4294967295):
        return "seed must be an integer from 0 to 4294967295"
    sample_count = body.get("sample_count", 1)
    if not _is_integer(sample_count) or not 1 <= sample_count <= 4:
        return "sample_count must be 1-4"
    if not isinstance(body.get("generate_audio", False), bool):
        return "generate_audio must be a boolean"
    if body.get("person_generation", "allow_adult") not in ("allow_adult", "disallow"):
        return "person_generation must be allow_adult or disallow"
    if body.get("resize_mode", "pad") not in ("pad", "crop"):
        return "resize_mode must be pad or crop"
    for name in ("first_frame_image", "last_frame_image"):
        # Public URLs only (the seed: no hot-link protection, object storage preferred).
        value = body.get(name)
        if value is not None and not (
            isinstance(value, str) and value.startswith(("http://", "https://"))
        ):
            return f"{name} must be a public image URL"
    if "last_frame_image" in body and "first_frame_image" not in body:
        return "last_frame_image needs first_frame_image"
    return None


def _fault_response(fault: str) -> HttpResponse | None:
    """An answer standing in for a fault asked of a submission, or None to carry on.

    Only the statuses apimart documents are produced; other codes in faults.py belong to
    other providers and are ignored here.
    """
    status = faults.status_code(fault)
    if status in ERROR_TYPES:
        response = error(status)
        if status == 429:
            response["Retry-After"] = "2"
        return response
    if fault == "timeout":
        # Longer than the client waits; the request then carries on, as a slow gateway's would.
        time.sleep(settings.SANDBOX_TIMEOUT_SECONDS)
    if fault == "malformed":
        return HttpResponse(
            b"<html><body>upstream returned an invalid response</body></html>",
            content_type="text/html",
        )
    return None


def _submitted(task: SandboxTask) -> JsonResponse:
    return JsonResponse({"code": 200, "data": [{"status": "submitted", "task_id": task.task_id}]})


@csrf_exempt
@require_POST
def generations(request: HttpRequest) -> HttpResponse:
    key = bearer_key(request)
    if key is None:
        return error(401)
    body = json_object(request)
    if body is None:
        return error(400, "Request body must be a JSON object")
    fault = faults.requested(request, body.get("prompt"))
    answer = _fault_response(fault)
    if answer is not None:
        return answer
    problem = _validate_generation(body)
    if problem:
        return error(400, problem)
    width, height = frame_size(
        body.get("aspect_ratio", "16:9"), body.get("resolution", "720p"), settings.SANDBOX_MAX_EDGE
    )
    task = SandboxTask.objects.create(
        provider=PROVIDER,
        task_id=_new_task_id(),
        kind="generate",
        api_key_hint=key[-4:],
        request=body,
        model=body["model"],
        prompt=body["prompt"],
        seconds=body.get("duration", 8),
        width=width,
        height=height,
        run_seconds=settings.SANDBOX_TASK_SECONDS,
        fault=fault if fault in TASK_FAULTS else "",
    )
    inputs.keep(
        task,
        request=request,
        first=body.get("first_frame_image"),
        last=body.get("last_frame_image"),
        texts=(body["prompt"],),
    )
    return _submitted(task)


def _family(model: str) -> str:
    # Generations say "veo3.1-fast-official", the remix page "veo3.1-fast": one family.
    return model.removesuffix("-official")


def _is_completed(task: SandboxTask) -> bool:
    return task.fraction_done >= 1.0 and task.fault not in {"never", "fail", "policy"}


def _validate_remix(body: dict[str, Any], source: SandboxTask) -> str | None:
    model = body.get("model")
    if model not in REMIX_MODELS:
        return f"Invalid model: {model!r}. Supported: veo3.1-fast, veo3.1-quality"
    if model != _family(source.model):
        return (
            f"model must be the same as the source video's model ({_family(source.model)}), "
            f"got {model}"
        )
    if not isinstance(body.get("prompt"), str) or not body["prompt"].strip():
        return "prompt is required"
    if "raw" in body and not isinstance(body["raw"], bool):
        return "raw must be a boolean"
    if body.get("aspect_ratio", "16:9") not in ("16:9", "9:16"):
        return "aspect_ratio must be 16:9 or 9:16"
    # The remix page lists "4k" in lower case (generations write "4K").
    if body.get("resolution", "720p") not in ("720p", "1080p", "4k"):
        return "resolution must be 720p, 1080p or 4k"
    return None


@csrf_exempt
@require_POST
def remix(request: HttpRequest, task_id: str) -> HttpResponse:
    key = bearer_key(request)
    if key is None:
        return error(401)
    body = json_object(request)
    if body is None:
        return error(400, "Request body must be a JSON object")
    fault = faults.requested(request, body.get("prompt"))
    answer = _fault_response(fault)
    if answer is not None:
        return answer
    source = SandboxTask.objects.filter(provider=PROVIDER, task_id=task_id).first()
    if source is None:
        return error(404)
    if not _is_completed(source):
        return error(400, "The source video task must be completed (status: success)")
    problem = _validate_remix(body, source)
    if problem:
        return error(400, problem)
    width, height = frame_size(
        body.get("aspect_ratio") or source.request.get("aspect_ratio", "16:9"),
        body.get("resolution") or source.request.get("resolution", "720p"),
        settings.SANDBOX_MAX_EDGE,
    )
    raw = body.get("raw", False)
    task = SandboxTask.objects.create(
        provider=PROVIDER,
        task_id=_new_task_id(),
        kind="remix",
        api_key_hint=key[-4:],
        request=body,
        model=body["model"],
        prompt=body["prompt"],
        source=source,
        # The whole video replays the source and goes on; raw is only the new part, whose
        # counter starts where the source ended.
        start_at=source.start_at + source.seconds if raw else source.start_at,
        seconds=REMIX_ADDS_SECONDS if raw else source.seconds + REMIX_ADDS_SECONDS,
        width=width,
        height=height,
        run_seconds=settings.SANDBOX_TASK_SECONDS,
        fault=fault if fault in TASK_FAULTS else "",
    )
    inputs.keep(task, request=request, texts=(body["prompt"],))
    return _submitted(task)


def _status_data(request: HttpRequest, task: SandboxTask) -> dict[str, Any]:
    created = int(task.created_at.timestamp())
    data: dict[str, Any] = {
        "id": task.task_id,
        "created": created,
        "estimated_time": max(1, round(task.run_seconds)),
    }
    fraction = task.fraction_done
    if task.fault == "never":
        # Creeps towards the end and never gets there.
        data.update(status="processing", progress=min(95, 10 + int(fraction * 80)))
    elif fraction >= 1.0 and task.fault in TASK_ERRORS:
        data.update(status="failed", progress=100, error=TASK_ERRORS[task.fault])
    elif fraction >= 1.0:
        completed = int(task.finished_at.timestamp())
        # One entry per sample asked for (sample_count, 1-4), each its own video.
        videos = [
            {
                "expires_at": completed + 86400,
                "url": [
                    request.build_absolute_uri(
                        reverse("sandbox:apimart-video", args=[task.task_id])
                        if sample == 1
                        else reverse("sandbox:apimart-sample", args=[task.task_id, sample])
                    )
                ],
            }
            for sample in range(1, _samples(task) + 1)
        ]
        data.update(
            status="completed",
            progress=100,
            completed=completed,
            actual_time=max(1, completed - created),
            result={"videos": videos},
        )
    elif fraction < 0.1:
        data.update(status="pending", progress=0)
    else:
        data.update(status="processing", progress=min(99, int(fraction * 100)))
    return data


def _samples(task: SandboxTask) -> int:
    count = task.request.get("sample_count", 1) if task.kind == "generate" else 1
    return count if _is_integer(count) and 1 <= count <= 4 else 1


@require_GET
def task_status(request: HttpRequest, task_id: str) -> JsonResponse:
    if bearer_key(request) is None:
        return error(401)
    # ``?language=en`` is documented; the twin always answers in English, so it only
    # has to be accepted.
    task = SandboxTask.objects.filter(provider=PROVIDER, task_id=task_id).first()
    if task is None:
        return error(404, "Task not found")
    return JsonResponse({"code": 200, "data": _status_data(request, task)})


@require_GET
def balance(request: HttpRequest) -> JsonResponse:
    """The key's balance (docs.apimart.ai, "Token balance": GET /v1/balance)."""
    key = bearer_key(request)
    if key is None:
        return error(401)
    remain = 0.0 if key.startswith(EMPTY_KEY_PREFIX) else SANDBOX_BALANCE
    return JsonResponse(
        {"success": True, "remain_balance": remain, "used_balance": 0.0, "unlimited_quota": False}
    )


@require_GET
def video(request: HttpRequest, task_id: str, sample: int = 1) -> HttpResponse:
    task = SandboxTask.objects.filter(provider=PROVIDER, task_id=task_id).first()
    if task is None or not _is_completed(task) or task.fault == "expired":
        return error(404)
    if not 1 <= sample <= _samples(task):
        return error(404)
    label = (
        f"SANDBOX · apimart · sample {sample}"
        if sample > 1
        else f"SANDBOX · apimart · {task.model}"
    )
    return video_response(request, task, label=label, sample=sample)


urlpatterns = [
    path("v1/videos/generations", generations, name="apimart-generations"),
    path("v1/videos/<str:task_id>/remix", remix, name="apimart-remix"),
    path("v1/tasks/<str:task_id>", task_status, name="apimart-task"),
    path("v1/balance", balance, name="apimart-balance"),
    path("files/<str:task_id>.mp4", video, name="apimart-video"),
    path("files/<str:task_id>/<int:sample>.mp4", video, name="apimart-sample"),
]
