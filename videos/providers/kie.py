"""kie.ai's Veo 3.1 API (seeds/kie-veo31-extend.md, PROVIDERS.md §3).

JSON bodies, bearer auth. Every answer is ``{"code":200,"msg":"success","data":{…}}`` and a
non-200 ``code`` in the body is an error even when HTTP says 200. Record-info is the
authoritative status; callbacks are signed hints that arrive once or more.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from videos.providers.base import (
    BearerClient,
    ExtendSpec,
    GenerationRequest,
    ModelSpec,
    OptionSpec,
    ProviderError,
    State,
    TaskState,
    parse_retry_after,
)

# The seed gives no length for an extension. kie's current extend page: "The result
# (resultUrls) is the newly generated continuation clip (720p) that starts from the last frame
# of the source video", the source and continuation stitched together coming only as the
# callback's info.fullResultUrls. The studio keeps resultUrls: the new part alone. (Should a
# mirror hand back the stitched whole instead, Clip.timeline_range sees it by its length.)
EXTEND = ExtendSpec(
    adds_seconds=7,
    max_total_seconds=148,
    returns="new_part",
    note=(
        "kie returns the new part, carrying on from this clip's last frame. A video whose "
        "1080p version has been made cannot be extended (seed: 生成1080P之后的视频不能扩展)."
    ),
)

# Generate's optional fields (PROVIDERS.md §3); the extend page (seed) documents seeds and
# watermark, not the two switches.
OPTIONS = (
    OptionSpec(
        name="seeds",
        label="Seed",
        kind="int",
        minimum=10000,
        maximum=99999,
        on_extend=True,
        help="10000-99999. The same seed gives a similar video; empty: kie picks one.",
    ),
    OptionSpec(
        name="watermark",
        label="Watermark text",
        kind="text",
        max_length=100,
        on_extend=True,
        help="kie draws this text on the video. Empty: no watermark.",
    ),
    OptionSpec(
        name="enable_fallback",
        label="Fall back when Veo refuses",
        kind="bool",
        default=False,
        help="When Google's Veo refuses the request, kie makes the video with a backup model.",
    ),
    OptionSpec(
        name="enable_translation",
        label="Translate to English first",
        kind="bool",
        default=True,
        help="kie translates a prompt in another language before sending it (kie's default).",
    ),
)

# kie's generate endpoint takes no duration and no resolution: every generation is 8 s at
# 720p, and 1080p is a follow-up call (Client.get_1080p_video) once the task has succeeded:
# "Get 1080p" on the clip page, as a clip of its own (ClipKind.UPSCALE).
# Frames: one image is the first frame and two are first and last
# (FIRST_AND_LAST_FRAMES_2_VIDEO); REFERENCE_2_VIDEO takes 1-3 material images and is
# documented for veo3_fast only. "Auto" aspect ratio is in kie's generate page but not in the
# seed or digest, so it is not offered (the twin accepts it). kie's Veo videos come with
# sound ("音频轨道": background audio by default).
MODELS = (
    ModelSpec(
        name="veo3",
        label="Veo 3.1 Quality",
        durations=(8,),
        default_duration=8,
        aspect_ratios=("16:9", "9:16"),
        resolutions=("720p",),
        default_resolution="720p",
        frame_roles=("first", "last"),
        frame_transports=("url",),
        extend=EXTEND,
        options=OPTIONS,
        audio="always",
    ),
    ModelSpec(
        name="veo3_fast",
        label="Veo 3.1 Fast",
        durations=(8,),
        default_duration=8,
        aspect_ratios=("16:9", "9:16"),
        resolutions=("720p",),
        default_resolution="720p",
        frame_roles=("first", "last", "reference"),
        max_references=3,
        frame_transports=("url",),
        extend=EXTEND,
        options=OPTIONS,
        audio="always",
    ),
)

# The 1080p version of a finished task is asked for with the source's own task id; the
# studio keeps it as this prefix + that id, so the upscale clip has a task id of its own
# and ``status`` knows which endpoint to ask.
HD_PREFIX = "1080p:"
# get-1080p-video answers 16:9 tasks (kie's quickstart: "1080P 高清视频(16:9 宽高比)").
HD_ASPECT_RATIOS = ("16:9",)

# Download links last about 20 minutes and kie gives no expiry (PROVIDERS.md, "Facts").
LINK_LIFETIME = timedelta(minutes=20)

# Body codes (seed, "响应参数 / code"): plain words with the next step, and whether the
# pipeline may retry. 501 is a task that failed on kie's side: the creator decides.
BODY_CODES: dict[int, tuple[str, bool]] = {
    400: (
        "kie refused the request: the prompt may break its content policy, or an input is "
        "wrong. Change the prompt or frames and try again.",
        True,
    ),
    401: ("kie did not accept the API key. An admin should check the key.", True),
    402: ("The kie account has run out of credits. An admin should top it up.", True),
    404: ("kie does not know this task or video. Check it was made with this account.", True),
    422: (
        "kie rejected a parameter (seed 10000-99999, frames, aspect ratio). Check the "
        "settings and try again.",
        True,
    ),
    429: ("kie is rate-limiting requests. It will be tried again shortly.", False),
    455: ("kie is down for maintenance. It will be tried again in a few minutes.", False),
    500: ("kie had an internal error. It will be tried again in a few minutes.", False),
    501: ("kie could not make this video. Change the prompt and try again.", True),
    505: ("kie has switched this feature off for now. Try another model or provider.", True),
}
POLICY_MESSAGE = (
    "kie refused the prompt or an image under its content policy. Reword the prompt or "
    "change the frames and try again."
)
IMAGE_FETCH_MESSAGE = (
    "kie could not fetch a frame image. Make sure its URL is public and try again."
)
HD_NOT_EXTENDABLE_MESSAGE = (
    "kie cannot extend a video once its 1080p version has been made. Extend a 720p clip instead."
)
# ProviderError.safe_to_resend reads HTTP statuses; 455 is kie's word for 503.
HTTP_EQUIVALENT = {455: 503}

SUCCESS_FLAGS = {0: State.RUNNING, 1: State.SUCCEEDED, 2: State.FAILED, 3: State.FAILED}


class BadSignature(ValueError):
    """A callback whose signature, timestamp or body cannot be trusted."""


class Client(BearerClient):
    no_key_message = "The kie account has no API key. An admin should add one."

    def _request(
        self, method: str, path: str, *, extend: bool = False, **kwargs: Any
    ) -> dict[str, Any]:
        return parse_answer(self._send(method, path, **kwargs), extend=extend)

    def generation_body(self, request: GenerationRequest) -> dict[str, Any]:
        generation_type, image_urls = _frames(request)
        body: dict[str, Any] = {
            "prompt": request.prompt,
            "model": request.model,
            "generationType": generation_type,
        }
        if image_urls:
            body["imageUrls"] = image_urls
        params = request.params
        if params.get("aspect_ratio"):
            body["aspectRatio"] = params["aspect_ratio"]
        seeds = params.get("seeds", params.get("seed"))
        if seeds not in (None, ""):
            body["seeds"] = int(seeds)
        if params.get("watermark"):
            body["watermark"] = str(params["watermark"])
        for param, field in (
            ("enable_translation", "enableTranslation"),
            ("enable_fallback", "enableFallback"),
        ):
            if isinstance(params.get(param), bool):
                body[field] = params[param]
        if request.callback_url:
            body["callBackUrl"] = request.callback_url
        return body

    def submit(self, request: GenerationRequest) -> str:
        body = self._request("POST", "/api/v1/veo/generate", json=self.generation_body(request))
        return _task_id_from(body)

    def extend(
        self,
        source_task_id: str,
        *,
        prompt: str,
        seeds: int | None = None,
        watermark: str | None = None,
        callback_url: str = "",
    ) -> str:
        payload: dict[str, Any] = {"taskId": source_task_id, "prompt": prompt}
        if seeds is not None:
            payload["seeds"] = int(seeds)
        if watermark:
            payload["watermark"] = watermark
        if callback_url:
            payload["callBackUrl"] = callback_url
        body = self._request("POST", "/api/v1/veo/extend", json=payload, extend=True)
        return _task_id_from(body)

    def status(self, task_id: str) -> TaskState:
        if task_id.startswith(HD_PREFIX):
            return self.hd_status(task_id.removeprefix(HD_PREFIX))
        body = self._request("GET", "/api/v1/veo/record-info", params={"taskId": task_id})
        return parse_status(body)

    def request_1080p(self, source_task_id: str) -> str:
        """Ask kie to make the 1080p version of a finished task; its studio task id.

        The first call starts the work at kie ("1080P is processing" until it is ready), so
        the answer is only checked for refusals; ``status`` follows it from then on.
        """
        self.get_1080p_video(source_task_id)
        return f"{HD_PREFIX}{source_task_id}"

    def hd_status(self, source_task_id: str, *, now: datetime | None = None) -> TaskState:
        try:
            url = self.get_1080p_video(source_task_id)
        except ProviderError as exc:
            if not exc.permanent:
                raise
            # A refusal of the 1080p version is final for it; the 720p clip is untouched.
            return TaskState(
                State.FAILED,
                error_code=exc.code,
                error_message=f"kie did not make the 1080p version. {exc.message}",
                provider_message=exc.provider_message,
            )
        if url is None:
            return TaskState(State.RUNNING, phase="kie is making the 1080p version")
        return TaskState(
            State.SUCCEEDED,
            progress=100,
            video_url=url,
            expires_at=(now or datetime.now(UTC)) + LINK_LIFETIME,
        )

    def check_connection(self) -> Decimal | None:
        """The account's remaining credits; makes nothing.

        docs.kie.ai, Common API, "Get Remaining Credits": GET /api/v1/chat/credit answers
        ``{"code": 200, "msg": "success", "data": 100}``.
        """
        body = self._request("GET", "/api/v1/chat/credit")
        return _decimal(body.get("data"))

    def get_1080p_video(self, task_id: str, *, index: int = 0) -> str | None:
        """The 1080p link of a finished task, or None while kie is still making it."""
        try:
            body = self._request(
                "GET", "/api/v1/veo/get-1080p-video", params={"taskId": task_id, "index": index}
            )
        except ProviderError as exc:
            # Until it is ready kie answers code 400 "1080P is processing. It should be ready
            # in 1-2 minutes." (generate page, code table).
            if exc.code == "400" and "processing" in exc.provider_message.lower():
                return None
            raise
        data = body.get("data") or {}
        url = data.get("resultUrl") if isinstance(data, dict) else None
        return str(url) if url else None


def parse_answer(response: httpx.Response, *, extend: bool = False) -> dict[str, Any]:
    """The body of a kie answer, or a ProviderError for an HTTP or body-code error."""
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        if response.status_code >= 400:
            raise error_for_code(
                response.status_code, response.text[:200], retry_after=retry_after, extend=extend
            )
        # A 200 whose body cannot be read may still have created a (paid) task: say so,
        # and leave the code out of the safe-to-resend set.
        raise ProviderError(
            "kie sent an unreadable answer, so the request may or may not have been taken. "
            "Check kie's dashboard before trying again.",
            code="malformed",
            provider_message=f"HTTP {response.status_code}: {response.text[:200]}",
        )
    code = body.get("code")
    if isinstance(code, str) and code.isdigit():
        code = int(code)
    if not isinstance(code, int) or isinstance(code, bool):
        code = response.status_code if response.status_code >= 400 else 200
    if code != 200 or response.status_code >= 400:
        if code == 200:
            code = response.status_code
        raise error_for_code(
            code, str(body.get("msg") or ""), retry_after=retry_after, extend=extend
        )
    return body


def error_for_code(
    code: int, msg: str = "", *, retry_after: float | None = None, extend: bool = False
) -> ProviderError:
    lowered = msg.lower()
    message, permanent = BODY_CODES.get(
        code,
        (
            ("kie failed. It will be tried again in a few minutes.", False)
            if code >= 500
            else ("kie refused the request.", True)
        ),
    )
    if code in {400, 422} and ("content polic" in lowered or "flagged" in lowered):
        message = POLICY_MESSAGE
    elif code == 400 and "fetch the image" in lowered:
        message = IMAGE_FETCH_MESSAGE
    elif extend and code in {400, 422} and "1080" in lowered:
        message = HD_NOT_EXTENDABLE_MESSAGE
    elif extend and code == 501:
        message = "kie could not extend this video. Change the prompt and try again."
    return ProviderError(
        message,
        code=str(code),
        permanent=permanent,
        retry_after=retry_after,
        http_status=HTTP_EQUIVALENT.get(code, code),
        provider_message=msg,
    )


def _frames(request: GenerationRequest) -> tuple[str, list[str]]:
    for frame in request.frames:
        if not frame.url:
            raise ProviderError(
                "kie takes frame images as public URLs only. Upload the image first.",
                code="frame_url_required",
                permanent=True,
            )
    by_role = {
        role: [f.url for f in request.frames if f.role == role] for role in ("first", "last")
    }
    references = [f.url for f in request.frames if f.role == "reference"]
    if references:
        if by_role["first"] or by_role["last"]:
            raise ProviderError(
                "kie takes either first/last frames or reference images, not both.",
                code="frame_mix",
                permanent=True,
            )
        return "REFERENCE_2_VIDEO", references
    if by_role["last"] and not by_role["first"]:
        raise ProviderError(
            "kie needs a first frame when a last frame is given.",
            code="last_without_first",
            permanent=True,
        )
    if by_role["first"]:
        return "FIRST_AND_LAST_FRAMES_2_VIDEO", by_role["first"][:1] + by_role["last"][:1]
    return "TEXT_2_VIDEO", []


def _task_id_from(body: dict[str, Any]) -> str:
    data = body.get("data")
    if isinstance(data, dict) and data.get("taskId"):
        return str(data["taskId"])
    raise ProviderError(
        "kie accepted the request but returned no task id.",
        code="no_task_id",
        permanent=True,
        provider_message=str(body)[:500],
    )


def parse_status(body: dict[str, Any], *, now: datetime | None = None) -> TaskState:
    """A record-info answer as a TaskState."""
    data = body.get("data") if isinstance(body.get("data"), dict) else {}
    flag = data.get("successFlag")
    # Unknown or missing flags mean kie is still working (PROVIDERS.md, "Facts").
    state = SUCCESS_FLAGS.get(flag if isinstance(flag, int) else -1, State.RUNNING)
    cost = _decimal(data.get("creditsConsumed"))
    if state is State.SUCCEEDED:
        return _finished(data.get("response"), body=body, cost=cost, now=now)
    if state is State.FAILED:
        error_code = data.get("errorCode")
        provider_message = str(data.get("errorMessage") or "")
        return _failed(
            str(error_code) if error_code not in (None, "") else f"successFlag_{flag}",
            provider_message,
            body=body,
            cost=cost,
        )
    return TaskState(State.RUNNING, phase="Generating at kie", cost=cost, raw=body)


def parse_callback(body: dict[str, Any], *, now: datetime | None = None) -> tuple[str, TaskState]:
    """A callback body as (taskId, TaskState). Confirm with Client.status: it is authoritative."""
    data = body.get("data") if isinstance(body.get("data"), dict) else {}
    task_id = str(data.get("taskId") or data.get("task_id") or "")
    code = body.get("code")
    cost = _decimal(data.get("creditsConsumed"))
    if code == 200:
        return task_id, _finished(data.get("info"), body=body, cost=cost, now=now)
    return task_id, _failed(str(code), str(body.get("msg") or ""), body=body, cost=cost)


def _finished(
    result: Any, *, body: dict[str, Any], cost: Decimal | None, now: datetime | None
) -> TaskState:
    result = result if isinstance(result, dict) else {}
    urls = [u for u in (result.get("resultUrls") or []) + (result.get("originUrls") or []) if u]
    if not urls:
        return TaskState(
            State.FAILED,
            progress=100,
            error_code="no_video",
            error_message="kie finished but returned no video. Try again.",
            cost=cost,
            raw=body,
        )
    return TaskState(
        State.SUCCEEDED,
        progress=100,
        video_url=str(urls[0]),
        expires_at=(now or datetime.now(UTC)) + LINK_LIFETIME,
        cost=cost,
        raw=body,
    )


def _failed(
    error_code: str, provider_message: str, *, body: dict[str, Any], cost: Decimal | None
) -> TaskState:
    lowered = provider_message.lower()
    if "content polic" in lowered or "flagged" in lowered:
        message = POLICY_MESSAGE
    elif "fetch the image" in lowered:
        message = IMAGE_FETCH_MESSAGE
    else:
        message = "kie could not make this video. Change the prompt or frames and try again."
    return TaskState(
        State.FAILED,
        error_code=error_code,
        error_message=message,
        provider_message=provider_message,
        cost=cost,
        raw=body,
    )


def signature(webhook_key: str, task_id: str, timestamp: str) -> str:
    """base64(HMAC-SHA256(key, taskId + "." + timestamp)) (kie's webhook verification guide)."""
    digest = hmac.new(
        webhook_key.encode(), f"{task_id}.{timestamp}".encode(), hashlib.sha256
    ).digest()
    return base64.b64encode(digest).decode()


def verify_callback(
    headers: Mapping[str, str],
    body: bytes,
    webhook_key: str,
    *,
    max_age_seconds: int = 300,
    now: float | None = None,
) -> tuple[str, TaskState]:
    """Check a callback's signature and age; return (taskId, normalised state).

    Raises BadSignature on anything untrustworthy. The same delivery sent twice gives the
    same answer, so duplicates are harmless.
    """
    if not webhook_key:
        raise BadSignature("No webhook key is configured for this kie account.")
    lowered = {name.lower(): value for name, value in headers.items()}
    timestamp = (lowered.get("x-webhook-timestamp") or "").strip()
    received = (lowered.get("x-webhook-signature") or "").strip()
    if not timestamp or not received:
        raise BadSignature("The callback has no signature headers.")
    if not timestamp.isdigit():
        raise BadSignature("The callback timestamp is not a number of seconds.")
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > max_age_seconds:
        raise BadSignature("The callback timestamp is too old or in the future.")
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadSignature("The callback body is not JSON.") from exc
    if not isinstance(payload, dict):
        raise BadSignature("The callback body is not a JSON object.")
    task_id, state = parse_callback(payload, now=datetime.fromtimestamp(current, tz=UTC))
    if not task_id:
        raise BadSignature("The callback names no task.")
    expected = signature(webhook_key, task_id, timestamp)
    if not hmac.compare_digest(expected.encode(), received.encode()):
        raise BadSignature("The callback signature does not match.")
    return task_id, state


def _decimal(value: Any) -> Decimal | None:
    if value in (None, "") or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None
