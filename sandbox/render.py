"""Real H.264 MP4s for the sandbox, drawn with Pillow and encoded with PyAV.

Each video shows a scene derived from its prompt, a running timecode and a caption, so an
extension that starts its counter where the source ended visibly continues it.
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
import textwrap
from fractions import Fraction
from pathlib import Path

import av
from PIL import Image, ImageDraw, ImageFont

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
) -> Path:
    """Write an H.264 MP4 of exactly ``seconds`` to ``path`` (atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    background = _background(width, height, scene)
    unit = max(8, height // 18)
    big = ImageFont.load_default(size=unit * 2)
    small = ImageFont.load_default(size=unit)
    lines = textwrap.wrap(caption, width=max(16, int(width / (unit * 0.55))))[:3]
    frames = max(1, round(seconds * fps))
    fd, tmp_name = tempfile.mkstemp(suffix=".mp4", dir=path.parent)
    os.close(fd)
    try:
        with av.open(tmp_name, "w", options={"movflags": "faststart"}) as container:
            stream = container.add_stream(
                "libx264", rate=fps, options={"preset": "veryfast", "crf": "30"}
            )
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.time_base = Fraction(1, fps)
            radius = unit * 2
            for index in range(frames):
                t = start_at + index / fps
                image = background.copy()
                draw = ImageDraw.Draw(image)
                # A sun that travels across the frame: motion that continues across segments.
                x = int(width * (0.12 + 0.76 * ((t / 20) % 1.0)))
                y = int(height * 0.45 + math.sin(t * 1.3) * height * 0.12)
                draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=(255, 214, 120))
                draw.rectangle((0, int(height * 0.72), width, height), fill=(0, 0, 0))
                minutes, secs = divmod(t, 60)
                draw.text((unit, unit), f"{int(minutes):02d}:{secs:05.2f}", font=big, fill="white")
                if label:
                    draw.text(
                        (width - unit, unit), label, font=small, fill=(230, 230, 230), anchor="ra"
                    )
                for n, line in enumerate(lines):
                    draw.text(
                        (unit, int(height * 0.75) + n * int(unit * 1.3)),
                        line,
                        font=small,
                        fill="white",
                    )
                frame = av.VideoFrame.from_image(image)
                frame.pts = index
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path
