"""Seams and drift: is a chain still watchable where one part hands over to the next?

At each seam of the main line the last frame before it and the first after it are compared:
colour (histograms of the Lab a*b* plane, and the shift of the mean), brightness and
contrast (Lab L* mean and spread), sharpness (variance of the Laplacian) and motion (the
jump between the two frames against the usual frame-to-frame change either side). Each part
is also compared with the chain's first part (drift: a few frames sampled across each),
because hops that each look fine can add up to a chain whose end no longer matches its start.

Every measure runs on frames scaled to ANALYSIS_HEIGHT, so parts of different resolutions
compare fairly, and only the frames a measure needs are converted from the decoder's YUV.
Results live on the clip after the seam (``Clip.quality``): they depend only on its parent
and the chain's root, so a take scored once stays right whichever take is on the main line.
"""

from __future__ import annotations

import io
import math
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

import av
import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from videos import storage_upload
from videos.models import Clip, ClipStatus
from videos.picture import Look, Summary, compare, motion, sharpness
from videos.pipeline.common import enqueue

if TYPE_CHECKING:
    from videos.chains import Timeline

VERSION = 1
ANALYSIS_HEIGHT = 360
# Consecutive frames either side of a seam that tell how much the picture usually moves.
MOTION_FRAMES = 6
DRIFT_SAMPLES = 4
FULL_DECODE_GUARD = 1.0

# When a seam gets words (Lab units; ratios of the part after to the part before).
COLOUR_SHIFT = 4.0
COLOUR_CHANGE = 0.5
BRIGHTNESS_JUMP = 6.0
CONTRAST_RATIO = 1.25
SOFTER_RATIO = 0.6
MOTION_RATIO = 4.0
MOTION_FLOOR = 5.0
# When a part has drifted too far from the first part: a mean colour difference (CIE76 ΔE)
# most viewers notice side by side, or a change of contrast by a third.
DRIFT_WARN_DELTA_E = 10.0
DRIFT_WARN_CONTRAST = 1.33
# The drift chart's drawing area (SVG user units); the bottom band holds the part numbers.
CHART_WIDTH, CHART_HEIGHT, CHART_PAD, CHART_NUMBERS = 1000, 140, 14, 22


# --- reading frames ----------------------------------------------------------------------------


def summarise(frame: av.VideoFrame) -> Summary:
    """A decoded frame's sharpness (its luma at the analysis size) and small RGB copy, each
    scaled by the decoder's own area-averaging (swscale): cheaper than converting the whole
    frame to RGB."""
    height = min(ANALYSIS_HEIGHT, frame.height)
    width = max(8, round(frame.width * height / frame.height / 8) * 8)
    luma = frame.reformat(width=width, height=height, format="gray", interpolation="AREA")
    small = frame.reformat(
        width=width // 4, height=height // 4, format="rgb24", interpolation="AREA"
    )
    return Summary(small=small.to_ndarray(), sharpness=sharpness(luma.to_ndarray()))


@dataclass
class Part:
    """What the seams need of one part's new footage."""

    head: Summary
    tail: Summary
    head_motion: list[float]
    tail_motion: list[float]
    look: Look | None


def _consecutive(frames: list[Summary]) -> list[float]:
    return [motion(a, b) for a, b in zip(frames, frames[1:], strict=False)]


def read_part(
    source: str | BinaryIO, *, start: float, end: float, samples: int = DRIFT_SAMPLES
) -> Part:
    """One pass over the new footage [start, end): its first and last frames, the motion
    either end, and ``samples`` frames spread across it for its look (0: tail only, read
    from a seek near the end)."""
    head: list[Summary] = []
    sampled: list[Summary] = []
    wanted = [start + (n + 0.5) * (end - start) / samples for n in range(samples)]
    # Decoded frames are kept as they are (YUV) and converted only once known to be needed.
    tail: deque[av.VideoFrame] = deque(maxlen=MOTION_FRAMES)
    with av.open(source) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        seek_to = start if samples else max(start, end - 1.0)
        if seek_to > 0.5 and stream.time_base:
            # Lands on the keyframe before this point; decoding runs on from there.
            container.seek(int(seek_to / stream.time_base), stream=stream)
        skipping = False
        for frame in container.decode(stream):
            t = frame.time if frame.time is not None else 0.0
            # Between the head and the tail only a few samples are wanted: frames nothing
            # refers to need not be decoded (about half of them). Frame threads return frames
            # late, so every frame is decoded again well before the head and the tail.
            every_frame = t >= end - FULL_DECODE_GUARD or (
                samples > 0 and len(head) < MOTION_FRAMES and t >= start - FULL_DECODE_GUARD
            )
            if skipping == every_frame:
                skipping = not every_frame
                stream.codec_context.skip_frame = "NONREF" if skipping else "DEFAULT"
            if t < start - 0.001:
                continue
            summary = None
            if samples and len(head) < MOTION_FRAMES:
                summary = summarise(frame)
                head.append(summary)
            if wanted and t >= wanted[0]:
                while wanted and t >= wanted[0]:
                    wanted.pop(0)
                sampled.append(summary or summarise(frame))
            tail.append(frame)
    if not tail:
        raise ValueError("The video has no frames in its new footage.")
    tail_frames = [summarise(frame) for frame in tail]
    if not head:
        head = tail_frames[:1]
    return Part(
        head=head[0],
        tail=tail_frames[-1],
        head_motion=_consecutive(head),
        tail_motion=_consecutive(tail_frames),
        look=Look.of(sampled or [head[0], tail_frames[-1]]) if samples else None,
    )


def _tail_key(clip: Clip) -> str:
    return f"seams/v{VERSION}/{clip.project_id}/{clip.pk}-tail.npz"


def read_clip(clip: Clip, *, samples: int = DRIFT_SAMPLES) -> Part:
    start, end = clip.timeline_range()
    with storage_upload.open_ranged(default_storage, clip.file_key) as video:
        part = read_part(video, start=start, end=end, samples=samples)
    # The next part's seam needs this one's end: kept (a few kB), so that reading it does not
    # mean decoding this video again (one keyframe per clip is common: from the start).
    key = _tail_key(clip)
    if not default_storage.exists(key):
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            small=part.tail.small,
            sharpness=part.tail.sharpness,
            motion=np.array(part.tail_motion, dtype=np.float64),
        )
        default_storage.save(key, ContentFile(buffer.getvalue()))
    return part


def tail_of(clip: Clip) -> Part:
    """The end of a part (its head and look left out): as kept when it was read, or read."""
    key = _tail_key(clip)
    if not default_storage.exists(key):
        return read_clip(clip, samples=0)
    with default_storage.open(key, "rb") as handle:
        kept = np.load(io.BytesIO(handle.read()))
        tail = Summary(small=kept["small"], sharpness=float(kept["sharpness"]))
        motion_values = [float(value) for value in kept["motion"]]
    return Part(head=tail, tail=tail, head_motion=[], tail_motion=motion_values, look=None)


# --- seams ---------------------------------------------------------------------------------------


def measure_seam(before: Part, after: Part) -> dict:
    """The hand-over from ``before``'s last frame to ``after``'s first, with plain words."""
    shift = compare(Look.of([before.tail]), Look.of([after.head]))
    sharp_before, sharp_after = before.tail.sharpness, after.head.sharpness
    usual = before.tail_motion + after.head_motion
    typical = float(np.median(usual)) if usual else 0.0
    jump = motion(before.tail, after.head)
    seam = {
        **shift,
        "sharpness": round(sharp_after / max(sharp_before, 1e-6), 3),
        "motion": round(jump, 2),
        "typical_motion": round(typical, 2),
    }
    seam["notes"] = seam_notes(seam)
    return seam


def hue_shift(d_a: float, d_b: float) -> str | None:
    """Which way the colour moved in the a*b* plane, in a colourist's words (or None)."""
    if math.hypot(d_a, d_b) < COLOUR_SHIFT:
        return None
    angle = math.degrees(math.atan2(d_b, d_a)) % 360
    # Red through yellow is warmer, blue is cooler; between them green and magenta.
    if angle <= 110 or angle >= 330:
        return "warmer"
    if angle <= 200:
        return "towards green"
    if angle <= 290:
        return "cooler"
    return "towards magenta"


def seam_notes(seam: dict) -> list[str]:
    notes = []
    hue = hue_shift(seam["tint"], seam["warmth"])
    if hue:
        notes.append(f"colour shifted {hue}")
    elif seam["colour"] >= COLOUR_CHANGE and seam["delta_e"] >= COLOUR_SHIFT / 2:
        # A histogram alone also moves when only the focus changes; the mean must move too.
        notes.append("colours changed")
    if seam["brightness"] >= BRIGHTNESS_JUMP:
        notes.append("brightness jumped up")
    elif seam["brightness"] <= -BRIGHTNESS_JUMP:
        notes.append("brightness dropped")
    if seam["contrast"] >= CONTRAST_RATIO:
        notes.append("more contrast than the previous part")
    elif seam["contrast"] <= 1 / CONTRAST_RATIO:
        notes.append("flatter than the previous part")
    if seam["sharpness"] <= SOFTER_RATIO:
        notes.append("softer than the previous part")
    elif seam["sharpness"] >= 1 / SOFTER_RATIO:
        notes.append("sharper than the previous part")
    jump, typical = seam["motion"], seam["typical_motion"]
    if jump >= MOTION_RATIO * typical and jump - typical >= MOTION_FLOOR:
        notes.append("motion jump")
    return notes


def measure_drift(first: Look, part: Look) -> dict:
    drift = compare(first, part)
    contrast = drift["contrast"]
    drift["warn"] = drift["delta_e"] >= DRIFT_WARN_DELTA_E or not (
        1 / DRIFT_WARN_CONTRAST <= contrast <= DRIFT_WARN_CONTRAST
    )
    return drift


# --- scoring clips -------------------------------------------------------------------------------


def _scorable(clip: Clip) -> bool:
    return bool(clip.file_key) and clip.status in {ClipStatus.READY, ClipStatus.PARTIAL}


def is_scored(clip: Clip) -> bool:
    quality = clip.quality or {}
    if quality.get("version") != VERSION or "look" not in quality:
        return False
    return clip.parent_id is None or "seam" in quality


def _save(clip: Clip, **values) -> None:
    # Read again: the hand-off note (chains.continue_clip) shares the field.
    current = Clip.objects.filter(pk=clip.pk).values_list("quality", flat=True).first() or {}
    clip.quality = {**current, **values, "version": VERSION}
    clip.save(update_fields=["quality"])


def look_of(clip: Clip) -> Look:
    """A clip's look, measured once and kept (the first part's is every drift's reference)."""
    quality = clip.quality or {}
    if quality.get("version") == VERSION and "look" in quality:
        return Look.from_json(quality["look"])
    part = read_clip(clip)
    assert part.look is not None
    _save(clip, look=part.look.as_json())
    return part.look


def score_clip(*, clip_id: int) -> None:
    """Measure the seam before ``clip`` and its drift from the chain's first part."""
    clip = Clip.objects.filter(pk=clip_id).first()
    if clip is None or not _scorable(clip) or is_scored(clip):
        return
    if clip.parent_id is None:
        look_of(clip)
        return
    parent = Clip.objects.get(pk=clip.parent_id)
    root = clip.chain_root()
    if not _scorable(parent) or not _scorable(root):
        return
    first = look_of(root)
    part = read_clip(clip)
    _score(clip, before=tail_of(parent), part=part, first=first)


def _score(clip: Clip, *, before: Part, part: Part, first: Look) -> None:
    assert part.look is not None
    _save(
        clip,
        look=part.look.as_json(),
        seam=measure_seam(before, part),
        drift=measure_drift(first, part.look),
    )


def score_line(line: Timeline) -> None:
    """Every unscored part of a main line, each video read once (the bench's way, and what
    a whole chain needs at once)."""
    clips = [segment.clip for segment in line.segments]
    if not clips:
        return
    first_part = read_clip(clips[0])
    assert first_part.look is not None
    first = first_part.look
    if not is_scored(clips[0]):
        _save(clips[0], look=first.as_json())
    before = first_part
    for clip in clips[1:]:
        part = read_clip(clip)
        if not is_scored(clip):
            _score(clip, before=before, part=part, first=first)
        before = part


# --- the chain page ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeamView:
    position: int  # the part after the seam, 1-based
    at: float
    clip: Clip
    notes: list[str]
    values: dict


@dataclass(frozen=True)
class DriftPoint:
    position: int
    clip: Clip
    delta_e: float
    warn: bool
    x: float
    y: float
    words: str

    @property
    def label_y(self) -> float:
        # Above the point, or below it when the point is at the top of the chart.
        return self.y - 10 if self.y > 24 else self.y + 20


@dataclass(frozen=True)
class LineQuality:
    seams: list[SeamView]
    drift: list[DriftPoint]
    missing: list[Clip]
    first_warning: DriftPoint | None
    threshold_y: float
    polyline: str
    # Where the seams fall across the chart, and its bottom (the first part's look).
    boundaries: list[float]
    base_y: float
    threshold: float = DRIFT_WARN_DELTA_E
    width: int = CHART_WIDTH
    height: int = CHART_HEIGHT

    @property
    def numbers_y(self) -> float:
        return self.height - 6

    @property
    def threshold_label_y(self) -> float:
        return self.threshold_y - 5

    @property
    def complete(self) -> bool:
        return not self.missing

    def seam_before(self, clip: Clip) -> SeamView | None:
        return next((seam for seam in self.seams if seam.clip.pk == clip.pk), None)


def _drift_words(drift: dict) -> str:
    hue = hue_shift(drift["tint"], drift["warmth"])
    words = [hue] if hue else []
    if abs(drift["brightness"]) >= BRIGHTNESS_JUMP:
        words.append("brighter" if drift["brightness"] > 0 else "darker")
    if not 1 / CONTRAST_RATIO < drift["contrast"] < CONTRAST_RATIO:
        words.append("more contrast" if drift["contrast"] > 1 else "flatter")
    return ", ".join(words) or "close to the first part"


def line_quality(line: Timeline, *, queue_missing: bool = False) -> LineQuality:
    """What the chain page shows: a strip per seam and the drift line, from stored scores.

    With ``queue_missing``, parts not scored yet (made before scoring existed, or whose
    scoring was lost) are queued; the page polls until they are in.
    """
    segments = line.segments
    total = line.total or 1.0
    missing = [segment.clip for segment in segments if not is_scored(segment.clip)]
    if queue_missing:
        for clip in missing:
            enqueue("score_seams", clip.pk)
    scored = []
    for position, segment in enumerate(segments, start=1):
        quality = segment.clip.quality or {}
        drift = quality.get("drift") if position > 1 else None
        if position > 1 and not (is_scored(segment.clip) and drift):
            continue
        scored.append((position, segment, drift))
    top = max([2 * DRIFT_WARN_DELTA_E, *(d["delta_e"] * 1.15 for _, _, d in scored if d)])

    def y_of(value: float) -> float:
        bottom = CHART_HEIGHT - CHART_NUMBERS
        return round(bottom - min(value, top) / top * (bottom - CHART_PAD), 1)

    def x_of(seconds: float) -> float:
        return round(CHART_PAD + seconds / total * (CHART_WIDTH - 2 * CHART_PAD), 1)

    points = []
    for position, segment, drift in scored:
        x = x_of(segment.offset + segment.length / 2)
        value = drift["delta_e"] if drift else 0.0
        points.append(
            DriftPoint(
                position=position,
                clip=segment.clip,
                delta_e=value,
                warn=bool(drift and drift["warn"]),
                x=round(x, 1),
                y=y_of(value),
                words=_drift_words(drift) if drift else "the reference",
            )
        )
    seams = [
        SeamView(
            position=position,
            at=segment.offset,
            clip=segment.clip,
            notes=segment.clip.quality["seam"]["notes"],
            values=segment.clip.quality["seam"],
        )
        for position, segment, drift in scored
        if drift
    ]
    return LineQuality(
        seams=seams,
        drift=points,
        missing=missing,
        first_warning=next((point for point in points if point.warn), None),
        threshold_y=y_of(DRIFT_WARN_DELTA_E),
        polyline=" ".join(f"{point.x},{point.y}" for point in points),
        boundaries=[x_of(segment.offset) for segment in segments[1:]],
        base_y=y_of(0.0),
    )
