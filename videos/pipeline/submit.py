"""Submit: send a queued clip to its provider, once, and keep the task id it answers with.

Who may call the provider is decided in the database, never in memory:

- ``claim_submissions`` hands out an account's free slots (``max_in_flight``) to its queued
  clips in the order they were made, under a lock on the account row, so however many
  trackers run, the limit holds and nobody jumps the queue.
- A claim carries a lease that the submitter renews while its call runs
  (``SubmitLease``). The safety net acts only once the lease has lapsed, so a slow provider
  is never mistaken for a dead worker.
- A request that may have reached the provider is never sent again. If its answer is lost
  the clip becomes "Outcome unknown": looked up at the provider where it can be (Kling
  knows the studio's own id for every task), otherwise left for a person to check, and its
  estimate counts against the budget until then.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from videos import frames as frame_store
from videos import ledger
from videos.models import Clip, ClipKind, ClipStatus, ProviderAccount
from videos.pipeline.common import callback_url, client_for_account, renewing
from videos.providers import GenerationRequest, ProviderClient, ProviderError
from videos.redact import redact

log = logging.getLogger(__name__)

SUBMIT_ATTEMPTS = 3

UNKNOWN_MESSAGE = (
    "The provider did not confirm this submission, so it was not sent again (you are never "
    "charged twice). It may still be running there: check the provider's dashboard, then "
    "enter its task id here or mark it as not sent."
)


def external_task_id(clip: Clip) -> str:
    """The studio's own name for a submission, for providers that keep one (Kling).

    The creation time keeps two studios sharing one provider account apart.
    """
    return f"clipchain-{clip.pk}-{int(clip.created_at.timestamp())}"


def _wait_for(retry_state) -> float:
    exc = retry_state.outcome.exception()
    if isinstance(exc, ProviderError) and exc.retry_after is not None:
        return min(exc.retry_after, 60.0)
    return wait_exponential(multiplier=1, min=1, max=20)(retry_state)


# --- who may submit --------------------------------------------------------------------------


def claim_submissions(*, account_id: int, limit: int | None = None) -> list[int]:
    """Claim the oldest queued clips of an account that fit in its free slots."""
    now = timezone.now()
    with transaction.atomic():
        # The row lock serialises claims per account on PostgreSQL; SQLite's IMMEDIATE
        # transactions serialise all writers anyway.
        account = (
            ProviderAccount.objects.select_for_update()
            .only("pk", "max_in_flight")
            .get(pk=account_id)
        )
        busy = Clip.objects.filter(
            provider_account_id=account_id, status__in=ClipStatus.occupying()
        ).count()
        free = account.max_in_flight - busy
        if limit is not None:
            free = min(free, limit)
        if free <= 0:
            return []
        ids = list(
            Clip.objects.filter(provider_account_id=account_id, status=ClipStatus.QUEUED)
            .order_by("pk")
            .values_list("pk", flat=True)[:free]
        )
        Clip.objects.filter(pk__in=ids, status=ClipStatus.QUEUED).update(
            status=ClipStatus.SUBMITTING,
            phase="",
            submit_claimed_at=now,
            submit_lease_until=now + timedelta(seconds=settings.SUBMIT_LEASE_SECONDS),
        )
    return ids


def slots_ahead(clip: Clip) -> int | None:
    """How many clips wait before this one for a slot at its account; None when it needs none."""
    if clip.status != ClipStatus.QUEUED:
        return None
    account = clip.provider_account
    busy = Clip.objects.filter(provider_account=account, status__in=ClipStatus.occupying()).count()
    if busy < account.max_in_flight:
        return None
    return Clip.objects.filter(
        provider_account=account, status=ClipStatus.QUEUED, pk__lt=clip.pk
    ).count()


@contextmanager
def submit_lease(clip: Clip) -> Iterator[None]:
    """Renew the clip's submission lease in the background while the provider call runs."""
    seconds = settings.SUBMIT_LEASE_SECONDS
    with renewing(
        lambda: clip.renew_submit_lease(lease_seconds=seconds),
        every=seconds / 3,
        name=f"lease-{clip.pk}",
    ):
        yield


# --- the call ----------------------------------------------------------------------------------


def build_request(clip: Clip) -> GenerationRequest:
    # Each frame travels the way the creator chose among those the model accepts: a link
    # the provider fetches (presigned on S3, a signed studio link otherwise) or the bytes.
    transport = clip.params.get("frame_transport", "url")
    frames = tuple(
        frame_store.provider_input(frame, transport=transport)
        for frame in frame_store.ordered(clip.frames.all())
    )
    params = clip.params
    if clip.provider_account.kind == "kling":
        params = {**params, "external_task_id": external_task_id(clip)}
    return GenerationRequest(
        model=clip.model,
        prompt=clip.prompt,
        params=params,
        frames=frames,
        callback_url=callback_url(clip.provider_account),
    )


def send(client: ProviderClient, clip: Clip, request: GenerationRequest) -> str:
    """A generation, an extension of the clip's parent through the provider's own endpoint,
    or (kie) the 1080p version of the parent.

    Continuations from a last frame are ordinary image-to-video generations (their frame
    is in ``request.frames``); only extensions and 1080p versions need the source's ids.
    """
    if clip.kind not in {ClipKind.EXTEND, ClipKind.UPSCALE}:
        return client.submit(request)
    source = clip.parent
    if source is None:
        raise ProviderError(
            "An extension needs the clip it extends.", code="no_source", permanent=True
        )
    kind = clip.provider_account.kind
    params = clip.params
    if clip.kind == ClipKind.UPSCALE:
        if kind != "kie":
            raise ProviderError(
                f"{kind} makes no 1080p version.", code="unsupported", permanent=True
            )
        return client.request_1080p(source.provider_task_id)
    if kind == "apimart":
        return client.remix(
            source.provider_task_id,
            model=clip.model,
            prompt=clip.prompt,
            raw=bool(params.get("raw")),
            aspect_ratio=params.get("aspect_ratio") or None,
            resolution=params.get("resolution") or None,
        )
    if kind == "kie":
        seeds = params.get("seeds")
        return client.extend(
            source.provider_task_id,
            prompt=clip.prompt,
            seeds=int(seeds) if seeds not in (None, "") else None,
            watermark=params.get("watermark") or None,
            callback_url=request.callback_url,
        )
    if kind == "kling":
        # Kling extends a video, not a task: the id its finished task reported.
        cfg_scale = params.get("cfg_scale")
        return client.extend(
            source.params.get("provider_video_id", ""),
            prompt=clip.prompt,
            negative_prompt=params.get("negative_prompt", ""),
            cfg_scale=float(cfg_scale) if cfg_scale not in (None, "") else None,
            callback_url=request.callback_url,
            external_task_id=external_task_id(clip),
        )
    if kind == "newapi":
        # The retry of a failed second phase: the first 8 s are the source's remix_id.
        return client.remix(source.params.get("remix_id", ""), model=clip.model, prompt=clip.prompt)
    raise ProviderError(f"{kind} cannot extend a video.", code="unsupported", permanent=True)


def submit_clip(*, clip_id: int) -> bool:
    """Claim this clip if its account has a free slot for it, then submit it. True if sent."""
    clip = Clip.objects.select_related("provider_account").get(pk=clip_id)
    if clip.status != ClipStatus.QUEUED:
        return False
    # Only the head of the account's queue may take a free slot, whoever asks.
    claimed = claim_submissions(account_id=clip.provider_account_id)
    if clip.pk not in claimed:
        return False
    clip.refresh_from_db()
    return send_claimed(clip=clip)


def send_claimed(*, clip: Clip) -> bool:
    """Send a clip this process has claimed. Returns True when the provider took it."""
    account = clip.provider_account
    try:
        client = client_for_account(account)
        request = build_request(clip)
    except Exception as exc:  # nothing was sent: a missing frame file, a bad account
        log.exception("clip %s: could not prepare the submission", clip.pk)
        clip.mark_submit_failed(
            code="not_prepared",
            message="The studio could not prepare this submission; nothing was sent.",
            provider_message=str(exc),
        )
        return False
    # The estimate counts against the budget from the moment the request may leave.
    ledger.record_submission(clip=clip)
    attempts = 0
    try:
        with submit_lease(clip):
            # Resent only when the provider certainly did not take it (connection refused,
            # 429, 5xx answer): a request that may have arrived is never sent a second time.
            for attempt in Retrying(
                retry=retry_if_exception(
                    lambda exc: isinstance(exc, ProviderError) and exc.safe_to_resend
                ),
                stop=stop_after_attempt(SUBMIT_ATTEMPTS),
                wait=_wait_for,
                reraise=True,
            ):
                with attempt:
                    attempts += 1
                    task_id = send(client, clip, request)
    except ProviderError as exc:
        _refused(clip, exc, attempts=attempts)
        return False
    except Exception as exc:
        # Anything else (an answer the client could not read, a bug) happened after the
        # request may have left: treat the outcome as unknown, never resend.
        log.exception("clip %s: submission outcome unknown", clip.pk)
        lost(clip, provider_message=f"{type(exc).__name__}: {exc}")
        return False
    return record_task_id(clip, task_id)


def record_task_id(clip: Clip, task_id: str) -> bool:
    """Keep the provider's task id, however late it comes; never drop a paid task."""
    if clip.mark_submitted(task_id):
        log.info("clip %s: submitted as %s", clip.pk, task_id)
        ledger.record_submission(clip=clip)
        return True
    # Neither submitting nor unknown any more (a person marked it as not sent meanwhile):
    # the provider has the task all the same, so the id is kept and the task tracked.
    clip.refresh_from_db()
    log.error(
        "clip %s: the provider accepted task %s after the clip became %s; tracking it anyway",
        clip.pk,
        task_id,
        clip.status,
    )
    Clip.objects.filter(pk=clip.pk, provider_task_id="").update(
        status=ClipStatus.RUNNING,
        provider_task_id=task_id,
        submitted_at=timezone.now(),
        phase="Found after all",
        error_code="",
        error_message="",
        next_poll_at=timezone.now(),
    )
    ledger.reopen(clip=clip)
    return True


def _refused(clip: Clip, exc: ProviderError, *, attempts: int) -> None:
    secrets = clip.provider_account.secrets()
    log.warning("clip %s: submission refused: %s", clip.pk, redact(str(exc), secrets))
    if exc.code == "no_answer":
        lost(clip, provider_message=exc.provider_message)
        return
    message = exc.message
    if exc.safe_to_resend:
        # Every try was refused without being taken: final, so it must not promise another.
        what = f"HTTP {exc.http_status}" if exc.http_status else "no connection"
        message = (
            f"The provider refused all {attempts} tries ({what}); nothing was accepted, so "
            "nothing was charged. Retry in a few minutes."
        )
    if clip.mark_submit_failed(
        code=exc.code, message=message, provider_message=exc.provider_message
    ):
        # The provider proved it took nothing: no money is promised any more.
        ledger.discard_unsent(clip=clip)


def lost(clip: Clip, *, provider_message: str = "") -> bool:
    """The submission's answer is lost: mark it unknown and look for it. True if found."""
    if not clip.mark_outcome_unknown(message=UNKNOWN_MESSAGE, provider_message=provider_message):
        return False
    # It may be paid for: its estimate counts against the budget until it is settled.
    ledger.record_submission(clip=clip)
    from videos.pipeline.reconcile import look_up

    return look_up(clip_id=clip.pk)
