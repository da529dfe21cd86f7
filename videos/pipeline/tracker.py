"""Track: follow provider tasks until they finish."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from videos import ledger
from videos.models import Clip, ClipStatus, ProviderAccount
from videos.pipeline.common import client_for_account, enqueue
from videos.providers import ProviderError, State, TaskState

log = logging.getLogger(__name__)


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
