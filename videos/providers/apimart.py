"""apimart's Veo 3.1 API (seeds/apimart-veo31-generations.md, apimart-veo31-remix-extend.md).

JSON bodies, bearer auth. Submissions answer ``{"code":200,"data":[{"task_id":…}]}``;
errors answer ``{"error":{"code","message","type"}}`` with the same HTTP status.
"""

from __future__ import annotations

import re
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
    error_for_status,
    from_timestamp,
    parse_retry_after,
)

# Remix turns an 8 s generation into 15 s (PROVIDERS.md: whether -official generations can be
# remixed is undocumented, so the provider's refusal is shown as it comes).
REMIX = ExtendSpec(
    adds_seconds=7,
    max_total_seconds=15,
    returns="whole",
    note="Remix: 8 s to 15 s, same model family; raw returns only the new 7 s.",
)

# The generations page's optional fields (seed: "请求参数"). sample_count (several takes) is
# sent by the takes feature, not offered as an option here. The remix page takes none of them.
OPTIONS = (
    OptionSpec(
        name="seed",
        label="Seed",
        kind="int",
        minimum=0,
        maximum=4294967295,
        help="0-4294967295. The same seed and settings give a similar video; empty: a new one.",
    ),
    OptionSpec(
        name="generate_audio",
        label="Generate sound",
        kind="bool",
        default=False,
        help="A sound track made with the picture. apimart makes none unless asked.",
    ),
    OptionSpec(
        name="person_generation",
        label="People",
        kind="choice",
        choices=(
            ("allow_adult", "Adults only (apimart's default)"),
            ("disallow", "No people or faces"),
        ),
        default="allow_adult",
    ),
    OptionSpec(
        name="resize_mode",
        label="Fit the frame",
        kind="choice",
        choices=(("pad", "Pad to the shape (apimart's default)"), ("crop", "Crop to the shape")),
        default="pad",
        needs_frame=True,
        help="How a first or last frame of another shape is fitted. Used only with a frame.",
    ),
    OptionSpec(
        name="enhance_prompt",
        label="Let apimart enhance the wording",
        kind="bool",
        only_true=True,
        default=False,
        help=(
            "Ticked, apimart is asked to rewrite the prompt in more detail. apimart refuses "
            "“false”, so unticked sends nothing and apimart's own default applies."
        ),
    ),
)


def _veo(name: str, label: str) -> ModelSpec:
    return ModelSpec(
        name=name,
        label=label,
        durations=(4, 6, 8),
        default_duration=8,
        aspect_ratios=("16:9", "9:16"),
        resolutions=("720p", "1080p", "4K"),
        default_resolution="720p",
        frame_roles=("first", "last"),
        frame_transports=("url",),
        prompts=("prompt", "negative_prompt"),
        extend=REMIX,
        options=OPTIONS,
        audio="option",
    )


MODELS = (
    _veo("veo3.1-fast-official", "Veo 3.1 Fast"),
    _veo("veo3.1-quality-official", "Veo 3.1 Quality"),
)

# The generations page names its models ``…-official``; the remix page only knows
# ``veo3.1-fast`` / ``veo3.1-quality`` and requires "the same model as the source video".
REMIX_MODEL_FOR = {
    "veo3.1-fast-official": "veo3.1-fast",
    "veo3.1-quality-official": "veo3.1-quality",
}
REMIX_RESOLUTIONS = ("720p", "1080p", "4k")

# Fields the generations endpoint documents besides model, prompt and the frames. Anything
# else in a request's params is studio-only and never sent.
GENERATION_FIELDS = (
    "negative_prompt",
    "duration",
    "aspect_ratio",
    "resolution",
    "seed",
    "sample_count",
    "generate_audio",
    "person_generation",
    "resize_mode",
    "enhance_prompt",
)
INTEGER_FIELDS = {"duration", "seed", "sample_count"}

STATUS_MAP = {
    "pending": State.QUEUED,
    "submitted": State.QUEUED,
    "processing": State.RUNNING,
    "completed": State.SUCCEEDED,
    "failed": State.FAILED,
    "cancelled": State.CANCELLED,
}

# apimart passes Google's refusal through in English or Chinese (安全 safety, 违规 violation,
# 敏感 sensitive); any of these words means the prompt or frames were refused, not a glitch.
POLICY_RE = re.compile(
    r"safety|policy|violat|prohibit|sensitive|moderat|responsible ai|unsafe|安全|违规|敏感",
    re.IGNORECASE,
)
POLICY_MESSAGE = (
    "The provider refused this prompt or its frames under its content policy. "
    "Change the prompt or frames and try again."
)
MALFORMED_MESSAGE = (
    "The provider sent an answer the studio could not read. A submission may still have "
    "been accepted: check the provider's dashboard before sending it again."
)


def remix_model_for(generation_model: str) -> str:
    """The remix page's name for a generation model's family (``…-official`` dropped).

    Names the remix page already uses, and names it does not know, come back unchanged so
    apimart itself says what it refuses.
    """
    return REMIX_MODEL_FOR.get(generation_model, generation_model)


def is_policy_refusal(message: str) -> bool:
    return bool(POLICY_RE.search(message))


class Client(BearerClient):
    no_key_message = "This provider account has no API key. An admin should add one."

    def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        return parse_response(self._send(method, path, **kwargs))

    def generation_body(self, request: GenerationRequest) -> dict[str, Any]:
        body: dict[str, Any] = {"model": request.model, "prompt": request.prompt}
        for frame in request.frames:
            if not frame.url:
                raise ProviderError(
                    "apimart takes frames as public links only. Upload the image somewhere "
                    "public and try again.",
                    code="frame_needs_url",
                    permanent=True,
                )
            if frame.role == "first":
                body["first_frame_image"] = frame.url
            elif frame.role == "last":
                body["last_frame_image"] = frame.url
        image_to_video = "first_frame_image" in body or "last_frame_image" in body
        for name in GENERATION_FIELDS:
            value = request.params.get(name)
            if value is None or value == "":
                continue
            if name in INTEGER_FIELDS:
                # The docs warn: a quoted number is an error. Always send a bare integer.
                value = int(value)
            elif name == "generate_audio":
                value = _as_bool(value)
            elif name == "enhance_prompt":
                # Only ``true`` is accepted; ``false`` is an error, so leave it out.
                if not _as_bool(value):
                    continue
                value = True
            elif name == "resize_mode" and not image_to_video:
                # "Not applicable" to text-to-video in the seed's table.
                continue
            body[name] = value
        return body

    def submit(self, request: GenerationRequest) -> str:
        body = self._request("POST", "/v1/videos/generations", json=self.generation_body(request))
        return task_id_from(body)

    def remix(
        self,
        source_task_id: str,
        *,
        model: str,
        prompt: str,
        raw: bool = False,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
    ) -> str:
        """Extend a finished 8 s task to 15 s (or, with ``raw``, return only the new 7 s).

        ``model`` may be the source's generation model: it is mapped with
        :func:`remix_model_for`.
        """
        payload: dict[str, Any] = {
            "model": remix_model_for(model),
            "prompt": prompt,
            "raw": bool(raw),
        }
        if aspect_ratio:
            payload["aspect_ratio"] = aspect_ratio
        if resolution:
            # The remix page writes "4k" where the generations page writes "4K".
            lowered = resolution.lower()
            payload["resolution"] = lowered if lowered in REMIX_RESOLUTIONS else resolution
        body = self._request("POST", f"/v1/videos/{source_task_id}/remix", json=payload)
        return task_id_from(body)

    def status(self, task_id: str) -> TaskState:
        body = self._request("GET", f"/v1/tasks/{task_id}", params={"language": "en"})
        return parse_status(body)

    def check_connection(self) -> Decimal | None:
        """The key's remaining balance, or None when it is unlimited; makes nothing.

        docs.apimart.ai "Token balance": GET /v1/balance answers ``{"success", "remain_balance",
        "used_balance", "unlimited_quota"}``; an unknown token is ``success: false`` on a 200.
        """
        body = self._request("GET", "/v1/balance")
        if body.get("success") is False:
            raise error_for_status(401, provider_message=str(body.get("message") or ""))
        if body.get("unlimited_quota") is True:
            return None
        try:
            return Decimal(str(body.get("remain_balance")))
        except InvalidOperation:
            return None


def parse_response(response: httpx.Response) -> dict[str, Any]:
    """The JSON body of a successful answer, or the ProviderError the answer stands for."""
    status = response.status_code
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    try:
        body = response.json()
    except ValueError:
        body = None
    if status < 400 and not isinstance(body, dict):
        # A 200 that is not JSON (a gateway's HTML page, a cut-off body) says nothing about
        # whether the request was taken: transient, but never safe to resend.
        raise ProviderError(
            MALFORMED_MESSAGE,
            code="malformed",
            http_status=status,
            retry_after=retry_after,
            provider_message=f"Unreadable answer (HTTP {status}): {response.text[:200]}",
        )
    error = body.get("error") if isinstance(body, dict) else None
    body_code = body.get("code") if isinstance(body, dict) else None
    body_failed = isinstance(body_code, int) and body_code >= 400
    if status < 400 and not error and not body_failed:
        return body  # type: ignore[return-value]
    # From here on the answer is an error, whatever the HTTP status said.
    if status < 400:
        if isinstance(error, dict) and isinstance(error.get("code"), int):
            status = error["code"]
        elif body_failed:
            status = body_code  # type: ignore[assignment]
    if status < 400:
        status = 502
    if isinstance(body, dict):
        provider_message = _error_text(error) or str(body.get("message") or body.get("msg") or "")
    else:
        provider_message = f"Unreadable answer (HTTP {status}): {response.text[:200]}"
    if 400 <= status < 500 and is_policy_refusal(provider_message):
        raise ProviderError(
            POLICY_MESSAGE,
            code="content_policy",
            permanent=True,
            http_status=status,
            provider_message=provider_message,
        )
    raise error_for_status(status, provider_message=provider_message, retry_after=retry_after)


def task_id_from(body: dict[str, Any]) -> str:
    data = body.get("data")
    if isinstance(data, list) and data and isinstance(data[0], dict) and data[0].get("task_id"):
        return str(data[0]["task_id"])
    if isinstance(data, dict) and data.get("task_id"):
        return str(data["task_id"])
    raise ProviderError(
        "The provider accepted the request but returned no task id.",
        code="no_task_id",
        permanent=True,
        provider_message=str(body)[:500],
    )


def parse_status(body: dict[str, Any]) -> TaskState:
    data = body.get("data") or {}
    if isinstance(data, list):
        data = data[0] if data and isinstance(data[0], dict) else {}
    raw_status = str(data.get("status") or "").lower()
    # Unknown words mean the provider is still working (PROVIDERS.md, "Facts").
    state = STATUS_MAP.get(raw_status, State.RUNNING)
    progress = max(0, min(100, _int(data.get("progress"))))
    estimate = _int(data.get("estimated_time")) or None
    if state is State.SUCCEEDED:
        videos = _videos(data.get("result") or {})
        url, expires_at = videos[0] if videos else ("", None)
        if not url:
            return TaskState(
                State.FAILED,
                progress=100,
                error_code="no_video",
                error_message="The provider finished but returned no video. Try again.",
                raw=body,
            )
        return TaskState(
            State.SUCCEEDED,
            progress=100,
            video_url=url,
            more_video_urls=tuple(more for more, _ in videos[1:]),
            expires_at=expires_at or from_timestamp(data.get("expires_at")),
            # Once finished, the time it really took is the best estimate for the next one.
            estimate_seconds=_int(data.get("actual_time")) or estimate,
            raw=body,
        )
    if state is State.CANCELLED:
        return TaskState(
            state,
            progress=progress,
            error_code=raw_status,
            error_message="The task was cancelled at the provider.",
            provider_message=_error_text(data.get("error")),
            raw=body,
        )
    if state is State.FAILED:
        provider_message = _error_text(data.get("error"))
        if is_policy_refusal(provider_message):
            return TaskState(
                state,
                progress=progress,
                error_code="content_policy",
                error_message=POLICY_MESSAGE,
                provider_message=provider_message,
                raw=body,
            )
        return TaskState(
            state,
            progress=progress,
            error_code=raw_status,
            error_message=(
                "The provider could not make this video. Try again; if it keeps failing, "
                "change the prompt or frames."
            ),
            provider_message=provider_message,
            raw=body,
        )
    phase = "Waiting in the provider's queue" if state is State.QUEUED else "Generating"
    return TaskState(state, progress=progress, phase=phase, estimate_seconds=estimate, raw=body)


def _error_text(error: Any) -> str:
    if isinstance(error, dict):
        return str(error.get("message") or error.get("code") or "")
    return str(error or "")


def _videos(result: dict[str, Any]) -> list[tuple[str, Any]]:
    """Every video of a finished task, in order, each with its expiry.

    ``result.videos[].url`` is documented as an array of strings (a plain string has been
    seen too). A task asked for several samples (``sample_count``, 1-4) may list them as
    several entries or as several links in one entry: both count, each link once.
    """
    found: list[tuple[str, Any]] = []
    for video in result.get("videos") or []:
        if not isinstance(video, dict):
            continue
        urls = video.get("url")
        if isinstance(urls, str):
            urls = [urls]
        if not isinstance(urls, list):
            continue
        expires_at = from_timestamp(video.get("expires_at"))
        for url in urls:
            if isinstance(url, str) and url and all(url != seen for seen, _ in found):
                found.append((url, expires_at))
    return found


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return bool(value)


def _int(value: Any) -> int:
    try:
        return int(float(str(value).rstrip("%")))
    except (TypeError, ValueError):
        return 0
