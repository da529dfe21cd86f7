"""Twin of the NewAPI gateway's 15 s Veo 3.1 "remix" models: /v1/videos and /v1/videos/{id}.

Multipart submissions, two-phase progress, the seed's status bodies (NewAPI's task fields at
the top level, the middleware's under ``data``) and its error shape follow
seeds/newapi-veo31-remix-15s.md and PROVIDERS.md §2.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import av
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.urls import path, reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from sandbox import faults, inputs
from sandbox.common import bearer_key, json_object
from sandbox.models import SandboxTask
from sandbox.render import frame_size
from sandbox.videos import ensure_video, video_path, video_response

PROVIDER = "newapi"
KIND = "remix"
FIELD = "input_reference[]"
MODELS = {
    "veo_3_1-fast-remix",
    "veo_3_1-fast-fl-remix",
    "veo_3_1-fast-hd-remix",
    "veo_3_1-fast-fl-hd-remix",
    "veo_3_1-hd-remix",
    "veo_3_1-hd-fl-remix",
    "veo_3_1-remix",
    "veo_3_1-fl-remix",
}
SIZES = {"1280x720", "720x1280", "1920x1080", "1080x1920"}
FIRST_SECONDS = 8.0
EXTEND_SECONDS = 7.0
# Where in the run the "fail"/"policy" and "extend_failed" faults strike.
GENERATE_FAILS_AT = 0.3
EXTEND_FAILS_AT = 0.75

ERRORS = {
    400: ("Invalid request", "invalid_request_error", "invalid_request"),
    401: ("Invalid token", "new_api_error", "invalid_api_key"),
    402: ("Insufficient quota, please top up", "new_api_error", "insufficient_user_quota"),
    403: ("This token may not use this model", "new_api_error", "access_denied"),
    404: ("Task not found", "new_api_error", "task_not_exist"),
    429: ("Too many requests, please slow down", "new_api_error", "rate_limit_exceeded"),
    500: ("Internal server error", "new_api_error", "internal_error"),
    502: ("Bad gateway: the upstream channel did not answer", "upstream_error", "bad_gateway"),
    503: ("No channel is available for this model right now", "new_api_error", "unavailable"),
}

# The failure texts the seed prints, in the middleware's own words.
GENERATE_FAILED = "视频生成失败:违反谷歌AI安全协议 请调整图片和提示词 (E-1005)"
EXTEND_FAILED = "第一段视频生成成功,但二创失败:线路繁忙,请重试 (E-2003)"


def error(status: int, message: str | None = None) -> JsonResponse:
    default_message, kind, code = ERRORS.get(
        status, ("Request failed", "new_api_error", f"http_{status}")
    )
    response = JsonResponse(
        {"error": {"message": message or default_message, "type": kind, "code": code}},
        status=status,
    )
    if status == 429:
        response["Retry-After"] = "2"
    return response


def _task_id() -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return "task_" + "".join(secrets.choice(alphabet) for _ in range(32))


def _reference(value: UploadedFile | str) -> dict[str, Any] | str:
    """One input_reference[] part as the twin saw it, or the reason it is refused."""
    if isinstance(value, UploadedFile):
        content = value.read()
        if not content:
            return f"input_reference[] file {value.name!r} is empty"
        return {
            "form": "file",
            "filename": value.name,
            "content_type": value.content_type,
            "bytes": len(content),
        }
    if value.startswith(("http://", "https://")):
        return {"form": "url", "url": value}
    if value.startswith("data:"):
        header, _, encoded = value.partition(",")
        if not header.endswith(";base64") or not header[5:].startswith("image/"):
            return "input_reference[] data URI must be data:image/...;base64,..."
        try:
            content = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            return "input_reference[] data URI is not valid base64"
        return {"form": "data_uri", "content_type": header[5:-7], "bytes": len(content)}
    return "input_reference[] must be a file, an image URL or a data URI"


def _validate(request: HttpRequest) -> dict[str, Any] | str:
    form = request.POST
    model = form.get("model", "")
    if model not in MODELS:
        return f"Invalid model: {model!r}"
    for name in ("prompt", "prompt_extend"):
        if not form.get(name, "").strip():
            return f"{name} is required"
    size = form.get("size") or ("1920x1080" if "-hd" in model else "1280x720")
    if size not in SIZES:
        return "size must be 1280x720, 720x1280, 1920x1080 or 1080x1920"
    # Django, like the gateway, keeps file parts and text parts of a field apart, so the
    # order between the two kinds is not kept: files are recorded first.
    references = []
    for value in [*request.FILES.getlist(FIELD), *form.getlist(FIELD)]:
        reference = _reference(value)
        if isinstance(reference, str):
            return reference
        references.append(reference)
    if "-fl-" in model and not 1 <= len(references) <= 2:
        return "first/last-frame models take 1 or 2 input_reference[] images"
    if "-fl-" not in model and len(references) > 3:
        return "reference models take at most 3 input_reference[] images"
    return {
        "content_type": request.content_type,
        "model": model,
        "prompt": form["prompt"],
        "prompt_extend": form["prompt_extend"],
        "size": size,
        "input_reference": references,
    }


@csrf_exempt
@require_POST
def videos(request: HttpRequest) -> HttpResponse:
    key = bearer_key(request)
    if key is None:
        return error(401)
    if request.content_type != "multipart/form-data":
        return error(400, "Use multipart/form-data for /v1/videos; JSON bodies are not accepted")
    fault = faults.requested(request, request.POST.get("prompt"), request.POST.get("prompt_extend"))
    if (code := faults.status_code(fault)) is not None:
        return error(code)
    if fault == "malformed":
        return HttpResponse("<html><body>upstream hiccup</body></html>", content_type="text/html")
    if fault == "timeout":
        time.sleep(settings.SANDBOX_TIMEOUT_SECONDS)
    received = _validate(request)
    if isinstance(received, str):
        return error(400, received)
    task = _create(received, key=key, fault=fault)
    _keep_frames(request, task)
    return JsonResponse(
        {
            "id": task.task_id,
            "task_id": task.task_id,
            "object": "video",
            "model": task.model,
            "status": "queued",
            "progress": 0,
            "created_at": int(task.created_at.timestamp()),
        }
    )


@csrf_exempt
@require_POST
def remix(request: HttpRequest, remix_id: str) -> HttpResponse:
    """Retry the extension of a first part by hand (seed: remix_id "可用于手动二创重试").

    The gateway's remix, in OpenAI's video shape: ``POST /v1/videos/{remix_id}/remix``
    with a JSON ``prompt`` (and ``model``); the new task is followed at /v1/videos/{id} and
    its video is the first 8 s and the new 7 s, 15 s in all.
    """
    key = bearer_key(request)
    if key is None:
        return error(401)
    body = json_object(request)
    if body is None:
        return error(400, "The remix body must be a JSON object")
    first = SandboxTask.objects.filter(provider=PROVIDER, kind="remix-first", task_id=remix_id)
    first = first.first()
    original = SandboxTask.objects.filter(
        provider=PROVIDER, kind=KIND, request__ids__remix_id=remix_id
    ).first()
    if first is None or original is None:
        return error(404, "Video not found")
    usable = original.fault == "extend_failed" and original.fraction_done >= EXTEND_FAILS_AT
    if not (usable or (not original.fault and original.fraction_done >= 1.0)):
        return error(400, "The video to remix is not finished")
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return error(400, "prompt is required")
    model = body.get("model", first.model)
    if model != first.model:
        return error(400, f"model must be the first video's model ({first.model})")
    fault = faults.requested(request, prompt)
    if (code := faults.status_code(fault)) is not None:
        return error(code)
    shared = {
        "provider": PROVIDER,
        "api_key_hint": key[-4:],
        "width": first.width,
        "height": first.height,
    }
    extension = SandboxTask.objects.create(
        task_id=f"video_{uuid.uuid4()}",
        kind="remix-extend",
        model=model,
        prompt=prompt,
        seconds=EXTEND_SECONDS,
        source=first,
        start_at=FIRST_SECONDS,
        **shared,
    )
    ids = {
        "middleware": _task_id(),
        "remix_id": first.task_id,
        "remix_id_extend": extension.task_id,
    }
    received = {
        "content_type": request.content_type,
        "model": model,
        "prompt": original.request.get("prompt", ""),
        "prompt_extend": prompt,
        "remix_of": remix_id,
        "body": body,
        "input_reference": [],
    }
    task = SandboxTask.objects.create(
        task_id=_task_id(),
        kind=KIND,
        request={**received, "ids": ids},
        model=model,
        prompt=prompt,
        seconds=FIRST_SECONDS + EXTEND_SECONDS,
        run_seconds=settings.SANDBOX_TASK_SECONDS,
        fault=fault if fault in faults.TASK_FAULTS | {"policy"} else "",
        **shared,
    )
    inputs.keep(extension, request=request, texts=(prompt,))
    return JsonResponse(
        {
            "id": task.task_id,
            "task_id": task.task_id,
            "object": "video",
            "model": model,
            "status": "queued",
            "progress": 0,
            "remixed_from_video_id": remix_id,
            "created_at": int(task.created_at.timestamp()),
        }
    )


def _create(received: dict[str, Any], *, key: str, fault: str) -> SandboxTask:
    width, height = (int(side) for side in received["size"].split("x"))
    width, height = frame_size(
        "16:9" if width > height else "9:16",
        "1080p" if max(width, height) >= 1920 else "720p",
        settings.SANDBOX_MAX_EDGE,
    )
    shared = {"provider": PROVIDER, "api_key_hint": key[-4:], "width": width, "height": height}
    # The two upstream tasks the middleware chains (remix_id, remix_id_extend): the
    # extension continues the first 8 s, counter and scene included.
    first = SandboxTask.objects.create(
        task_id=f"video_{uuid.uuid4()}",
        kind="remix-first",
        model=received["model"],
        prompt=received["prompt"],
        seconds=FIRST_SECONDS,
        **shared,
    )
    extension = SandboxTask.objects.create(
        task_id=f"video_{uuid.uuid4()}",
        kind="remix-extend",
        model=received["model"],
        prompt=received["prompt_extend"],
        seconds=EXTEND_SECONDS,
        source=first,
        start_at=FIRST_SECONDS,
        **shared,
    )
    ids = {
        "middleware": _task_id(),
        "remix_id": first.task_id,
        "remix_id_extend": extension.task_id,
    }
    return SandboxTask.objects.create(
        task_id=_task_id(),
        kind=KIND,
        request={**received, "ids": ids},
        model=received["model"],
        prompt=received["prompt"],
        seconds=FIRST_SECONDS + EXTEND_SECONDS,
        run_seconds=settings.SANDBOX_TASK_SECONDS,
        fault=fault if fault in faults.TASK_FAULTS | {"policy"} else "",
        **shared,
    )


def _keep_frames(request: HttpRequest, task: SandboxTask) -> None:
    """First/last-frame models start the 8 s from the first image (ending on the second when
    given); the extension carries on from where the 8 s ended."""
    prompts = (request.POST.get("prompt"), request.POST.get("prompt_extend"))
    first = last = None
    if "-fl-" in task.model:
        images = [
            inputs.read_image(value, request=request)
            for value in [*request.FILES.getlist(FIELD), *request.POST.getlist(FIELD)]
        ]
        first = images[0] if images else None
        last = images[1] if len(images) > 1 else None
    ids = task.request["ids"]
    parts = SandboxTask.objects.filter(task_id__in=[ids["remix_id"], ids["remix_id_extend"]])
    for part in parts:
        if part.task_id == ids["remix_id"]:
            inputs.keep(part, request=request, first=first, last=last, texts=prompts)
        else:
            inputs.keep(part, request=request, first=last or first, texts=prompts)


def _url(request: HttpRequest, name: str, key: str) -> str:
    return request.build_absolute_uri(reverse(f"sandbox:{name}", args=[key]))


def _status_body(request: HttpRequest, task: SandboxTask) -> dict[str, Any]:
    ids = task.request["ids"]
    created = int(task.created_at.timestamp())
    fraction = task.fraction_done
    if task.fault == "never":
        fraction = min(fraction, 0.9)
    data: dict[str, Any] = {
        "id": ids["middleware"],
        "model": task.model,
        "object": "video",
        "created_at": created,
        "remix_id": ids["remix_id"],
    }
    top: dict[str, Any] = {"fail_reason": "", "finish_time": 0}
    failed_generate = task.fault in {"fail", "policy"} and fraction >= GENERATE_FAILS_AT
    failed_extend = task.fault == "extend_failed" and fraction >= EXTEND_FAILS_AT
    if failed_generate:
        data.update(
            status="failed",
            progress=0,
            error={"code": "generate_failed", "message": GENERATE_FAILED},
        )
        top.update(status="FAILURE", fail_reason=GENERATE_FAILED)
    elif failed_extend:
        data.update(
            status="failed",
            progress=50,
            error={"code": "extend_failed", "message": EXTEND_FAILED},
            video_url=_url(request, "newapi-first-file", ids["remix_id"]),
            remix_id_extend=ids["remix_id_extend"],
        )
        top.update(status="FAILURE", fail_reason=EXTEND_FAILED)
    elif fraction >= 1.0:
        content = _url(request, "newapi-content", ids["middleware"])
        data.update(
            status="completed",
            progress=100,
            video_url=_url(request, "newapi-extend-file", task.task_id),
            completed_at=int(task.finished_at.timestamp()),
            first_video_url=_url(request, "newapi-first-file", ids["remix_id"]),
            remix_id_extend=ids["remix_id_extend"],
        )
        top.update(
            status="SUCCESS",
            fail_reason=content,
            result_url=content,
            finish_time=int(task.finished_at.timestamp()),
        )
    elif fraction < 0.1:
        data.update(status="queued", progress=0)
        top.update(status="SUBMITTED")
    else:
        # 0-49: the first 8 s are being generated; 50-99: the extension (seed).
        if fraction < 0.5:
            progress = min(49, int((fraction - 0.1) / 0.4 * 50))
        else:
            progress = min(99, 50 + int((fraction - 0.5) * 100))
            data["remix_id_extend"] = ids["remix_id_extend"]
        data.update(status="processing", progress=progress)
        top.update(status="IN_PROGRESS")
    submit_time = created
    return {
        "id": task.pk,
        "created_at": created,
        "updated_at": int(time.time()),
        "task_id": task.task_id,
        "platform": "1",
        "user_id": 1,
        "channel_id": 1,
        "quota": 425000,
        "action": _action(task),
        "submit_time": submit_time,
        "start_time": submit_time if fraction >= 0.1 else 0,
        "progress": f"{data['progress']}%",
        "properties": {"upstream_model_name": task.model, "origin_model_name": task.model},
        **top,
        "data": data,
    }


def _action(task: SandboxTask) -> str:
    if not task.request.get("input_reference"):
        return "textGenerate"
    return "firstTailGenerate" if "-fl-" in task.model else "referenceGenerate"


@require_GET
def models(request: HttpRequest) -> JsonResponse:
    """The models this key may use: NewAPI's OpenAI-compatible GET /v1/models."""
    if bearer_key(request) is None:
        return error(401)
    return JsonResponse(
        {
            "object": "list",
            "success": True,
            "data": [
                {"id": name, "object": "model", "created": 1626777600, "owned_by": "vertex-ai"}
                for name in sorted(MODELS)
            ],
        }
    )


@require_GET
def video_task(request: HttpRequest, task_id: str) -> JsonResponse:
    if bearer_key(request) is None:
        return error(401)
    task = SandboxTask.objects.filter(provider=PROVIDER, kind=KIND, task_id=task_id).first()
    if task is None:
        return error(404)
    return JsonResponse(_status_body(request, task))


def _label(task: SandboxTask) -> str:
    return f"SANDBOX · newapi · {task.model}"


def _full_video(task: SandboxTask) -> Path:
    """The 15 s file: the first 8 s followed by the 7 s extension, remuxed without re-encoding."""
    target = video_path(task)
    if target.exists():
        return target
    ids = task.request["ids"]
    parts = [
        ensure_video(SandboxTask.objects.get(task_id=ids[key]), label=_label(task))
        for key in ("remix_id", "remix_id_extend")
    ]
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(suffix=".mp4", dir=target.parent)
    os.close(fd)
    try:
        with av.open(tmp_name, "w", options={"movflags": "faststart"}) as output:
            stream = None
            offset = 0
            for part in parts:
                with av.open(str(part)) as source:
                    source_stream = source.streams.video[0]
                    if stream is None:
                        stream = output.add_stream_from_template(source_stream)
                    for packet in source.demux(source_stream):
                        if packet.dts is None:
                            continue
                        packet.pts = (packet.pts or 0) + offset
                        packet.dts += offset
                        packet.stream = stream
                        output.mux(packet)
                    offset += source_stream.duration or 0
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return target


def _full_response(task: SandboxTask | None) -> HttpResponse:
    # Any task fault means no 15 s file ever exists ("expired": it existed, now gone).
    if task is None or task.fault or task.fraction_done < 1.0:
        return error(404, "Video not found")
    path = _full_video(task)
    return FileResponse(path.open("rb"), content_type="video/mp4", filename=path.name)


@require_GET
def extend_file(request: HttpRequest, task_id: str) -> HttpResponse:
    return _full_response(
        SandboxTask.objects.filter(provider=PROVIDER, kind=KIND, task_id=task_id).first()
    )


@require_GET
def content(request: HttpRequest, middleware_id: str) -> HttpResponse:
    return _full_response(
        SandboxTask.objects.filter(
            provider=PROVIDER, kind=KIND, request__ids__middleware=middleware_id
        ).first()
    )


@require_GET
def first_file(request: HttpRequest, remix_id: str) -> HttpResponse:
    first = SandboxTask.objects.filter(provider=PROVIDER, kind="remix-first", task_id=remix_id)
    task = SandboxTask.objects.filter(
        provider=PROVIDER, kind=KIND, request__ids__remix_id=remix_id
    ).first()
    if task is None or task.fault in {"expired", "fail", "policy", "never"}:
        return error(404, "Video not found")
    # Served with the finished task, or as the usable result of a failed extension.
    if task.fraction_done < (EXTEND_FAILS_AT if task.fault == "extend_failed" else 1.0):
        return error(404, "Video not found")
    return video_response(request, first.get(), label=_label(task))


urlpatterns = [
    path("v1/models", models, name="newapi-models"),
    path("v1/videos", videos, name="newapi-videos"),
    path("v1/videos/<str:task_id>", video_task, name="newapi-video-task"),
    path("v1/videos/<str:middleware_id>/content", content, name="newapi-content"),
    path("v1/videos/<str:remix_id>/remix", remix, name="newapi-remix"),
    path("extend/<str:task_id>.mp4", extend_file, name="newapi-extend-file"),
    path("video/<str:remix_id>", first_file, name="newapi-first-file"),
]
