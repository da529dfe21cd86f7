"""The generation pipeline: submit -> track -> mirror -> poster.

Each step reads its clip from the database, checks the clip is in the state the step
expects, does its network work outside any transaction, and records the outcome with a
model method. Running a step twice does no harm, so a re-delivered queue task, a
restarted worker or the safety-net schedule can always carry on where things stopped.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import time
from datetime import timedelta

import httpx
from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django_q.tasks import async_task
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from videos import frames as frame_store
from videos import ledger, media
from videos.models import Clip, ClipKind, ClipStatus, ProviderAccount
from videos.providers import (
    Credentials,
    GenerationRequest,
    ProviderClient,
    ProviderError,
    State,
    TaskState,
    accepts_callbacks,
    client_for,
)

log = logging.getLogger(__name__)

SUBMIT_ATTEMPTS = 3
MAX_VIDEO_BYTES = 4 * 1024**3
STUCK_SUBMITTING = timedelta(minutes=5)


def enqueue(step: str, clip_id: int) -> None:
    """Queue a pipeline step once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: async_task(f"videos.tasks.{step}", clip_id))


def client_for_account(account: ProviderAccount) -> ProviderClient:
    return client_for(
        account.kind,
        base_url=account.base_url,
        credentials=Credentials(key=account.credential, secret=account.secret_key),
    )


# --- submit ------------------------------------------------------------------------------


def _wait_for(retry_state) -> float:
    exc = retry_state.outcome.exception()
    if isinstance(exc, ProviderError) and exc.retry_after is not None:
        return min(exc.retry_after, 60.0)
    return wait_exponential(multiplier=1, min=1, max=20)(retry_state)


def callback_url(account: ProviderAccount) -> str:
    if not settings.PUBLIC_URL or not accepts_callbacks(account.kind):
        return ""
    return settings.PUBLIC_URL + reverse("provider-callback", args=[account.kind, account.pk])


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


def callback_received(*, account: ProviderAccount, task_ids: tuple[str, ...]) -> bool:
    """A provider says a task changed: poll it now rather than at the next turn."""
    clip = (
        Clip.objects.filter(
            provider_account=account, provider_task_id__in=task_ids, status=ClipStatus.RUNNING
        )
        .only("pk")
        .first()
    )
    if clip is None:
        return False
    enqueue("track", clip.pk)
    return True


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


# --- track -------------------------------------------------------------------------------


def keep_provider_facts(clip: Clip, state: TaskState) -> None:
    """Keep what a later extension needs; saved with the clip's params when it is marked done.

    Kling extends by the finished video's id (``TaskState.raw["video_id"]``), not the task's.
    """
    video_id = state.raw.get("video_id") if isinstance(state.raw, dict) else None
    if video_id:
        clip.params = {**clip.params, "provider_video_id": str(video_id)}


def apply_state(clip: Clip, state: TaskState) -> None:
    """Record one normalised provider state on the clip."""
    if state.state in {State.QUEUED, State.RUNNING}:
        clip.record_progress(
            progress=state.progress,
            phase=state.phase or "Generating",
            estimate_seconds=state.estimate_seconds,
        )
    elif state.state in {State.SUCCEEDED, State.PARTIAL}:
        keep_provider_facts(clip, state)
        if clip.mark_provider_done(
            result_url=state.video_url,
            expires_at=state.expires_at,
            cost=state.cost,
            partial=state.state is State.PARTIAL,
            error_code=state.error_code,
            error_message=state.error_message,
            provider_message=state.provider_message,
        ):
            enqueue("mirror", clip.pk)
            ledger.settle(clip=clip, reported_cost=state.cost, failed=False)
    elif state.state is State.EXPIRED:
        clip.mark_expired(
            message=state.error_message or "The provider's task expired before it finished.",
            provider_message=state.provider_message,
        )
    elif state.state is State.CANCELLED:
        clip.mark_cancelled(message=state.error_message or "The task was cancelled.")
    else:
        clip.mark_failed(
            code=state.error_code or "failed",
            message=state.error_message or "The provider could not make this video.",
            provider_message=state.provider_message,
        )
    if state.state in {State.FAILED, State.EXPIRED, State.CANCELLED}:
        ledger.settle(clip=clip, reported_cost=state.cost, failed=True)


def track_clip(*, clip_id: int) -> None:
    clip = Clip.objects.select_related("provider_account").get(pk=clip_id)
    budget = settings.TRACK_BUDGET_SECONDS
    if clip.status != ClipStatus.RUNNING or not clip.claim_tracking(budget + 60):
        return
    client = client_for_account(clip.provider_account)
    poll = settings.TRACK_POLL_SECONDS
    give_up_at = (clip.submitted_at or clip.created_at) + timedelta(
        seconds=settings.TRACK_DEADLINE_SECONDS
    )
    stop_at = time.monotonic() + budget
    try:
        while True:
            if timezone.now() > give_up_at:
                clip.mark_expired(
                    message=(
                        "The provider did not finish within "
                        f"{settings.TRACK_DEADLINE_SECONDS // 3600} hours, so the studio "
                        "stopped waiting. Try again later."
                    )
                )
                ledger.settle(clip=clip, reported_cost=None, failed=True)
                return
            wait = poll
            try:
                state = client.status(clip.provider_task_id)
            except ProviderError as exc:
                log.warning("clip %s: status check failed: %s", clip.pk, exc)
                if exc.http_status == 404:
                    clip.mark_failed(
                        code="not_found",
                        message="The provider no longer knows this task.",
                        provider_message=exc.provider_message,
                    )
                    ledger.settle(clip=clip, reported_cost=None, failed=True)
                    return
                # Anything else (a bad key, a 5xx, a 429) is waited out: the task is paid
                # for and keeps running at the provider whatever our polling sees.
                wait = max(poll, exc.retry_after or 0, 5.0)
            else:
                apply_state(clip, state)
                if state.is_final:
                    return
            if time.monotonic() + wait > stop_at:
                break
            time.sleep(wait)
            clip.refresh_from_db(fields=["status", "progress"])
            if clip.status != ClipStatus.RUNNING:
                return
    finally:
        clip.release_tracking()
    # Budget spent and still running: hand over to a fresh task so other clips get turns.
    enqueue("track", clip.pk)


# --- mirror ------------------------------------------------------------------------------


class LinkGone(Exception):
    pass


def _download(url: str, into) -> tuple[int, str]:
    """Stream ``url`` into a file, never holding the whole video in memory."""
    digest = hashlib.sha256()
    size = 0
    timeout = httpx.Timeout(settings.DOWNLOAD_TIMEOUT_SECONDS, connect=10.0)
    with httpx.stream("GET", url, timeout=timeout, follow_redirects=True) as response:
        if response.status_code in {403, 404, 410}:
            raise LinkGone(f"HTTP {response.status_code}")
        response.raise_for_status()
        for chunk in response.iter_bytes(chunk_size=1024 * 1024):
            size += len(chunk)
            if size > MAX_VIDEO_BYTES:
                raise ValueError("The video is larger than the studio accepts.")
            digest.update(chunk)
            into.write(chunk)
    into.flush()
    return size, digest.hexdigest()


def mirror_clip(*, clip_id: int) -> None:
    clip = Clip.objects.get(pk=clip_id)
    if clip.status != ClipStatus.MIRRORING:
        return
    with tempfile.NamedTemporaryFile(suffix=".mp4") as tmp:
        try:
            for attempt in Retrying(
                retry=retry_if_exception(
                    lambda exc: isinstance(exc, httpx.TransportError | httpx.HTTPStatusError)
                ),
                stop=stop_after_attempt(4),
                wait=wait_exponential(multiplier=1, min=1, max=15),
                reraise=True,
            ):
                with attempt:
                    tmp.seek(0)
                    tmp.truncate()
                    size, sha256 = _download(clip.result_url, tmp)
        except LinkGone as exc:
            clip.mark_expired(
                message=("The provider's download link expired before the video could be saved."),
                provider_message=str(exc),
            )
            return
        try:
            info = media.probe(tmp.name)
        except media.NotAVideo as exc:
            clip.mark_failed(
                code="not_a_video",
                message="The provider's file is not a playable video. Try again.",
                provider_message=str(exc),
            )
            return
        tmp.seek(0)
        key = default_storage.save(
            f"clips/{clip.project_id}/{clip.pk}-{sha256[:12]}.mp4", File(tmp)
        )
    if not clip.mark_mirrored(
        file_key=key,
        file_size=size,
        sha256=sha256,
        duration_seconds=info.duration,
        width=info.width,
        height=info.height,
    ):
        # Another run got there first: keep theirs, drop ours.
        default_storage.delete(key)
        return
    log.info("clip %s: mirrored %s bytes to %s", clip.pk, size, key)
    enqueue("poster", clip.pk)


# --- poster ------------------------------------------------------------------------------


def make_poster(*, clip_id: int) -> None:
    clip = Clip.objects.get(pk=clip_id)
    if not clip.file_key or clip.poster_key:
        return
    # An extension that returns the whole video shows its new footage, not the source's.
    start, end = clip.timeline_range()
    at = start + min(1.0, ((end - start) or 2.0) / 2)
    with default_storage.open(clip.file_key, "rb") as video:
        jpeg = media.poster_jpeg(video, at_seconds=at)
    key = default_storage.save(f"posters/{clip.project_id}/{clip.pk}.jpg", ContentFile(jpeg))
    clip.set_poster(key)


# --- safety net ----------------------------------------------------------------------------


def resume_stalled() -> dict[str, int]:
    """Find clips whose next step was lost (a killed worker, a lost task) and queue it again."""
    now = timezone.now()
    counts = {"submit": 0, "track": 0, "mirror": 0, "poster": 0, "unknown": 0}
    for clip in Clip.objects.filter(
        status=ClipStatus.QUEUED, created_at__lt=now - timedelta(seconds=30)
    ).only("pk"):
        enqueue("submit", clip.pk)
        counts["submit"] += 1
    for clip in Clip.objects.filter(
        status=ClipStatus.SUBMITTING, created_at__lt=now - STUCK_SUBMITTING
    ):
        # The worker died between calling the provider and saving its answer. The task may
        # exist and be paid for; sending again could pay twice, so a person decides.
        clip.mark_submit_failed(
            code="submit_unknown",
            message=(
                "The studio lost track of this submission before the provider answered. It "
                "was not sent again, so you are not charged twice; check the provider's "
                "dashboard before retrying."
            ),
        )
        counts["unknown"] += 1
    stale = now - timedelta(seconds=30)
    for clip in (
        Clip.objects.filter(status=ClipStatus.RUNNING)
        .exclude(tracking_lease_until__gt=now)
        .exclude(last_polled_at__gt=stale)
        .only("pk")
    ):
        enqueue("track", clip.pk)
        counts["track"] += 1
    for clip in Clip.objects.filter(
        status=ClipStatus.MIRRORING, provider_done_at__lt=now - timedelta(minutes=2)
    ).only("pk"):
        enqueue("mirror", clip.pk)
        counts["mirror"] += 1
    for clip in Clip.objects.filter(
        status__in=[ClipStatus.READY, ClipStatus.PARTIAL],
        poster_key="",
        finished_at__lt=now - timedelta(minutes=2),
    ).only("pk"):
        enqueue("poster", clip.pk)
        counts["poster"] += 1
    return counts
