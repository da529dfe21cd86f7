"""apimart's Veo 3.1 API (seeds/apimart-veo31-generations.md, apimart-veo31-remix-extend.md).

JSON bodies, bearer auth. Submissions answer ``{"code":200,"data":[{"task_id":…}]}``;
errors answer ``{"error":{"code","message","type"}}`` with the same HTTP status.
"""

from __future__ import annotations

from typing import Any

import httpx

from videos.providers.base import (
    Credentials,
    ExtendSpec,
    GenerationRequest,
    ModelSpec,
    ProviderError,
    State,
    TaskState,
    error_for_status,
    from_timestamp,
    http_client,
    parse_retry_after,
    unreachable,
)

# Remix turns an 8 s generation into 15 s (PROVIDERS.md: whether -official generations can be
# remixed is undocumented, so the provider's refusal is shown as it comes).
REMIX = ExtendSpec(
    adds_seconds=7,
    max_total_seconds=15,
    returns="whole",
    note="Remix: 8 s to 15 s, same model family; raw returns only the new 7 s.",
)

MODELS = (
    ModelSpec(
        name="veo3.1-fast-official",
        label="Veo 3.1 Fast",
        durations=(4, 6, 8),
        default_duration=8,
        aspect_ratios=("16:9", "9:16"),
        resolutions=("720p", "1080p", "4K"),
        default_resolution="720p",
        frame_roles=("first", "last"),
        frame_transports=("url",),
        extend=REMIX,
    ),
    ModelSpec(
        name="veo3.1-quality-official",
        label="Veo 3.1 Quality",
        durations=(4, 6, 8),
        default_duration=8,
        aspect_ratios=("16:9", "9:16"),
        resolutions=("720p", "1080p", "4K"),
        default_resolution="720p",
        frame_roles=("first", "last"),
        frame_transports=("url",),
        extend=REMIX,
    ),
)

# Fields the generations endpoint documents besides model and prompt. Anything else in a
# request's params is studio-only and never sent.
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

STATUS_MAP = {
    "pending": State.QUEUED,
    "submitted": State.QUEUED,
    "processing": State.RUNNING,
    "completed": State.SUCCEEDED,
    "failed": State.FAILED,
    "cancelled": State.CANCELLED,
}


class Client:
    def __init__(self, base_url: str, credentials: Credentials) -> None:
        self.base_url = base_url
        self.credentials = credentials

    def _http(self) -> httpx.Client:
        return http_client(self.base_url, {"Authorization": f"Bearer {self.credentials.key}"})

    def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            with self._http() as http:
                response = http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise unreachable(exc) from exc
        return self._parse(response)

    @staticmethod
    def _parse(response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 400 or not isinstance(body, dict) or "error" in body:
            error = body.get("error") if isinstance(body, dict) else None
            status = response.status_code
            provider_message = ""
            if isinstance(error, dict):
                provider_message = str(error.get("message") or "")
                if status < 400 and isinstance(error.get("code"), int):
                    status = error["code"]
            elif body is None:
                provider_message = f"Unreadable answer (HTTP {status}): {response.text[:200]}"
                if status < 400:
                    status = 502
            raise error_for_status(
                status,
                provider_message=provider_message,
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )
        return body

    def generation_body(self, request: GenerationRequest) -> dict[str, Any]:
        body: dict[str, Any] = {"model": request.model, "prompt": request.prompt}
        for name in GENERATION_FIELDS:
            value = request.params.get(name)
            if value is None or value == "":
                continue
            if name == "duration":
                # The docs warn: a quoted number is an error. Always send a bare integer.
                value = int(value)
            if name == "enhance_prompt" and value is not True:
                # Only ``true`` is accepted; ``false`` is an error, so leave it out.
                continue
            body[name] = value
        for frame in request.frames:
            if frame.role == "first":
                body["first_frame_image"] = frame.url
            elif frame.role == "last":
                body["last_frame_image"] = frame.url
        return body

    def submit(self, request: GenerationRequest) -> str:
        body = self._request("POST", "/v1/videos/generations", json=self.generation_body(request))
        return _task_id_from(body)

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
        payload: dict[str, Any] = {"model": model, "prompt": prompt, "raw": raw}
        if aspect_ratio:
            payload["aspect_ratio"] = aspect_ratio
        if resolution:
            payload["resolution"] = resolution
        body = self._request("POST", f"/v1/videos/{source_task_id}/remix", json=payload)
        return _task_id_from(body)

    def status(self, task_id: str) -> TaskState:
        body = self._request("GET", f"/v1/tasks/{task_id}", params={"language": "en"})
        return parse_status(body)


def _task_id_from(body: dict[str, Any]) -> str:
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
    raw_status = str(data.get("status") or "").lower()
    # Unknown words mean the provider is still working (PROVIDERS.md, "Facts").
    state = STATUS_MAP.get(raw_status, State.RUNNING)
    progress = _int(data.get("progress"))
    estimate = _int(data.get("estimated_time")) or None
    if state is State.SUCCEEDED:
        url, expires_at = _first_video(data.get("result") or {})
        if not url:
            return TaskState(
                State.FAILED,
                progress=100,
                error_code="no_video",
                error_message="The provider finished but returned no video. Try again.",
                raw=body,
            )
        return TaskState(
            State.SUCCEEDED, progress=100, video_url=url, expires_at=expires_at, raw=body
        )
    if state in {State.FAILED, State.CANCELLED}:
        error = data.get("error")
        provider_message = (
            str(error.get("message") or "") if isinstance(error, dict) else str(error or "")
        )
        return TaskState(
            state,
            progress=progress,
            error_code=raw_status,
            error_message=(
                "The provider could not make this video. Change the prompt or frames and try again."
                if state is State.FAILED
                else "The task was cancelled at the provider."
            ),
            provider_message=provider_message,
            raw=body,
        )
    phase = "Waiting in the provider's queue" if state is State.QUEUED else "Generating"
    return TaskState(state, progress=progress, phase=phase, estimate_seconds=estimate, raw=body)


def _first_video(result: dict[str, Any]) -> tuple[str, Any]:
    videos = result.get("videos") or []
    for video in videos:
        if not isinstance(video, dict):
            continue
        url = video.get("url")
        # Documented as an array of strings; a plain string has been seen too.
        if isinstance(url, list):
            url = next((u for u in url if u), "")
        if url:
            return str(url), from_timestamp(video.get("expires_at"))
    return "", None


def _int(value: Any) -> int:
    try:
        return int(float(str(value).rstrip("%")))
    except (TypeError, ValueError):
        return 0
