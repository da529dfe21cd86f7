"""The tracker: one process follows every provider task, and sends every queued clip.

No queue worker sleeps between polls. Each clip carries ``next_poll_at``; a round claims
the clips that are due (``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL, a conditional
lease on SQLite, so several trackers on several machines never poll one clip together),
asks the providers concurrently from a small thread pool sharing one pooled HTTP client per
account, then records each answer and the clip's next poll from the main thread (network in
threads, database in one place).

- Cadence: soon after submission, slower as a task runs long or when the provider expects
  it to take long, never faster than a provider refreshes its tasks (``cadence``).
- Limits per account: ``requests_per_minute`` as a token bucket on the account row (shared
  by all trackers), and a 429 pauses only that account (``ProviderAccount.pause``).
- Queued clips are claimed into the account's free slots in order and sent from a
  separate pool, so a new clip never waits behind the polls.
- A killed tracker loses nothing: its leases lapse and the next round picks the clips up.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import time
from collections import defaultdict
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from videos import ledger
from videos.models import Clip, ClipStatus, ProviderAccount, WorkerHeartbeat
from videos.pipeline import safety
from videos.pipeline.common import client_for_account, enqueue
from videos.pipeline.samples import record_samples
from videos.pipeline.submit import claim_submissions, send_claimed
from videos.providers import ProviderError, State, TaskState
from videos.providers.base import http_client
from videos.redact import redact

log = logging.getLogger(__name__)

# Clips claimed per round trip to the database.
BATCH = 200
HEARTBEAT_SECONDS = 5.0
SAFETY_NET_SECONDS = 5.0
# Searching providers' task lists for lost answers costs list requests: once a minute.
LOOK_UP_SECONDS = 60.0
# Back-off after failed status checks: doubling from the poll interval up to this.
LONGEST_BACKOFF_SECONDS = 300.0


# --- when to ask next ------------------------------------------------------------------------


def cadence(clip: Clip, state: TaskState | None = None, *, now: datetime | None = None) -> float:
    """Seconds until the next status check of a running task.

    Polled every ``TRACK_POLL_SECONDS`` at first; a task that runs long is asked less
    often (a tenth of its age), one the provider expects to take long at a twentieth of that
    estimate, one past its estimate at the fastest pace again; never more often than the
    provider refreshes (the NewAPI gateway updates its tasks every 15 s).
    """
    now = now or timezone.now()
    fastest = settings.TRACK_POLL_SECONDS
    slowest = max(fastest, settings.TRACK_MAX_POLL_SECONDS)
    age = (now - (clip.submitted_at or now)).total_seconds()
    delay = age / 10
    estimate = (state.estimate_seconds if state else None) or clip.provider_estimate_seconds
    if estimate:
        delay = estimate / 20 if age < estimate else fastest
    delay = min(slowest, max(fastest, delay))
    floor = settings.TRACK_PROVIDER_REFRESH_SECONDS.get(clip.provider_account.kind, 0.0)
    return max(delay, floor)


def deadline(clip: Clip) -> datetime:
    return (clip.submitted_at or clip.created_at) + timedelta(
        seconds=settings.TRACK_DEADLINE_SECONDS
    )


# --- recording what the provider said ------------------------------------------------------


def keep_provider_facts(clip: Clip, state: TaskState) -> None:
    """Keep what a later extension needs; saved with the clip's params when it is marked done.

    Kling extends by the finished video's id (``TaskState.raw["video_id"]``), not the task's;
    NewAPI retries a failed extension by its first part's ``remix_id`` (``TaskState.facts``).
    """
    video_id = state.raw.get("video_id") if isinstance(state.raw, dict) else None
    if video_id:
        clip.params = {**clip.params, "provider_video_id": str(video_id)}
    if state.facts:
        clip.params = {**clip.params, **state.facts}


def apply_state(clip: Clip, state: TaskState) -> None:
    """Record one normalised provider state on the clip, and when to ask again."""
    now = timezone.now()
    if state.state in {State.QUEUED, State.RUNNING}:
        # Judged only after asking: a task that finished late is still recorded as done.
        if now > deadline(clip):
            give_up(clip, reason="did not finish")
            return
        clip.record_progress(
            progress=state.progress,
            phase=state.phase or "Generating",
            estimate_seconds=state.estimate_seconds,
            next_poll_at=now + timedelta(seconds=cadence(clip, state, now=now)),
        )
    elif state.state in {State.SUCCEEDED, State.PARTIAL}:
        keep_provider_facts(clip, state)
        # One transaction: a task's further videos (several samples) are recorded with its
        # first, or the whole answer is recorded again at the next poll.
        with transaction.atomic():
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
                record_samples(clip=clip, urls=state.more_video_urls, expires_at=state.expires_at)
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


def give_up(clip: Clip, *, reason: str, provider_message: str = "") -> None:
    hours = settings.TRACK_DEADLINE_SECONDS / 3600
    span = f"{hours:g} hours" if hours >= 1 else f"{settings.TRACK_DEADLINE_SECONDS} s"
    if reason == "did not finish":
        message = (
            f"The provider did not finish within {span}, so the studio stopped waiting. "
            "Try again later."
        )
    else:
        message = (
            f"The provider did not answer status checks for {span} ({reason}), so the "
            "studio stopped waiting. Check the provider's dashboard before retrying."
        )
    if clip.mark_expired(message=message, provider_message=provider_message):
        ledger.settle(clip=clip, reported_cost=None, failed=True)


def record_failure(clip: Clip, exc: ProviderError) -> None:
    """A status check failed. The task is paid for and keeps running whatever we see."""
    now = timezone.now()
    if exc.http_status == 404:
        if clip.mark_failed(
            code="not_found",
            message="The provider no longer knows this task.",
            provider_message=exc.provider_message,
        ):
            ledger.settle(clip=clip, reported_cost=None, failed=True)
        return
    if now > deadline(clip):
        give_up(clip, reason=exc.message.rstrip("."), provider_message=exc.provider_message)
        return
    if exc.http_status == 429:
        # Slows this account only; its other clips wait for the same moment.
        until = clip.provider_account.pause(seconds=max(exc.retry_after or 0, 2.0))
        clip.schedule_poll(until)
        return
    backoff = min(
        LONGEST_BACKOFF_SECONDS, settings.TRACK_POLL_SECONDS * 2 ** min(clip.poll_failures + 1, 16)
    )
    clip.record_poll_failure(next_poll_at=now + timedelta(seconds=backoff))


# --- claiming -----------------------------------------------------------------------------------


def claim_due(*, limit: int = BATCH) -> list[Clip]:
    """Take a lease on up to ``limit`` running clips whose next poll is due."""
    now = timezone.now()
    due = (
        Clip.objects.filter(status=ClipStatus.RUNNING)
        .filter(Q(next_poll_at__isnull=True) | Q(next_poll_at__lte=now))
        .filter(Q(tracking_lease_until__isnull=True) | Q(tracking_lease_until__lt=now))
        .exclude(provider_account__paused_until__gt=now)
        .order_by("next_poll_at", "pk")
    )
    with transaction.atomic():
        if connection.features.has_select_for_update_skip_locked:
            # Rows another tracker is claiming right now are skipped, not waited for.
            due = due.select_for_update(skip_locked=True, of=("self",))
        ids = list(due.values_list("pk", flat=True)[:limit])
        if ids:
            # Conditional as well, which is what keeps two trackers apart on SQLite.
            Clip.objects.filter(pk__in=ids).filter(
                Q(tracking_lease_until__isnull=True) | Q(tracking_lease_until__lt=now)
            ).update(
                tracking_lease_until=now + timedelta(seconds=settings.TRACK_POLL_LEASE_SECONDS)
            )
    return list(
        Clip.objects.select_related("provider_account")
        .filter(pk__in=ids, tracking_lease_until__gt=now)
        .order_by("next_poll_at", "pk")
    )


def take_tokens(*, account_id: int, wanted: int) -> tuple[int, float]:
    """Up to ``wanted`` status checks this account may make now, and seconds per further one.

    A token bucket kept on the account row, so all trackers share it. Its size and refill
    are chosen so that the bucket plus a minute of refills never exceeds
    ``requests_per_minute``: the limit holds over any 60 s, not just on average.
    """
    now = timezone.now()
    with transaction.atomic():
        account = (
            ProviderAccount.objects.select_for_update()
            .only("pk", "requests_per_minute", "poll_tokens", "poll_tokens_at")
            .get(pk=account_id)
        )
        per_minute = max(1, account.requests_per_minute)
        size = max(1.0, per_minute / 60)
        refill = max(per_minute - size, 1.0) / 60
        if account.poll_tokens_at is None:
            tokens = size
        else:
            elapsed = max(0.0, (now - account.poll_tokens_at).total_seconds())
            tokens = min(size, account.poll_tokens + elapsed * refill)
        granted = min(wanted, math.floor(tokens))
        ProviderAccount.objects.filter(pk=account_id).update(
            poll_tokens=tokens - granted, poll_tokens_at=now
        )
    return granted, 1 / refill


# --- the loop ------------------------------------------------------------------------------------


@dataclass
class RoundResult:
    polled: int = 0
    submitted: int = 0
    deferred: int = 0
    by_account: dict[int, int] = field(default_factory=lambda: defaultdict(int))


class Tracker:
    """Polls due clips and sends queued ones. ``threads=0`` does everything in this thread."""

    def __init__(self, *, threads: int | None = None, submit_threads: int | None = None) -> None:
        self.threads = settings.TRACKER_THREADS if threads is None else threads
        submit_threads = (
            settings.TRACKER_SUBMIT_THREADS if submit_threads is None else submit_threads
        )
        self.inline = self.threads == 0
        self.poll_pool = None if self.inline else ThreadPoolExecutor(self.threads, "poll")
        self.submit_pool = (
            None if self.inline else ThreadPoolExecutor(max(1, submit_threads), "submit")
        )
        self.submitting: set[Future] = set()
        self._http: dict[tuple[int, str], httpx.Client] = {}
        self.name = f"tracker@{socket.gethostname()}:{os.getpid()}"
        self._last_beat = 0.0
        self._last_safety = 0.0
        self._last_look_up = 0.0

    def close(self) -> None:
        for pool in (self.poll_pool, self.submit_pool):
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=False)
        for client in self._http.values():
            client.close()
        self._http.clear()
        WorkerHeartbeat.objects.filter(name=self.name).delete()

    def http_for(self, account: ProviderAccount) -> httpx.Client:
        key = (account.pk, account.base_url)
        if key not in self._http:
            self._http[key] = http_client(
                account.base_url, {}, max_connections=max(2, self.threads)
            )
        return self._http[key]

    # Submissions --------------------------------------------------------------------------

    def dispatch_submissions(self) -> int:
        self.submitting = {f for f in self.submitting if not f.done()}
        # While every submit thread is busy, claimed clips would only wait in memory.
        room = None if self.inline else settings.TRACKER_SUBMIT_THREADS * 2 - len(self.submitting)
        if room is not None and room <= 0:
            return 0
        accounts = (
            Clip.objects.filter(status=ClipStatus.QUEUED, provider_account__is_enabled=True)
            .values_list("provider_account_id", flat=True)
            .distinct()
            .order_by()
        )
        sent = 0
        for account_id in list(accounts):
            ids = claim_submissions(account_id=account_id, limit=room)
            for clip in Clip.objects.select_related("provider_account").filter(pk__in=ids):
                sent += 1
                if self.inline:
                    send_claimed(clip=clip)
                else:
                    self.submitting.add(
                        self.submit_pool.submit(_in_thread, send_claimed, clip=clip)
                    )
            if room is not None:
                room -= len(ids)
                if room <= 0:
                    break
        return sent

    # Polls ----------------------------------------------------------------------------------

    def poll_batch(self, result: RoundResult) -> int:
        clips = claim_due()
        if not clips:
            return 0
        by_account: dict[int, list[Clip]] = defaultdict(list)
        for clip in clips:
            by_account[clip.provider_account_id].append(clip)
        to_poll: list[Clip] = []
        now = timezone.now()
        for account_id, account_clips in by_account.items():
            granted, spacing = take_tokens(account_id=account_id, wanted=len(account_clips))
            to_poll += account_clips[:granted]
            # The rest come back spread over the next seconds, at the pace the account allows.
            for n, clip in enumerate(account_clips[granted:], start=1):
                clip.schedule_poll(now + timedelta(seconds=n * spacing))
                result.deferred += 1
        for clip, outcome in self._statuses(to_poll):
            self._record(clip, outcome)
            result.polled += 1
            result.by_account[clip.provider_account_id] += 1
        return len(clips)

    def _statuses(self, clips: list[Clip]):
        """(clip, TaskState or exception) for each clip, as the answers come in."""
        if self.inline:
            for clip in clips:
                yield clip, _status(clip, client_for_account(clip.provider_account))
            return
        futures = {
            self.poll_pool.submit(
                _status,
                clip,
                client_for_account(
                    clip.provider_account, http=self.http_for(clip.provider_account)
                ),
            ): clip
            for clip in clips
        }
        for future in as_completed(futures):
            yield futures[future], future.result()

    def _record(self, clip: Clip, outcome: TaskState | Exception) -> None:
        try:
            if isinstance(outcome, TaskState):
                apply_state(clip, outcome)
            elif isinstance(outcome, ProviderError):
                log.warning(
                    "clip %s: status check failed: %s",
                    clip.pk,
                    redact(str(outcome), clip.provider_account.secrets()),
                )
                record_failure(clip, outcome)
            else:
                log.error("clip %s: status check broke: %r", clip.pk, outcome)
                record_failure(
                    clip,
                    ProviderError("The provider's answer could not be read.", code="unreadable"),
                )
        except Exception:
            # One clip's bad answer must not stop the round; its lease lapses and it is
            # asked again.
            log.exception("clip %s: could not record the provider's answer", clip.pk)

    # The round ------------------------------------------------------------------------------

    def run_once(self, *, submissions: bool = True) -> RoundResult:
        """One pass: send what may be sent, poll everything that is due."""
        result = RoundResult()
        self.housekeeping()
        if submissions:
            result.submitted = self.dispatch_submissions()
        while self.poll_batch(result) == BATCH:
            pass
        return result

    def housekeeping(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_beat >= HEARTBEAT_SECONDS:
            WorkerHeartbeat.beat(name=self.name, kind="tracker")
            self._last_beat = now
        if force or now - self._last_safety >= SAFETY_NET_SECONDS:
            self._last_safety = now
            look_up = force or now - self._last_look_up >= LOOK_UP_SECONDS
            if look_up:
                self._last_look_up = now
            try:
                safety.resume_stalled(look_up_unknown=look_up)
            except Exception:
                log.exception("the safety net failed; trying again in %s s", SAFETY_NET_SECONDS)

    def run(self, *, stop: threading.Event) -> None:
        log.info("%s: following provider tasks with %s threads", self.name, self.threads)
        # New clips are sent from their own loop: a long round of polls never delays them.
        sender = threading.Thread(target=self._send_loop, args=(stop,), name="send", daemon=True)
        sender.start()
        try:
            while not stop.is_set():
                try:
                    result = self.run_once(submissions=False)
                except Exception:
                    log.exception("tracker round failed; next round in 1 s")
                    stop.wait(1.0)
                    continue
                if not result.polled:
                    # Idle: a due clip is noticed within this long.
                    stop.wait(settings.TRACKER_IDLE_SECONDS)
        finally:
            stop.set()
            sender.join(timeout=10)

    def _send_loop(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                try:
                    sent = self.dispatch_submissions()
                except Exception:
                    log.exception("sending queued clips failed; trying again in 1 s")
                    stop.wait(1.0)
                    continue
                if not sent:
                    stop.wait(settings.TRACKER_IDLE_SECONDS)
        finally:
            connection.close()


def _status(clip: Clip, client) -> TaskState | Exception:
    try:
        return client.status(clip.provider_task_id)
    except Exception as exc:  # recorded by the main thread
        return exc


def _in_thread(function, **kwargs) -> None:
    try:
        function(**kwargs)
    except Exception:
        log.exception("%s failed", function.__name__)
    finally:
        # Each pool thread holds its own database connection; give it back.
        connection.close()


# --- outside the loop ---------------------------------------------------------------------------


def callback_received(*, account: ProviderAccount, task_ids: tuple[str, ...]) -> bool:
    """A provider says a task changed: make it due now rather than at its next turn."""
    updated = Clip.objects.filter(
        provider_account=account, provider_task_id__in=task_ids, status=ClipStatus.RUNNING
    ).update(next_poll_at=timezone.now())
    return bool(updated)


def poll_now(*, clip_id: int) -> None:
    """One status check of one clip, outside any round ("Check again", tests)."""
    clip = Clip.objects.select_related("provider_account").get(pk=clip_id)
    if clip.status != ClipStatus.RUNNING:
        return
    outcome = _status(clip, client_for_account(clip.provider_account))
    Tracker(threads=0)._record(clip, outcome)
