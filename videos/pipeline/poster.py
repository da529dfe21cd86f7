"""Poster: one JPEG frame of a mirrored clip's new footage, for the grid and the player."""

from __future__ import annotations

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from videos import media, storage_upload
from videos.models import Clip
from videos.pipeline.common import enqueue


def make_poster(*, clip_id: int) -> None:
    clip = Clip.objects.get(pk=clip_id)
    if not clip.file_key or clip.poster_key:
        return
    # An extension that returns the whole video shows its new footage, not the source's.
    start, end = clip.timeline_range()
    at = start + min(1.0, ((end - start) or 2.0) / 2)
    # Ranged reads: the header and the frames around the poster's time, not the whole video.
    with storage_upload.open_ranged(default_storage, clip.file_key) as video:
        jpeg = media.poster_jpeg(video, at_seconds=at)
    key = default_storage.save(f"posters/{clip.project_id}/{clip.pk}.jpg", ContentFile(jpeg))
    clip.set_poster(key)
    enqueue("score_seams", clip.pk)
