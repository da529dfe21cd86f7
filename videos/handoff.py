"""The hand-off still: the frame a continuation starts from, chosen and prepared.

A provider's last frames are not always its best (motion blur, a fade, a soft final frame),
and whatever the next clip starts from, it copies. So among the last HANDOFF_WINDOW seconds
the sharpest frame is taken, preferring the latest of those nearly as sharp, so that little
is repeated. Optionally its colours are matched to the chain's first part (Reinhard's
transfer: each Lab channel moved to the reference's mean and spread), which stops a drift
that each hop would otherwise carry on and add to.
"""

from __future__ import annotations

import base64
import io
from collections import deque
from dataclasses import dataclass
from typing import BinaryIO

import av
import numpy as np
from django.core.files.storage import default_storage
from PIL import Image

from videos import media, picture, seams, storage_upload
from videos.models import Clip

HANDOFF_WINDOW_SECONDS = 0.5
# "Nearly as sharp": a later frame within this share of the sharpest wins.
NEAR_ENOUGH = 0.85
# How far a colour match may stretch or squeeze a channel's spread.
SPREAD_LIMITS = (0.5, 2.0)


@dataclass(frozen=True)
class Pick:
    image: Image.Image
    at_seconds: float
    end_seconds: float
    sharpness: float
    last_sharpness: float
    considered: int


@dataclass(frozen=True)
class Handoff:
    still: media.Still
    at_seconds: float
    end_seconds: float
    sharpness: float
    last_sharpness: float
    matched: bool

    @property
    def before_end(self) -> float:
        return max(0.0, self.end_seconds - self.at_seconds)

    @property
    def last_is_softer(self) -> bool:
        """Whether the very last frame was passed over for being soft."""
        return self.last_sharpness < NEAR_ENOUGH * self.sharpness

    def as_json(self) -> dict:
        return {
            "at": round(self.at_seconds, 3),
            "end": round(self.end_seconds, 3),
            "sharpness": round(self.sharpness, 1),
            "last_sharpness": round(self.last_sharpness, 1),
            "matched": self.matched,
        }


def _decode_tail(container: av.container.InputContainer, keep: int) -> deque[av.VideoFrame]:
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    frames: deque[av.VideoFrame] = deque(maxlen=keep)
    if stream.duration and stream.time_base:
        # Lands on the keyframe before this point; decoding runs on to the end.
        container.seek(max(0, stream.duration - int(2 / stream.time_base)), stream=stream)
    frames.extend(container.decode(stream))
    if not frames:
        # A seek past the last keyframe's data on some files: read from the start.
        container.seek(0, stream=stream)
        frames.extend(container.decode(stream))
    return frames


def sharpest_near_end(source: str | BinaryIO, *, window: float = HANDOFF_WINDOW_SECONDS) -> Pick:
    """The sharpest of the last ``window`` seconds' frames (the latest of the near-sharpest)."""
    try:
        with av.open(source) as container:
            rate = container.streams.video[0].average_rate or 30
            # Only the window's frames are kept (as decoded, YUV): memory stays bounded.
            frames = _decode_tail(container, keep=max(1, int(float(rate) * window) + 1))
            if not frames:
                raise media.NotAVideo("The video has no frames.")
            end = frames[-1].time or 0.0
            candidates = [f for f in frames if (f.time or 0.0) >= end - window - 1e-6]
            scores = [seams.summarise(f).sharpness for f in candidates]
            best = max(scores)
            chosen = max(
                (n for n, score in enumerate(scores) if score >= NEAR_ENOUGH * best),
            )
            return Pick(
                image=candidates[chosen].to_image(),
                at_seconds=candidates[chosen].time or 0.0,
                end_seconds=end,
                sharpness=scores[chosen],
                last_sharpness=scores[-1],
                considered=len(candidates),
            )
    except (av.FFmpegError, IndexError) as exc:
        raise media.NotAVideo(f"No frame could be read: {exc}") from exc


def match_colours(image: Image.Image, reference: picture.Look) -> Image.Image:
    """``image`` with each Lab channel moved to ``reference``'s mean and spread."""
    lab = picture.to_lab(np.asarray(image.convert("RGB")))
    flat = lab.reshape(-1, 3)
    mean, spread = flat.mean(axis=0), flat.std(axis=0)
    scale = np.clip(np.array(reference.std) / np.maximum(spread, 1e-3), *SPREAD_LIMITS)
    matched = (lab - mean) * scale + np.array(reference.mean, dtype=np.float32)
    return Image.fromarray(picture.from_lab(matched))


def _jpeg(image: Image.Image, *, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def pick(clip: Clip) -> Pick:
    with storage_upload.open_ranged(default_storage, clip.file_key) as video:
        return sharpest_near_end(video)


def prepare(
    picked: Pick, *, reference: picture.Look | None = None, min_short_side: int = 0
) -> Handoff:
    """The still to send: colour-matched when given a reference, scaled up to the next
    provider's smallest accepted size, as a JPEG."""
    image = picked.image if reference is None else match_colours(picked.image, reference)
    short = min(image.width, image.height)
    if short < min_short_side:
        scale = min_short_side / short
        image = image.resize(
            (round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS
        )
    return Handoff(
        still=media.Still(content=_jpeg(image, quality=95), width=image.width, height=image.height),
        at_seconds=picked.at_seconds,
        end_seconds=picked.end_seconds,
        sharpness=picked.sharpness,
        last_sharpness=picked.last_sharpness,
        matched=reference is not None,
    )


def preview_uri(content: bytes, *, max_width: int = 480) -> str:
    """A small JPEG of a still as a data: URI, for the continue page."""
    with Image.open(io.BytesIO(content)) as image:
        image = image.convert("RGB")
        if image.width > max_width:
            image = image.resize(
                (max_width, round(image.height * max_width / image.width)),
                Image.Resampling.LANCZOS,
            )
        return "data:image/jpeg;base64," + base64.b64encode(_jpeg(image, quality=82)).decode()
