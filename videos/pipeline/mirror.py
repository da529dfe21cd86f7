"""Mirror: stream a finished provider video into storage before its link expires.

One attempt reads the provider's link through the SSRF guard and feeds the body straight
into storage as it arrives (``storage_upload``: an S3 multipart upload, or a direct file
write), under its final key ``clips/{project}/{clip}-{token}.mp4`` (a random token chosen
before the first byte, so no server-side copy follows), counting size and SHA-256 on the
way; PyAV then probes the stored bytes through ranged reads.

Attempts are counted on the clip (``mirror_attempts``) as they start, so one that dies with
its worker counts too, and a link that never works ends Failed after MAX_ATTEMPTS whichever
task runs them. Only failures that may pass (a dropped connection, a timeout, a 5xx or 429,
the studio's storage) are tried again, with backoff, while the link lives; a link the
provider no longer serves (403, 404, 410) ends Expired at once.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass

import httpx
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.core.files.storage import default_storage
from django.utils import timezone

from videos import media, netguard, storage_upload
from videos.models import Clip, ClipStatus
from videos.pipeline.common import enqueue, work_lease

log = logging.getLogger(__name__)

MAX_VIDEO_BYTES = 5 * 1024**3
MAX_ATTEMPTS = 5
RETRY_BASE_SECONDS = 2.0
RETRY_MAX_SECONDS = 60.0
# How often a running download shows its progress on the clip page.
PROGRESS_EVERY_SECONDS = 2.0
GONE = frozenset({403, 404, 410})
# Left for the probe and the bookkeeping when the queue's timeout nears.
FINISHING_SECONDS = 60.0


@dataclass(frozen=True)
class Mirrored:
    key: str
    size: int
    sha256: str
    info: media.VideoInfo


class Transient(Exception):
    """A failure that may pass: worth another try while tries and the link last.

    ``reason`` is a few words for the page ("HTTP 500"), ``detail`` the error's own text.
    """

    def __init__(
        self, reason: str, detail: str = "", *, storage: bool = False, retry_after: float = 0
    ) -> None:
        super().__init__(reason)
        self.reason, self.detail = reason, detail or reason
        self.storage, self.retry_after = storage, retry_after


class Gone(Exception):
    pass


class Refused(Exception):
    """A failure no retry can mend: the clip fails with ``message``."""

    def __init__(self, code: str, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.code, self.message, self.detail = code, message, detail


class Stopped(Exception):
    """The clip left "Saving video" under us (another run finished it, or gave up)."""


def _http_client(clip: Clip) -> httpx.Client:
    timeout = httpx.Timeout(settings.DOWNLOAD_TIMEOUT_SECONDS, connect=10.0)
    return netguard.client(allow_private=clip.provider_account.is_sandbox, timeout=timeout)


def _task_seconds() -> float:
    """How long this task may work: the queue kills it at its timeout."""
    return _leftover_age() - FINISHING_SECONDS


def _leftover_age() -> float:
    # No run lives past the queue's timeout: an upload older than that was left by a dead one.
    return float(settings.Q_CLUSTER.get("timeout") or 600)


def _phase(clip: Clip, attempt: int, done: str = "") -> str:
    phase = "Saving the partial video" if clip.params.get("partial") else "Saving the video"
    if attempt > 1:
        phase += f" (try {attempt} of {MAX_ATTEMPTS})"
    return f"{phase}: {done}"[:80] if done else phase


def _failed_phase(clip: Clip, attempt: int, failure: Transient) -> str:
    phase = "Saving the partial video" if clip.params.get("partial") else "Saving the video"
    return f"{phase}: try {attempt} of {MAX_ATTEMPTS} failed ({failure.reason})"[:80]


# The clip's rows change here by conditional UPDATEs on the status, like the model's own
# transitions: a run whose clip was finished or given up meanwhile changes nothing.


def _start_attempt(clip: Clip) -> int | None:
    """Count one more try, unless another run counted it first or the clip moved on."""
    attempt = clip.mirror_attempts + 1
    started = Clip.objects.filter(
        pk=clip.pk, status=ClipStatus.MIRRORING, mirror_attempts=clip.mirror_attempts
    ).update(mirror_attempts=attempt, phase=_phase(clip, attempt))
    if not started:
        return None
    clip.mirror_attempts = attempt
    return attempt


def _show(clip: Clip, phase: str) -> None:
    if not Clip.objects.filter(pk=clip.pk, status=ClipStatus.MIRRORING).update(phase=phase):
        raise Stopped


def _key_prefix(clip: Clip) -> str:
    """What every try's video of this clip is named with, and its leftovers swept by."""
    return f"clips/{clip.project_id}/{clip.pk}-"


def _megabytes(count: int) -> str:
    return f"{count / 1_000_000:,.0f} MB"


def _download(clip: Clip, attempt: int, *, stop_at: float) -> Mirrored:
    """One try: the provider's body straight into storage, probed, under its final key."""
    with (
        _http_client(clip) as http,
        http.stream("GET", clip.result_url) as response,
    ):
        status = response.status_code
        if status in GONE:
            raise Gone(f"HTTP {status}")
        if status >= 500 or status in {408, 429}:
            retry_after = response.headers.get("Retry-After", "")
            raise Transient(
                f"HTTP {status}", retry_after=float(retry_after) if retry_after.isdigit() else 0
            )
        if status != 200:
            raise Refused(
                "download_refused",
                f"The provider's video link answered HTTP {status}, so the video could not "
                "be saved. Try again.",
            )
        declared = response.headers.get("Content-Length", "")
        total = int(declared) if declared.isdigit() else None
        if total is not None and total > MAX_VIDEO_BYTES:
            raise storage_upload.TooLarge
        shown_at = time.monotonic()
        # Its own key for each try: no two tries (nor two runs) write the same object.
        key = f"{_key_prefix(clip)}{secrets.token_hex(6)}.mp4"
        with storage_upload.receive(default_storage, key, max_bytes=MAX_VIDEO_BYTES) as incoming:
            for chunk in response.iter_bytes():
                incoming.write(chunk)
                now = time.monotonic()
                if now - shown_at >= PROGRESS_EVERY_SECONDS:
                    shown_at = now
                    done = _megabytes(incoming.size)
                    _show(
                        clip,
                        _phase(clip, attempt, f"{done} of {_megabytes(total)}" if total else done),
                    )
                    if now > stop_at:
                        raise Transient("too slow", "The download could not finish in time.")
            incoming.finish()
            with incoming.open() as stored:
                info = media.probe(stored)
            key = incoming.keep()
            return Mirrored(key=key, size=incoming.size, sha256=incoming.sha256, info=info)


def _attempt(clip: Clip, attempt: int, *, stop_at: float) -> Mirrored:
    """One try, its failures sorted into Transient, Gone and Refused."""
    try:
        return _download(clip, attempt, stop_at=stop_at)
    except netguard.BlockedURL as exc:
        raise Refused(
            "blocked_url", f"The studio did not download the provider's video: {exc.message}"
        ) from exc
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
        raise Refused(
            "bad_link", "The provider's video link is not a web address the studio can read."
        ) from exc
    except httpx.TimeoutException as exc:
        raise Transient("no answer in time", str(exc)) from exc
    except httpx.ConnectError as exc:
        raise Transient("could not connect", str(exc)) from exc
    except httpx.TransportError as exc:
        raise Transient("connection dropped", str(exc)) from exc
    except storage_upload.TooLarge as exc:
        raise Refused(
            "too_large",
            f"The provider's video is larger than the studio accepts "
            f"({MAX_VIDEO_BYTES // 1024**3} GiB).",
        ) from exc
    except media.NotAVideo as exc:
        raise Refused(
            "not_a_video", "The provider's file is not a playable video. Try again.", str(exc)
        ) from exc
    except (BotoCoreError, ClientError, OSError) as exc:
        raise Transient("storage error", str(exc), storage=True) from exc


def _wait_before(attempt: int, failure: Transient) -> float:
    wait = min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** (attempt - 1))
    return min(RETRY_MAX_SECONDS, max(wait, failure.retry_after))


def _give_up(clip: Clip, tries: int, failure: Transient | None) -> None:
    reason = failure.reason if failure else "the last try was interrupted"
    if failure is not None and failure.storage:
        message = (
            f"The video could not be saved to the studio's storage after {tries} tries. "
            "Nothing more will be tried; ask an admin to check the storage settings."
        )
    else:
        message = (
            f"The provider's video could not be downloaded after {tries} tries ({reason}). "
            "Nothing more will be tried; the provider may still show it in its dashboard."
        )
    clip.mark_failed(
        code="storage_failed" if failure and failure.storage else "download_failed",
        message=message,
        provider_message=failure.detail if failure else "",
    )


def _link_expired(clip: Clip) -> bool:
    return clip.result_expires_at is not None and timezone.now() >= clip.result_expires_at


def mirror_clip(*, clip_id: int) -> None:
    clip = Clip.objects.select_related("provider_account").get(pk=clip_id)
    if clip.status != ClipStatus.MIRRORING:
        return
    # Renewed while this run works: if its worker is killed, the safety net queues the clip
    # again within a minute; while it lives, never.
    with work_lease(clip, status=ClipStatus.MIRRORING):
        _mirror(clip)


def _mirror(clip: Clip) -> None:
    if not clip.result_url:
        clip.mark_failed(code="bad_link", message="The provider gave no link to the video.")
        return
    if clip.mirror_attempts:
        _sweep(clip)
    stop_at = time.monotonic() + _task_seconds()
    failure: Transient | None = None
    while True:
        if clip.mirror_attempts >= MAX_ATTEMPTS:
            _give_up(clip, clip.mirror_attempts, failure)
            return
        attempt = _start_attempt(clip)
        if attempt is None:
            return  # another run is on it, or the clip is no longer saving
        try:
            mirrored = _attempt(clip, attempt, stop_at=stop_at)
        except Stopped:
            return
        except Gone as exc:
            clip.mark_expired(
                message="The provider's download link expired before the video could be saved.",
                provider_message=str(exc),
            )
            return
        except Refused as exc:
            clip.mark_failed(code=exc.code, message=exc.message, provider_message=exc.detail)
            return
        except Transient as exc:
            failure = exc
            log.warning("clip %s: mirror try %s failed: %s", clip.pk, attempt, exc.detail)
        else:
            _record(clip, mirrored)
            return
        if attempt >= MAX_ATTEMPTS:
            _give_up(clip, attempt, failure)
            return
        if _link_expired(clip):
            clip.mark_expired(
                message=(
                    "The provider's download link expired while the studio was still "
                    f"trying to save the video ({failure.reason})."
                ),
                provider_message=failure.detail,
            )
            return
        wait = _wait_before(attempt, failure)
        if clip.result_expires_at is not None:
            wait = min(wait, max(0.0, (clip.result_expires_at - timezone.now()).total_seconds()))
        try:
            _show(clip, _failed_phase(clip, attempt, failure))
        except Stopped:
            return
        if time.monotonic() + wait > stop_at:
            return  # out of this task's time: the safety net queues the clip again later
        time.sleep(wait)


def _sweep(clip: Clip) -> None:
    """Remove what an earlier run killed mid-upload left (an unfinished upload, a file)."""

    def recorded() -> list[str]:
        return list(Clip.objects.filter(pk=clip.pk).values_list("file_key", flat=True))

    try:
        storage_upload.sweep(
            default_storage,
            prefix=_key_prefix(clip),
            older_than=_leftover_age(),
            in_use=recorded,
        )
    except (BotoCoreError, ClientError, OSError):
        # Storage trouble: the try that follows meets it too, and counts it.
        log.warning("clip %s: leftovers not swept", clip.pk, exc_info=True)


def _record(clip: Clip, mirrored: Mirrored) -> None:
    if not clip.mark_mirrored(
        file_key=mirrored.key,
        file_size=mirrored.size,
        sha256=mirrored.sha256,
        duration_seconds=mirrored.info.duration,
        width=mirrored.info.width,
        height=mirrored.info.height,
    ):
        # Another run got there first: keep theirs, drop ours (each try has its own key).
        default_storage.delete(mirrored.key)
        return
    log.info("clip %s: mirrored %s bytes to %s", clip.pk, mirrored.size, mirrored.key)
    enqueue("poster", clip.pk)
