"""Video work with PyAV and Pillow: probing a file and drawing its poster."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import BinaryIO

import av
from PIL import Image


class NotAVideo(ValueError):
    pass


def _open(source: str | BinaryIO):
    # Files come from providers: tags that are not UTF-8 are read with replacement
    # characters, not raised as UnicodeDecodeError (PyAV's default), which is no FFmpeg error.
    return av.open(source, metadata_errors="replace")


@dataclass(frozen=True)
class VideoInfo:
    duration: float
    width: int
    height: int
    codec: str


def probe(source: str | BinaryIO) -> VideoInfo:
    try:
        with _open(source) as container:
            if not container.streams.video:
                raise NotAVideo("The file has no video stream.")
            stream = container.streams.video[0]
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                duration = container.duration / av.time_base
            else:
                duration = 0.0
            # Noise can pass for a raw H.263 or VVC stream (about 1 in 150 buffers of random
            # bytes), some with a plausible picture size, but never with a length: a file
            # with no length or no picture plays as nothing.
            if duration <= 0 or not (stream.codec_context.width and stream.codec_context.height):
                raise NotAVideo("The file has no length or no picture size: not a playable video.")
            return VideoInfo(
                duration=round(duration, 3),
                width=stream.codec_context.width,
                height=stream.codec_context.height,
                codec=stream.codec_context.name,
            )
    except av.FFmpegError as exc:
        raise NotAVideo(f"The file is not a readable video: {exc}") from exc


def poster_jpeg(source: str | BinaryIO, *, at_seconds: float = 1.0, max_width: int = 640) -> bytes:
    """A JPEG of the first frame at or after ``at_seconds`` (or the last one before it).

    Starts from the keyframe before that time, so a poster deep into a long video reads and
    decodes only its last few seconds (``source`` may be a ranged reader over S3).
    """
    image: Image.Image | None = None
    try:
        with _open(source) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            if at_seconds > 0 and stream.time_base:
                container.seek(int(at_seconds / stream.time_base), stream=stream)
            for frame in container.decode(stream):
                image = frame.to_image()
                if frame.time is not None and frame.time >= at_seconds:
                    break
            if image is None and at_seconds > 0:
                # A seek past the last keyframe's data on some files: read from the start.
                container.seek(0, stream=stream)
                for frame in container.decode(stream):
                    image = frame.to_image()
                    if frame.time is not None and frame.time >= at_seconds:
                        break
    except (av.FFmpegError, IndexError) as exc:
        raise NotAVideo(f"No frame could be read: {exc}") from exc
    if image is None:
        raise NotAVideo("The video has no frames.")
    if image.width > max_width:
        image = image.resize((max_width, round(image.height * max_width / image.width)))
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=82, optimize=True)
    return buffer.getvalue()


@dataclass(frozen=True)
class Still:
    content: bytes
    width: int
    height: int
    content_type: str = "image/jpeg"


def last_frame(source: str | BinaryIO, *, min_short_side: int = 0, quality: int = 95) -> Still:
    """The video's last frame as a JPEG: the first frame of a continuation.

    Kept at full size, or scaled up to ``min_short_side`` when the next provider refuses
    smaller images. Seeks to a keyframe shortly before the end instead of decoding the
    whole video, which matters for chains several minutes long.
    """
    image: Image.Image | None = None
    try:
        with _open(source) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            if stream.duration and stream.time_base:
                # Lands on the keyframe before this point; decoding runs on to the end.
                container.seek(max(0, stream.duration - int(2 / stream.time_base)), stream=stream)
            for frame in container.decode(stream):
                image = frame.to_image()
            if image is None:
                # A seek past the last keyframe's data on some files: read from the start.
                container.seek(0, stream=stream)
                for frame in container.decode(stream):
                    image = frame.to_image()
    except (av.FFmpegError, IndexError) as exc:
        raise NotAVideo(f"No frame could be read: {exc}") from exc
    if image is None:
        raise NotAVideo("The video has no frames.")
    short = min(image.width, image.height)
    if short < min_short_side:
        scale = min_short_side / short
        image = image.resize(
            (round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS
        )
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=quality)
    return Still(content=buffer.getvalue(), width=image.width, height=image.height)
