"""Real H.264 MP4s for the sandbox, drawn with Pillow and encoded with PyAV.

Each video shows a scene derived from its prompt, a running timecode and a caption, so an
extension that starts its counter where the source ended visibly continues it. A video
asked for with a first frame starts from that picture instead, so a continuation from a
clip's last frame carries its look on, and seams and drift can be measured offline.
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
import textwrap
from collections.abc import Collection
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageCms, ImageDraw, ImageFilter, ImageFont

FPS = 24


def frame_size(aspect_ratio: str, resolution: str, max_edge: int) -> tuple[int, int]:
    """Pixel size for a provider's aspect ratio and resolution, capped at ``max_edge``."""
    short = {"480p": 480, "720p": 720, "1080p": 1080, "4k": 2160}.get(resolution.lower(), 720)
    try:
        w_ratio, h_ratio = (int(part) for part in aspect_ratio.split(":"))
    except ValueError:
        w_ratio, h_ratio = 16, 9
    if w_ratio >= h_ratio:
        height, width = short, short * w_ratio / h_ratio
    else:
        width, height = short, short * h_ratio / w_ratio
    scale = min(1.0, max_edge / max(width, height))
    # H.264 wants even dimensions.
    return int(width * scale) // 2 * 2, int(height * scale) // 2 * 2


def _palette(seed_text: str) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    digest = hashlib.sha256(seed_text.encode()).digest()
    hue = digest[0] / 255

    def rgb(h: float, light: float) -> tuple[int, int, int]:
        r = 0.5 + 0.5 * math.cos(2 * math.pi * (h + 0.0))
        g = 0.5 + 0.5 * math.cos(2 * math.pi * (h + 0.33))
        b = 0.5 + 0.5 * math.cos(2 * math.pi * (h + 0.67))
        return tuple(int(255 * light * c) for c in (r, g, b))  # type: ignore[return-value]

    return rgb(hue, 0.55), rgb(hue + 0.18, 0.22)


def _background(width: int, height: int, scene: str) -> Image.Image:
    top, bottom = _palette(scene)
    gradient = Image.linear_gradient("L").resize((width, height))
    return Image.composite(
        Image.new("RGB", (width, height), bottom), Image.new("RGB", (width, height), top), gradient
    )


# ``drift``: the warm cast one hop adds, as a shift of CIE L*, a*, b* (a warmer grade); a
# prompt-only video gains one step every DRIFT_SECONDS of its timecode.
DRIFT_STEP = (3.0, 3.0, 11.0)
DRIFT_SECONDS = 8.0
DRIFT_LEVELS_PER_STEP = 24
_SRGB = ImageCms.createProfile("sRGB")
_LAB = ImageCms.createProfile("LAB")
# ``blur_end``: how much of the end goes out of focus.
BLUR_END_SECONDS = 0.25
# How far (a share of the width) a video made from a still sways left and right and back.
SWAY = 0.02


def _cover(image: Image.Image, width: int, height: int) -> Image.Image:
    """``image`` scaled to fill width x height, centred, the overflow cropped."""
    scale = max(width / image.width, height / image.height)
    size = (max(width, round(image.width * scale)), max(height, round(image.height * scale)))
    resized = image.convert("RGB").resize(size, Image.Resampling.LANCZOS)
    left, top = (size[0] - width) // 2, (size[1] - height) // 2
    return resized.crop((left, top, left + width, top + height))


def _shifted(pixels: np.ndarray, dx: int) -> np.ndarray:
    """The picture moved ``dx`` pixels sideways, its edge column repeated into the gap."""
    if dx == 0:
        return pixels.copy()
    out = np.empty_like(pixels)
    if dx > 0:
        out[:, dx:] = pixels[:, :-dx]
        out[:, :dx] = pixels[:, :1]
    else:
        out[:, :dx] = pixels[:, -dx:]
        out[:, dx:] = pixels[:, -1:]
    return out


def warmer(image: Image.Image, steps: float) -> Image.Image:
    """``image`` with ``steps`` of the drift cast (gamut-limited, as a real grade is)."""
    if steps <= 0:
        return image
    to_lab = ImageCms.buildTransform(_SRGB, _LAB, "RGB", "LAB")
    to_rgb = ImageCms.buildTransform(_LAB, _SRGB, "LAB", "RGB")
    lab = np.asarray(ImageCms.applyTransform(image.convert("RGB"), to_lab))
    # Pillow's LAB keeps L* as 0-255 and a*, b* as signed bytes.
    lightness = lab[..., 0] + DRIFT_STEP[0] * 2.55 * steps
    channels = [np.clip(np.rint(lightness), 0, 255).astype(np.uint8)]
    for n in (1, 2):
        shifted = lab[..., n].view(np.int8) + DRIFT_STEP[n] * steps
        channels.append(np.clip(np.rint(shifted), -128, 127).astype(np.int8).view(np.uint8))
    return ImageCms.applyTransform(Image.fromarray(np.stack(channels, axis=-1), "LAB"), to_rgb)


class _Still:
    """Frames made from a first frame (and towards a last one): the picture sways and
    returns, as a camera settling, so motion shows and the last frame is the picture again."""

    def __init__(
        self,
        first: Image.Image,
        last: Image.Image | None,
        width: int,
        height: int,
        *,
        drift: bool,
    ) -> None:
        # A drifting provider grades its output one step warmer than the picture it got.
        steps = 1.0 if drift else 0.0
        self.first = np.asarray(warmer(_cover(first, width, height), steps))
        self.last = None if last is None else np.asarray(warmer(_cover(last, width, height), steps))
        self.amplitude = width * SWAY

    def picture(self, progress: float) -> np.ndarray:
        dx = round(self.amplitude * math.sin(2 * math.pi * progress))
        frame = _shifted(self.first, dx)
        if self.last is not None:
            # Smoothstep from the first picture to the last.
            weight = progress * progress * (3 - 2 * progress)
            frame = (frame * (1 - weight) + _shifted(self.last, dx) * weight).astype(np.uint8)
        return frame


def render_mp4(
    path: str | os.PathLike,
    *,
    seconds: float,
    width: int,
    height: int,
    scene: str,
    caption: str,
    label: str = "",
    start_at: float = 0.0,
    fps: int = FPS,
    first_frame: Image.Image | None = None,
    last_frame: Image.Image | None = None,
    effects: Collection[str] = (),
    sound: bool = False,
) -> Path:
    """Write an H.264 MP4 of exactly ``seconds`` to ``path`` (atomically).

    With ``first_frame`` the video starts from that picture (and ends on ``last_frame`` when
    given); otherwise it draws a scene from the prompt. ``effects`` are the sandbox's render
    faults (sandbox/faults.py): ``drift`` and ``blur_end``. ``sound`` adds an AAC track (a
    soft tone whose pitch follows the scene), as providers whose models make sound do.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    background = _background(width, height, scene)
    drift = "drift" in effects
    still = (
        None if first_frame is None else _Still(first_frame, last_frame, width, height, drift=drift)
    )
    graded: dict[int, tuple[Image.Image, tuple[int, ...], tuple[int, ...]]] = {}

    def scene_at(t: float) -> tuple[Image.Image, tuple[int, ...], tuple[int, ...]]:
        """The background, sun and bar colours at ``t``, warmed in small steps when drifting."""
        level = round(t / DRIFT_SECONDS * DRIFT_LEVELS_PER_STEP) if drift else 0
        if level not in graded:
            steps = level / DRIFT_LEVELS_PER_STEP
            colours = warmer(Image.new("RGB", (2, 1), (255, 214, 120)), steps)
            colours.putpixel((1, 0), warmer(Image.new("RGB", (1, 1)), steps).getpixel((0, 0)))
            graded[level] = (
                warmer(background, steps),
                colours.getpixel((0, 0)),
                colours.getpixel((1, 0)),
            )
        return graded[level]

    unit = max(8, height // 18)
    big = ImageFont.load_default(size=unit * 2)
    small = ImageFont.load_default(size=unit)
    lines = textwrap.wrap(caption, width=max(16, int(width / (unit * 0.55))))[:3]
    pad = unit // 2
    measure = ImageDraw.Draw(background)
    left, top, right, bottom = measure.textbbox((unit, unit), "00:00.00", font=big)
    counter_plate = (left - pad, top - pad, right + pad, bottom + pad)
    left, top, right, bottom = measure.textbbox(
        (width - unit, unit), label or " ", font=small, anchor="ra"
    )
    label_plate = (left - pad, top - pad, right + pad, bottom + pad)
    frames = max(1, round(seconds * fps))
    blurred_from = frames - round(BLUR_END_SECONDS * fps) if "blur_end" in effects else frames
    fd, tmp_name = tempfile.mkstemp(suffix=".mp4", dir=path.parent)
    os.close(fd)
    try:
        with av.open(tmp_name, "w", options={"movflags": "faststart"}) as container:
            stream = container.add_stream(
                "libx264", rate=fps, options={"preset": "veryfast", "crf": "30"}
            )
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.time_base = Fraction(1, fps)
            # Every stream is added before the first packet (the header names them all).
            audio = container.add_stream("aac", rate=AUDIO_RATE, layout="stereo") if sound else None
            radius = unit * 2
            for index in range(frames):
                t = start_at + index / fps
                if still is not None:
                    image = Image.fromarray(still.picture(index / frames))
                    draw = ImageDraw.Draw(image)
                else:
                    sky, sun, bar = scene_at(t)
                    image = sky.copy()
                    draw = ImageDraw.Draw(image)
                    # A sun that travels across the frame: motion that continues across segments.
                    x = int(width * (0.12 + 0.76 * ((t / 20) % 1.0)))
                    y = int(height * 0.45 + math.sin(t * 1.3) * height * 0.12)
                    draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=sun)
                    draw.rectangle((0, int(height * 0.72), width, height), fill=bar)
                minutes, secs = divmod(t, 60)
                # Counter and label sit on plates, so a video that starts from another's last
                # frame covers the counter it shows with its own, and nothing else changes.
                draw.rectangle(counter_plate, fill=(0, 0, 0))
                draw.text((unit, unit), f"{int(minutes):02d}:{secs:05.2f}", font=big, fill="white")
                if label:
                    draw.rectangle(label_plate, fill=(0, 0, 0))
                    draw.text(
                        (width - unit, unit), label, font=small, fill=(230, 230, 230), anchor="ra"
                    )
                if still is None:
                    for n, line in enumerate(lines):
                        draw.text(
                            (unit, int(height * 0.75) + n * int(unit * 1.3)),
                            line,
                            font=small,
                            fill="white",
                        )
                if index >= blurred_from:
                    depth = (index - blurred_from + 1) / (frames - blurred_from)
                    image = image.filter(ImageFilter.GaussianBlur(max(2.0, height / 80) * depth))
                frame = av.VideoFrame.from_image(image)
                frame.pts = index
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
            if audio is not None:
                _add_tone(container, audio, seconds=frames / fps, scene=scene, start_at=start_at)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


AUDIO_RATE = 48000
AUDIO_FRAME = 1024


def _add_tone(container, stream, *, seconds: float, scene: str, start_at: float) -> None:
    """A quiet stereo tone for ``seconds``, continuing in phase from ``start_at``."""
    pitch = 220 + hashlib.sha256(scene.encode()).digest()[1]
    total = round(seconds * AUDIO_RATE)
    for first in range(0, total, AUDIO_FRAME):
        count = min(AUDIO_FRAME, total - first)
        t = start_at + (first + np.arange(count)) / AUDIO_RATE
        wave = (0.12 * np.sin(2 * np.pi * pitch * t)).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(np.stack([wave, wave]), format="fltp", layout="stereo")
        frame.sample_rate = AUDIO_RATE
        frame.pts = first
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
