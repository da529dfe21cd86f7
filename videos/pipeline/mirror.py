"""Mirror: copy a finished provider video into the studio's storage before its link expires."""

from __future__ import annotations

import hashlib
import logging
import tempfile

import httpx
from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from videos import media
from videos.models import Clip, ClipStatus
from videos.pipeline.common import enqueue

log = logging.getLogger(__name__)

MAX_VIDEO_BYTES = 4 * 1024**3


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
