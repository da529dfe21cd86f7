"""Kling's video API (seeds/kling-video-extend.md, PROVIDERS.md §4).

JSON bodies. Every answer is ``{"code":0,"message":…,"request_id":…,"data":…}``; a non-zero
``code`` is an error whatever the HTTP status. Times are in milliseconds.

Task ids: Kling queries a task under the endpoint family that made it
(``/v1/videos/{text2video|image2video|video-extend}/{id}``), while the studio keeps one opaque
task id per clip and polls through the provider-neutral ``status(task_id)``. So the ids this
client hands out carry the family: ``"video-extend:<kling task id>"``. Nothing outside this
module needs to know which endpoint made a clip, and no extra column or pipeline branch is
needed. Callbacks carry only Kling's own id: ``parse_callback`` returns that, and
``task_ids_for`` lists the ids the studio may have stored it under.
"""

from __future__ import annotations

import base64
import json
import time
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx
import jwt

from videos.providers.base import (
    BearerClient,
    ExtendSpec,
    FrameInput,
    GenerationRequest,
    ModelSpec,
    OptionSpec,
    ProviderError,
    State,
    TaskState,
    error_for_status,
    from_timestamp,
    parse_retry_after,
)

FAMILIES = ("text2video", "image2video", "video-extend")
# "Generated images and videos are deleted after 30 days" (Kling's general information page).
RETENTION = timedelta(days=30)
# Kling's JWT recipe: valid for 30 minutes, from 5 seconds ago (absorbs small clock skew).
TOKEN_SECONDS = 1800
TOKEN_LEEWAY_SECONDS = 5
# How far back "Test connection" asks for resource packs: annual packs included.
PACK_LOOKBACK_MS = 366 * 24 * 3600 * 1000

EXTEND = ExtendSpec(
    adds_seconds=4.5,
    max_total_seconds=180,
    returns="whole",
    note=(
        "Each extension adds 4-5 s and returns the whole video, up to 3 minutes in all. The "
        "source must be under 30 days old (Kling deletes media after 30 days); the extension "
        "keeps the source's model and mode."
    ),
)

# Kling has no resolution setting. Its ``mode`` (std = standard, pro = "expert", 1080p on
# v1.5 and later, 720p on v1.0) is what the studio's resolution field carries for Kling models,
# shown under the label "Mode".
MODES = ("std", "pro")

# "cfg_scale: kling-v2.x models do not support it" (Kling's text2video and image2video pages);
# video-extend takes it too (seed), and only V1.x videos are extended.
CFG_SCALE = OptionSpec(
    name="cfg_scale",
    label="Closeness to the text (cfg_scale)",
    kind="float",
    minimum=0,
    maximum=1,
    step="0.05",
    on_extend=True,
    help="cfg_scale, 0-1: higher keeps closer to the prompt. Empty: Kling's 0.5.",
)


def _v1(name: str, label: str) -> ModelSpec:
    """The V1.x models share everything but their name: std/pro modes, first and last frames,
    and video-extend."""
    return ModelSpec(
        name=name,
        label=label,
        durations=(5, 10),
        default_duration=5,
        aspect_ratios=("16:9", "9:16", "1:1"),
        resolutions=MODES,
        default_resolution="std",
        resolution_label="Mode",
        frame_roles=("first", "last"),
        frame_transports=("url", "base64"),
        prompts=("prompt", "negative_prompt"),
        extend=EXTEND,
        options=(CFG_SCALE,),
        audio="never",
    )


MODELS = (
    _v1("kling-v1", "Kling 1.0"),
    # Image to video only: Kling's text2video model enum does not list kling-v1-5.
    _v1("kling-v1-5", "Kling 1.5 (needs a first frame)"),
    _v1("kling-v1-6", "Kling 1.6"),
    # The non-extendable example: only V1.0/V1.5/V1.6 videos can be extended (PROVIDERS.md §4).
    # The master models have no std/pro choice and always render 1080p, and take no last frame.
    ModelSpec(
        name="kling-v2-1-master",
        label="Kling 2.1 Master",
        durations=(5, 10),
        default_duration=5,
        aspect_ratios=("16:9", "9:16", "1:1"),
        resolutions=("1080p",),
        default_resolution="1080p",
        frame_roles=("first",),
        frame_transports=("url", "base64"),
        prompts=("prompt", "negative_prompt"),
        extend=None,
        audio="never",
    ),
)

IMAGE_ONLY_MODELS = frozenset({"kling-v1-5"})
CFG_SCALE_MODELS = frozenset(spec.name for spec in MODELS if spec.option("cfg_scale"))

STATUS_MAP = {
    "submitted": State.QUEUED,
    "processing": State.RUNNING,
    "succeed": State.SUCCEEDED,
    "failed": State.FAILED,
}

# Kling's documented error codes (general information page, "错误码"; not in the seed): the
# HTTP status Kling sends with each, the creator's message, and whether retrying can help.
# 1100-1102 come with HTTP 429 but are account problems no wait will fix, so they are permanent.
KLING_ERRORS: dict[int, tuple[int, str, bool]] = {
    1000: (401, "Kling did not accept the API key. An admin should check the key.", True),
    1001: (401, "Kling received no API key. An admin should check the key.", True),
    1002: (401, "Kling did not accept the API key. An admin should check the key.", True),
    1003: (
        401,
        "Kling says the key's token is not valid yet. An admin should check this server's clock.",
        True,
    ),
    1004: (
        401,
        "Kling says the key's token has expired. An admin should check this server's clock.",
        True,
    ),
    1100: (
        429,
        "Kling reports a problem with the account. An admin should check it in Kling's console.",
        True,
    ),
    1101: (429, "The Kling account is in arrears. An admin should top it up.", True),
    1102: (
        429,
        "The Kling resource pack is used up or has expired. An admin should buy more units.",
        True,
    ),
    1103: (
        403,
        "This Kling key may not use this model or feature. An admin should check its access.",
        True,
    ),
    1200: (400, "Kling refused the request as invalid. Check the prompt and settings.", True),
    1201: (400, "Kling refused a setting. Check the prompt, frames and settings.", True),
    1202: (
        404,
        "Kling does not offer this endpoint here. An admin should check the account's base URL.",
        True,
    ),
    1203: (404, "Kling does not know this model, task or video.", True),
    1300: (400, "Kling's platform policy refused this request. Change the prompt or frames.", True),
    1301: (400, "Kling's content policy refused this request. Change the prompt or frames.", True),
    1302: (429, "Kling is rate-limiting requests. It will be tried again shortly.", False),
    1303: (
        429,
        "Kling is already running as many tasks as the account allows. It will be tried again.",
        False,
    ),
    1304: (
        429,
        "Kling refused this server's IP address. An admin should check the account's IP list.",
        True,
    ),
    5000: (500, "Kling had an internal error. Try again in a few minutes.", False),
    5001: (503, "Kling is temporarily unavailable. Try again in a few minutes.", False),
    5002: (504, "Kling timed out. Try again in a few minutes.", False),
}


class Client(BearerClient):
    def authorization(self) -> str:
        """The Authorization header: a fresh HS256 JWT, or the plain key of newer accounts."""
        if not self.credentials.secret:
            return super().authorization()
        now = int(time.time())
        token = jwt.encode(
            {
                "iss": self.credentials.key,
                "exp": now + TOKEN_SECONDS,
                "nbf": now - TOKEN_LEEWAY_SECONDS,
            },
            self.credentials.secret,
            algorithm="HS256",
            headers={"alg": "HS256", "typ": "JWT"},
        )
        return f"Bearer {token}"

    def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        return parse_answer(self._send(method, path, **kwargs))

    def generation_body(self, request: GenerationRequest) -> tuple[str, dict[str, Any]]:
        """The endpoint family and JSON body for a generation."""
        frames: dict[str, FrameInput] = {}
        for frame in request.frames:
            if frame.role not in ("first", "last"):
                raise ProviderError(
                    "Kling takes a first and a last frame, not reference images.",
                    code="unsupported_frame",
                    permanent=True,
                )
            frames[frame.role] = frame
        if frames and "first" not in frames:
            raise ProviderError(
                "Kling needs a first frame to use a last frame. Add a first frame.",
                code="needs_first_frame",
                permanent=True,
            )
        if not frames and request.model in IMAGE_ONLY_MODELS:
            raise ProviderError(
                f"{request.model} only animates an image. Add a first frame or pick another model.",
                code="needs_first_frame",
                permanent=True,
            )
        family = "image2video" if frames else "text2video"
        params = request.params
        body: dict[str, Any] = {"model_name": request.model}
        if request.prompt:
            body["prompt"] = request.prompt
        if params.get("negative_prompt"):
            body["negative_prompt"] = str(params["negative_prompt"])
        if params.get("cfg_scale") not in (None, "") and request.model in CFG_SCALE_MODELS:
            body["cfg_scale"] = float(params["cfg_scale"])
        mode = params.get("mode") or params.get("resolution")
        if mode in MODES:
            body["mode"] = mode
        if params.get("duration") not in (None, ""):
            # Kling's duration is a string enum: "5" or "10".
            body["duration"] = str(int(float(params["duration"])))
        if family == "text2video" and params.get("aspect_ratio"):
            body["aspect_ratio"] = str(params["aspect_ratio"])
        if "first" in frames:
            body["image"] = _image_value(frames["first"])
        if "last" in frames:
            body["image_tail"] = _image_value(frames["last"])
        if request.callback_url:
            body["callback_url"] = request.callback_url
        if params.get("external_task_id"):
            body["external_task_id"] = str(params["external_task_id"])
        return family, body

    def submit(self, request: GenerationRequest) -> str:
        family, body = self.generation_body(request)
        answer = self._request("POST", f"/v1/videos/{family}", json=body)
        return f"{family}:{created_task_id(answer)}"

    def extend(
        self,
        video_id: str,
        *,
        prompt: str = "",
        negative_prompt: str = "",
        cfg_scale: float | None = None,
        callback_url: str = "",
        external_task_id: str = "",
    ) -> str:
        """Extend a finished video by 4-5 s. ``video_id`` is ``TaskState.raw["video_id"]``."""
        body: dict[str, Any] = {"video_id": video_id}
        if prompt:
            body["prompt"] = prompt
        if negative_prompt:
            body["negative_prompt"] = negative_prompt
        if cfg_scale is not None:
            body["cfg_scale"] = float(cfg_scale)
        if callback_url:
            body["callback_url"] = callback_url
        if external_task_id:
            body["external_task_id"] = external_task_id
        answer = self._request("POST", "/v1/videos/video-extend", json=body)
        return f"video-extend:{created_task_id(answer)}"

    def status(self, task_id: str) -> TaskState:
        family, kling_id = split_task_id(task_id)
        answer = self._request("GET", f"/v1/videos/{family}/{kling_id}")
        data = answer.get("data")
        return parse_task(data if isinstance(data, dict) else {}, raw=answer)

    def check_connection(self) -> Decimal | None:
        """Units left in the account's live resource packs; None when it holds none (postpaid).

        Kling's "Account Information Inquiry", GET /account/costs with start_time and end_time
        in milliseconds, is free of charge. Packs bought within the last year are asked for.
        """
        now_ms = int(time.time() * 1000)
        answer = self._request(
            "GET",
            "/account/costs",
            params={"start_time": now_ms - PACK_LOOKBACK_MS, "end_time": now_ms},
        )
        data = answer.get("data") if isinstance(answer.get("data"), dict) else {}
        listed = data.get("resource_pack_subscribe_infos")
        packs = [p for p in listed if isinstance(p, dict)] if isinstance(listed, list) else []
        if not packs:
            return None
        return sum(
            (
                _decimal(pack.get("remaining_quantity")) or Decimal(0)
                for pack in packs
                if pack.get("status") == "online"
            ),
            Decimal(0),
        )

    def list_tasks(self, family: str, page: int = 1, size: int = 30) -> list[tuple[str, TaskState]]:
        """One page of the account's tasks of a family (Kling: pageNum 1..1000, pageSize 1..500)."""
        answer = self._request(
            "GET", f"/v1/videos/{family}", params={"pageNum": page, "pageSize": size}
        )
        return parse_task_list(answer, family=family)

    def list_extend_tasks(self, page: int = 1, size: int = 30) -> list[tuple[str, TaskState]]:
        return self.list_tasks("video-extend", page, size)

    def find_by_external_id(
        self, external_task_id: str, *, families: tuple[str, ...] = FAMILIES, pages: int = 3
    ) -> str | None:
        """The task id of the task the studio submitted as ``external_task_id``, if Kling has it.

        The studio names every submission (external_task_id), so an answer lost on the way
        back can be found again in the task lists instead of being paid for twice.
        """
        for family in families:
            for page in range(1, pages + 1):
                tasks = self.list_tasks(family, page, 500)
                for task_id, state in tasks:
                    info = state.raw.get("task_info") if isinstance(state.raw, dict) else None
                    if isinstance(info, dict) and info.get("external_task_id") == external_task_id:
                        return task_id
                if len(tasks) < 500:
                    break
        return None


def parse_task_list(answer: dict[str, Any], *, family: str) -> list[tuple[str, TaskState]]:
    """A list answer's tasks, each with the task id the studio would store."""
    items = answer.get("data")
    return [
        (f"{family}:{item['task_id']}", parse_task(item, raw=item))
        for item in (items if isinstance(items, list) else [])
        if isinstance(item, dict) and item.get("task_id")
    ]


def split_task_id(task_id: str) -> tuple[str, str]:
    """``"video-extend:123"`` -> ``("video-extend", "123")``."""
    family, _, kling_id = task_id.partition(":")
    if family not in FAMILIES or not kling_id:
        raise ProviderError(
            "This is not a task id the studio's Kling client made, so it cannot be looked up.",
            code="bad_task_id",
            permanent=True,
            provider_message=task_id[:200],
        )
    return family, kling_id


def task_ids_for(kling_task_id: str) -> tuple[str, ...]:
    """The task ids a clip may hold for a Kling task id seen in a callback."""
    return tuple(f"{family}:{kling_task_id}" for family in FAMILIES)


def parse_callback(body: bytes) -> tuple[str, TaskState]:
    """Kling's task id and normalised state from a callback body.

    Kling POSTs on every status change (submitted, processing, succeed, failed), so the same
    task arrives several times. Its callback protocol sends the task object itself; a body
    wrapped like the query answer (``{"code":0,"data":{…}}``) is accepted too.
    Raises ValueError when the body is not a Kling task.
    """
    payload = json.loads(body)
    if not isinstance(payload, dict):
        raise ValueError("A Kling callback is a JSON object.")
    data = payload
    if "task_status" not in payload and isinstance(payload.get("data"), dict):
        data = payload["data"]
    task_id = data.get("task_id")
    if not task_id or "task_status" not in data:
        raise ValueError("A Kling callback names a task_id and a task_status.")
    return str(task_id), parse_task(data, raw=payload)


def parse_task(data: dict[str, Any], *, raw: dict[str, Any]) -> TaskState:
    """One task object (query answer's ``data``, a list item or a callback) as a TaskState.

    ``raw`` comes back in ``TaskState.raw`` with ``video_id`` (what ``Client.extend`` needs)
    and ``video_seconds`` added once Kling has a video.
    """
    status = str(data.get("task_status") or "").lower()
    # Unknown words mean Kling is still working (PROVIDERS.md, "Facts").
    state = STATUS_MAP.get(status, State.RUNNING)
    message = str(data.get("task_status_msg") or "")
    cost = _decimal(data.get("final_unit_deduction"))
    video = _first_video(data.get("task_result"))
    record = dict(raw)
    if video:
        record["video_id"] = str(video.get("id") or "")
        record["video_seconds"] = _float(video.get("duration"))
    if state is State.SUCCEEDED:
        url = str(video.get("url") or "") if video else ""
        if not url:
            return TaskState(
                State.FAILED,
                progress=100,
                error_code="no_video",
                error_message="Kling finished but returned no video. Try again.",
                provider_message=message,
                cost=cost,
                raw=record,
            )
        made_at = from_timestamp(data.get("created_at"), milliseconds=True) or from_timestamp(
            data.get("updated_at"), milliseconds=True
        )
        return TaskState(
            State.SUCCEEDED,
            progress=100,
            video_url=url,
            expires_at=_expires_at(made_at),
            cost=cost,
            provider_message=message,
            raw=record,
        )
    if state is State.FAILED:
        return TaskState(
            State.FAILED,
            error_code="failed",
            error_message=(
                "Kling could not make this video. Change the prompt or frames and try again."
            ),
            provider_message=message,
            cost=cost,
            raw=record,
        )
    extending = isinstance(data.get("task_info"), dict) and bool(
        data["task_info"].get("parent_video")
    )
    if state is State.QUEUED:
        phase = "Waiting in Kling's queue"
    else:
        phase = "Extending" if extending else "Generating"
    # Kling reports no progress or estimate; its jobs have run for over an hour.
    return TaskState(state, phase=phase, provider_message=message, raw=record)


def parse_answer(response: httpx.Response) -> dict[str, Any]:
    """The body of a ``code == 0`` answer; anything else raises ProviderError."""
    try:
        body = response.json()
    except ValueError:
        body = None
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    if not isinstance(body, dict) or "code" not in body:
        provider_message = f"Unreadable answer (HTTP {response.status_code}): {response.text[:200]}"
        if response.status_code >= 400:
            raise error_for_status(
                response.status_code, provider_message=provider_message, retry_after=retry_after
            )
        # A 200 we cannot read may still have created (and charged for) a task: the outcome
        # is unknown, so a submission must not be sent again.
        raise ProviderError(
            "Kling's answer could not be read, so the outcome is unknown.",
            code="no_answer",
            http_status=response.status_code,
            provider_message=provider_message,
        )
    code = _int(body.get("code"))
    if code == 0 and response.status_code < 400:
        return body
    raise _error(response.status_code, code, str(body.get("message") or ""), retry_after)


def _error(
    http_status: int, code: int | None, message: str, retry_after: float | None
) -> ProviderError:
    known = KLING_ERRORS.get(code) if code is not None else None
    if known is None:
        # Not a documented code: the HTTP status decides (a non-zero code on HTTP 200 is a
        # refusal, so nothing was created).
        return error_for_status(
            http_status if http_status >= 400 else 400,
            provider_message=message,
            retry_after=retry_after,
            code=str(code) if code else "",
        )
    documented_status, plain, permanent = known
    return ProviderError(
        plain,
        code=str(code),
        permanent=permanent,
        retry_after=retry_after,
        http_status=http_status if http_status >= 400 else documented_status,
        provider_message=message,
    )


def created_task_id(answer: dict[str, Any]) -> str:
    """Kling's task id from a create answer."""
    data = answer.get("data")
    if isinstance(data, dict) and data.get("task_id"):
        return str(data["task_id"])
    raise ProviderError(
        "Kling accepted the request but returned no task id.",
        code="no_task_id",
        permanent=True,
        provider_message=str(answer)[:500],
    )


def _image_value(frame: FrameInput) -> str:
    # Kling takes a URL or raw Base64; a "data:" prefix is refused (image2video page).
    if frame.content:
        return base64.b64encode(frame.content).decode("ascii")
    if frame.url.startswith("data:"):
        return frame.url.partition(",")[2]
    return frame.url


def _first_video(result: Any) -> dict[str, Any] | None:
    videos = result.get("videos") if isinstance(result, dict) else None
    for video in videos if isinstance(videos, list) else []:
        if isinstance(video, dict) and (video.get("url") or video.get("id")):
            return video
    return None


def _expires_at(made_at: datetime | None) -> datetime | None:
    return made_at + RETENTION if made_at else None


def _decimal(value: Any) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
