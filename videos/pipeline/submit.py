"""Submit: send a queued clip to its provider, once, and keep the task id it answers with."""

from __future__ import annotations

import logging
from datetime import timedelta

from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from videos import frames as frame_store
from videos import ledger
from videos.models import Clip, ClipKind
from videos.pipeline.common import callback_url, client_for_account, enqueue
from videos.providers import GenerationRequest, ProviderClient, ProviderError

log = logging.getLogger(__name__)

SUBMIT_ATTEMPTS = 3
STUCK_SUBMITTING = timedelta(minutes=5)


def _wait_for(retry_state) -> float:
    exc = retry_state.outcome.exception()
    if isinstance(exc, ProviderError) and exc.retry_after is not None:
        return min(exc.retry_after, 60.0)
    return wait_exponential(multiplier=1, min=1, max=20)(retry_state)


def build_request(clip: Clip) -> GenerationRequest:
    # Each frame travels the way the creator chose among those the model accepts: a link
    # the provider fetches (presigned on S3, a signed studio link otherwise) or the bytes.
    transport = clip.params.get("frame_transport", "url")
    frames = tuple(
        frame_store.provider_input(frame, transport=transport)
        for frame in frame_store.ordered(clip.frames.all())
    )
    return GenerationRequest(
        model=clip.model,
        prompt=clip.prompt,
        params=clip.params,
        frames=frames,
        callback_url=callback_url(clip.provider_account),
    )


def send(client: ProviderClient, clip: Clip, request: GenerationRequest) -> str:
    """A generation, or an extension of the clip's parent through the provider's own endpoint.

    Continuations from a last frame are ordinary image-to-video generations (their frame
    is in ``request.frames``); only extensions need the source's provider ids.
    """
    if clip.kind != ClipKind.EXTEND:
        return client.submit(request)
    source = clip.parent
    if source is None:
        raise ProviderError(
            "An extension needs the clip it extends.", code="no_source", permanent=True
        )
    kind = clip.provider_account.kind
    if kind == "apimart":
        return client.remix(
            source.provider_task_id,
            model=clip.model,
            prompt=clip.prompt,
            raw=bool(clip.params.get("raw")),
            aspect_ratio=clip.params.get("aspect_ratio") or None,
            resolution=clip.params.get("resolution") or None,
        )
    if kind == "kie":
        return client.extend(
            source.provider_task_id,
            prompt=clip.prompt,
            seeds=clip.params.get("seeds"),
            callback_url=request.callback_url,
        )
    if kind == "kling":
        # Kling extends a video, not a task: the id its finished task reported.
        return client.extend(
            source.params.get("provider_video_id", ""),
            prompt=clip.prompt,
            negative_prompt=clip.params.get("negative_prompt", ""),
            callback_url=request.callback_url,
        )
    raise ProviderError(f"{kind} cannot extend a video.", code="unsupported", permanent=True)


def submit_clip(*, clip_id: int) -> None:
    clip = Clip.objects.select_related("provider_account").get(pk=clip_id)
    if not clip.claim_submission():
        return
    client = client_for_account(clip.provider_account)
    request = build_request(clip)
    try:
        # Resent only when the provider certainly did not take it (connection refused, 429,
        # 5xx answer): a request that may have arrived is never sent a second time.
        for attempt in Retrying(
            retry=retry_if_exception(
                lambda exc: isinstance(exc, ProviderError) and exc.safe_to_resend
            ),
            stop=stop_after_attempt(SUBMIT_ATTEMPTS),
            wait=_wait_for,
            reraise=True,
        ):
            with attempt:
                task_id = send(client, clip, request)
    except ProviderError as exc:
        if exc.code == "no_answer":
            message = (
                "The provider did not confirm this submission, so it was not sent again "
                "(you are never charged twice). Check the provider's dashboard before "
                "retrying."
            )
        else:
            message = exc.message
        clip.mark_submit_failed(
            code=exc.code, message=message, provider_message=exc.provider_message
        )
        log.warning("clip %s: submission failed: %s", clip.pk, exc)
        return
    clip.mark_submitted(task_id)
    ledger.record_submission(clip=clip)
    log.info("clip %s: submitted as %s", clip.pk, task_id)
    enqueue("track", clip.pk)
