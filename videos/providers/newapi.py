"""The NewAPI gateway's 15 s Veo 3.1 "remix" models (seeds/newapi-veo31-remix-15s.md).

One request makes 15 s in two phases: an 8 s generation (``prompt``), then a 7 s extension
(``prompt_extend``). Submissions are multipart/form-data only; the status answer carries
NewAPI's own task fields at the top level and the middleware's fields under ``data``.
Errors answer ``{"error":{"message","type","code"}}`` with the HTTP status.
"""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any

import httpx

from videos.providers.base import (
    BearerClient,
    FrameInput,
    GenerationRequest,
    ModelSpec,
    ProviderError,
    State,
    TaskState,
    error_for_status,
    parse_retry_after,
)

FIELD = "input_reference[]"


def _spec(name: str, label: str) -> ModelSpec:
    # The seed's naming rule: "-fl" takes first/last frames (1-2 images), the others up to
    # 3 reference images; "-hd" is 1080p.
    first_last = "-fl-" in name
    resolution = "1080p" if "-hd" in name else "720p"
    return ModelSpec(
        name=name,
        label=label,
        durations=(15,),
        default_duration=15,
        aspect_ratios=("16:9", "9:16"),
        resolutions=(resolution,),
        default_resolution=resolution,
        frame_roles=("first", "last") if first_last else ("reference",),
        max_references=0 if first_last else 3,
        frame_transports=("file", "url", "data_uri"),
        prompts=("prompt", "prompt_extend"),
        # The 15 s result is already the extension; the gateway offers no further hop.
        extend=None,
    )


MODELS = (
    _spec("veo_3_1-fast-remix", "Veo 3.1 Fast, 15 s"),
    _spec("veo_3_1-fast-fl-remix", "Veo 3.1 Fast, 15 s, first/last frames"),
    _spec("veo_3_1-fast-hd-remix", "Veo 3.1 Fast HD, 15 s (1080p)"),
    _spec("veo_3_1-fast-fl-hd-remix", "Veo 3.1 Fast HD, 15 s (1080p), first/last frames"),
    _spec("veo_3_1-hd-remix", "Veo 3.1 Quality HD, 15 s (1080p)"),
    _spec("veo_3_1-hd-fl-remix", "Veo 3.1 Quality HD, 15 s (1080p), first/last frames"),
    _spec("veo_3_1-remix", "Veo 3.1, 15 s"),
    _spec("veo_3_1-fl-remix", "Veo 3.1, 15 s, first/last frames"),
)

# The four sizes the seed lists; the model's "-hd" decides 720p or 1080p.
SIZES = {
    ("16:9", "720p"): "1280x720",
    ("9:16", "720p"): "720x1280",
    ("16:9", "1080p"): "1920x1080",
    ("9:16", "1080p"): "1080x1920",
}

# ``data.status`` is the middleware's word; the top-level ``status`` is NewAPI's.
DATA_STATUS = {
    "queued": State.QUEUED,
    "processing": State.RUNNING,
    "in_progress": State.RUNNING,
    "completed": State.SUCCEEDED,
    "failed": State.FAILED,
}
GATEWAY_STATUS = {
    "NOT_START": State.QUEUED,
    "SUBMITTED": State.QUEUED,
    "QUEUED": State.QUEUED,
    "IN_PROGRESS": State.RUNNING,
    "SUCCESS": State.SUCCEEDED,
    "FAILURE": State.FAILED,
}

PHASE_QUEUED = "Waiting in the provider's queue"
PHASE_GENERATE = "Generating first 8 s"
PHASE_EXTEND = "Extending to 15 s"

# Markers in the middleware's failure text (seed examples): E-1005 is Google's safety
# refusal ("违反谷歌AI安全协议"), E-2003 a busy line ("线路繁忙").
POLICY_MARKERS = ("E-1005", "安全协议", "违反")
BUSY_MARKERS = ("E-2003", "线路繁忙", "繁忙")


class Client(BearerClient):
    def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        return _parse(self._send(method, path, **kwargs))

    def submit(self, request: GenerationRequest) -> str:
        body = self._request("POST", "/v1/videos", files=form_parts(request))
        return task_id_from(body)

    def status(self, task_id: str) -> TaskState:
        return parse_status(self._request("GET", f"/v1/videos/{task_id}"))

    def remix(self, remix_id: str, *, model: str, prompt: str) -> str:
        """Retry the extension of a task whose first 8 s were made (``extend_failed``).

        The seed: remix_id "可用于手动二创重试" (can be used to retry the remix by hand). The
        gateway speaks OpenAI's video API, whose remix of a finished video is
        ``POST /v1/videos/{video_id}/remix`` with a JSON prompt; the answer is a task
        followed like any other, whose video is the whole 15 s.
        """
        body = self._request(
            "POST", f"/v1/videos/{remix_id}/remix", json={"model": model, "prompt": prompt}
        )
        return task_id_from(body)

    def check_connection(self) -> Decimal | None:
        """A cheap authenticated call: the OpenAI-compatible GET /v1/models every NewAPI
        gateway serves under token auth. It makes nothing and reports no balance (None)."""
        self._request("GET", "/v1/models")
        return None


# A multipart part as httpx takes it: (field name, (filename or None, content, content type)).
Part = tuple[str, tuple[str | None, bytes | str, str | None]]


def form_parts(request: GenerationRequest) -> list[Part]:
    """Every field of the submission as a multipart part, in the order the seed wants.

    All parts go through httpx's ``files=``: ``data=`` fields are always written before
    files (so a URL first frame would land after a file last frame), and ``data=`` alone
    would be sent urlencoded, which the gateway refuses. A part with no filename is a plain
    text field on the wire.
    """
    prompt_extend = str(request.params.get("prompt_extend") or "").strip()
    if not prompt_extend:
        raise ProviderError(
            "These 15 s models need a second prompt for the last 7 s. Describe how the "
            "video continues and try again.",
            code="missing_prompt_extend",
            permanent=True,
        )
    parts: list[Part] = [
        ("model", (None, request.model, None)),
        ("prompt", (None, request.prompt, None)),
        ("prompt_extend", (None, prompt_extend, None)),
        ("size", (None, size_for(request.model, request.params.get("aspect_ratio")), None)),
    ]
    frames = ordered_frames(request.model, request.frames)
    as_data_uri = request.params.get("frame_transport") == "data_uri" or (
        # The gateway reads file parts and text parts of a repeated field as two separate
        # lists, so their relative order is lost; when some frames are URLs, uploaded
        # images travel as data URIs (text too) to keep first/last and 1-2-3 in order.
        any(frame.url and not frame.content for frame in frames)
        and any(frame.content for frame in frames)
    )
    for frame in frames:
        if frame.content and as_data_uri:
            encoded = base64.b64encode(frame.content).decode("ascii")
            parts.append((FIELD, (None, f"data:{frame.content_type};base64,{encoded}", None)))
        elif frame.content:
            parts.append((FIELD, (frame.filename, frame.content, frame.content_type)))
        else:
            parts.append((FIELD, (None, frame.url, None)))
    return parts


def size_for(model: str, aspect_ratio: Any) -> str:
    resolution = "1080p" if "-hd" in model else "720p"
    size = SIZES.get((str(aspect_ratio or "16:9"), resolution))
    if size is None:
        raise ProviderError(
            "These 15 s models make 16:9 or 9:16 videos only. Pick one of those.",
            code="invalid_aspect_ratio",
            permanent=True,
        )
    return size


def ordered_frames(model: str, frames: tuple[FrameInput, ...]) -> list[FrameInput]:
    usable = [frame for frame in frames if frame.content or frame.url]
    if "-fl-" in model:
        first = [frame for frame in usable if frame.role == "first"]
        last = [frame for frame in usable if frame.role == "last"]
        others = [frame for frame in usable if frame.role not in {"first", "last"}]
        # A single image is always read as the first frame (seed), so a lone last frame
        # would silently become the opening shot.
        if others or len(first) != 1 or len(last) > 1:
            raise ProviderError(
                "This model takes a first frame and, optionally, a last frame. "
                "Add a first frame and try again.",
                code="invalid_frames",
                permanent=True,
            )
        return first + last
    if any(frame.role != "reference" for frame in usable) or len(usable) > 3:
        raise ProviderError(
            "This model takes up to 3 reference images, not first or last frames. "
            "Change the images and try again.",
            code="invalid_frames",
            permanent=True,
        )
    return usable


def _parse(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    status = response.status_code
    if status < 400 and isinstance(body, dict) and not isinstance(body.get("error"), dict):
        return body
    provider_message = ""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        provider_message = str(error.get("message") or error.get("code") or "")
        if status < 400:
            status = error["code"] if isinstance(error.get("code"), int) else 400
    elif status < 400:
        # A 200 that cannot be read may still have started a paid task: like a lost answer,
        # it must never lead to a second submission.
        raise ProviderError(
            "The provider's answer could not be read.",
            code="no_answer",
            http_status=status,
            provider_message=f"Unreadable answer (HTTP {status}): {response.text[:200]}",
        )
    else:
        provider_message = f"HTTP {status}: {response.text[:200]}"
    raise error_for_status(
        status,
        provider_message=provider_message,
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
    )


def task_id_from(body: dict[str, Any]) -> str:
    # The seed prints no submission answer; NewAPI answers in OpenAI's video shape, where
    # ``task_id`` is its own id (kept "for old clients") and ``id`` usually the same.
    data = body.get("data") if isinstance(body.get("data"), dict) else {}
    for candidate in (body.get("task_id"), body.get("id"), data.get("task_id"), data.get("id")):
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip()
    raise ProviderError(
        "The provider accepted the request but returned no task id.",
        code="no_task_id",
        permanent=True,
        provider_message=str(body)[:500],
    )


def parse_status(body: dict[str, Any]) -> TaskState:
    data = body.get("data") if isinstance(body.get("data"), dict) else {}
    error = data.get("error") if isinstance(data.get("error"), dict) else {}
    error_code = str(error.get("code") or "")
    provider_message = str(error.get("message") or body.get("fail_reason") or "")
    # Unknown words mean the provider is still working (PROVIDERS.md, "Facts").
    state = DATA_STATUS.get(
        str(data.get("status") or "").lower(),
        GATEWAY_STATUS.get(str(body.get("status") or "").upper(), State.RUNNING),
    )
    progress = _percent(data["progress"] if "progress" in data else body.get("progress"))
    # "remix_id 可用于手动重试二创延长" (seed): kept so the extension can be retried.
    facts = {"remix_id": str(data["remix_id"])} if data.get("remix_id") else {}

    if error_code == "extend_failed" and data.get("video_url"):
        return TaskState(
            State.PARTIAL,
            progress=progress,
            video_url=str(data["video_url"]),
            error_code=error_code,
            # The page says the first 8 s were kept; this says why the rest failed and what next.
            error_message=(
                f"{'The provider was busy. ' if _busy(provider_message) else ''}"
                "You can retry the extension, or continue from the 8 s clip."
            ),
            provider_message=provider_message,
            facts=facts,
            raw=body,
        )
    if state is State.FAILED or error_code:
        return TaskState(
            State.FAILED,
            progress=progress,
            error_code=error_code or "failed",
            error_message=_failure_message(provider_message),
            provider_message=provider_message,
            raw=body,
        )
    if state is State.SUCCEEDED:
        url = data.get("video_url") or body.get("result_url") or ""
        fail_reason = str(body.get("fail_reason") or "")
        # On SUCCESS NewAPI puts the download address in ``fail_reason`` (seed).
        if not url and fail_reason.startswith(("http://", "https://")):
            url = fail_reason
        if not url:
            return TaskState(
                State.FAILED,
                progress=100,
                error_code="no_video",
                error_message="The provider finished but returned no video. Try again.",
                raw=body,
            )
        return TaskState(State.SUCCEEDED, progress=100, video_url=str(url), raw=body)
    if state is State.QUEUED:
        return TaskState(State.QUEUED, progress=progress, phase=PHASE_QUEUED, raw=body)
    phase = PHASE_EXTEND if progress >= 50 else PHASE_GENERATE
    return TaskState(State.RUNNING, progress=progress, phase=phase, raw=body)


def _failure_message(provider_message: str) -> str:
    if any(marker in provider_message for marker in POLICY_MARKERS):
        return (
            "The provider refused this video under its safety rules. "
            "Change the prompt or images and try again."
        )
    if _busy(provider_message):
        return "The provider was too busy to make this video. Try again later."
    return "The provider could not make this video. Change the prompt or images and try again."


def _busy(provider_message: str) -> bool:
    return any(marker in provider_message for marker in BUSY_MARKERS)


def _percent(value: Any) -> int:
    try:
        return max(0, min(100, int(float(str(value).strip().rstrip("%")))))
    except (TypeError, ValueError):
        return 0
