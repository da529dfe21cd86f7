"""Trimming a chain's segments: in and out points within each clip's new footage.

The points count seconds from the clip's first new frame (``Clip.kept_range``), and are
moved onto the nearest frame of the clip's own video when they are set: a cut between two
frames does not exist, and the export, which can only keep whole frames, then lasts exactly
as long as the trimmed parts added up.
"""

from __future__ import annotations

from fractions import Fraction

import av
from django.core.files.storage import default_storage

from videos import review, storage_upload
from videos.models import Clip, ClipStatus

# The shortest part a segment may be trimmed to.
MIN_SECONDS = 0.5
# Below this, an in point at the start or an out point at the end is "not trimmed".
EPSILON = 1e-3


class TrimError(Exception):
    """A trim the studio refuses, with the reason in plain words and the field it is about."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def frame_rate(clip: Clip) -> Fraction | None:
    """The clip's frames per second, read from its stored video (None when unreadable)."""
    try:
        with (
            storage_upload.open_ranged(default_storage, clip.file_key) as video,
            av.open(video) as container,
        ):
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
    except (av.FFmpegError, OSError, IndexError):
        return None
    return Fraction(rate).limit_denominator(1001) if rate else None


def _on_a_frame(seconds: float, rate: Fraction | None) -> float:
    if not rate:
        return round(seconds, 3)
    return float(round(Fraction(seconds) * rate) / rate)


def set_trim(*, clip: Clip, user, cut_in: float | None, cut_out: float | None) -> None:
    """Keep ``cut_in``..``cut_out`` seconds of ``clip``'s new footage (None: from its start,
    to its end). Raises TrimError naming the field at fault."""
    if not clip.has_video or clip.status not in {ClipStatus.READY, ClipStatus.PARTIAL}:
        raise TrimError("Only a clip with a finished video can be trimmed.")
    start, end = clip.timeline_range()
    footage = end - start
    wanted_in = 0.0 if cut_in is None else cut_in
    wanted_out = footage if cut_out is None else cut_out
    if wanted_in < 0:
        raise TrimError("The in point cannot be before the start.", field="trim_in")
    if wanted_out > footage + EPSILON:
        raise TrimError(
            f"The out point is past the end: this part has {footage:.2f} s of new footage.",
            field="trim_out",
        )
    rate = frame_rate(clip)
    # Placed on frames of the clip's own video (where its new footage may itself start).
    at_in = _on_a_frame(start + wanted_in, rate) - start
    at_out = min(footage, _on_a_frame(start + wanted_out, rate) - start)
    if at_out - at_in < MIN_SECONDS - EPSILON:
        raise TrimError(
            f"Keep at least {MIN_SECONDS:g} s: the out point must be after the in point.",
            field="trim_out",
        )
    clip.trim_in = round(at_in, 6) if at_in > EPSILON else None
    clip.trim_out = round(at_out, 6) if at_out < footage - EPSILON else None
    clip.save(update_fields=["trim_in", "trim_out"])
    kept = (clip.trim_out if clip.trim_out is not None else footage) - (clip.trim_in or 0.0)
    review.record(
        project=clip.project,
        actor=user,
        verb="trimmed",
        clip=clip,
        summary=(
            f"trimmed clip {clip.pk} to {kept:.2f} s of its {footage:.2f} s"
            if clip.trim_in is not None or clip.trim_out is not None
            else f"played all of clip {clip.pk} again"
        ),
    )
