"""Measures of video frames with numpy: colour in CIE Lab, sharpness, motion, a frame's look.

Pure functions on RGB arrays (uint8, height x width x 3); nothing here reads files or rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

AB_RANGE = 64.0
AB_BINS = 16


_SRGB_TO_LINEAR = np.where(
    np.arange(256) / 255 <= 0.04045,
    np.arange(256) / 255 / 12.92,
    ((np.arange(256) / 255 + 0.055) / 1.055) ** 2.4,
).astype(np.float32)
_RGB_TO_XYZ = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ],
    dtype=np.float32,
)
_WHITE = np.array([0.95047, 1.0, 1.08883], dtype=np.float32)
_EPSILON = (6 / 29) ** 3


def to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB (uint8, ..., 3) to CIE Lab (float32), D65 white."""
    xyz = (_SRGB_TO_LINEAR[rgb] @ _RGB_TO_XYZ.T) / _WHITE
    f = np.where(xyz > _EPSILON, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack(
        [116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])],
        axis=-1,
    ).astype(np.float32)


def from_lab(lab: np.ndarray) -> np.ndarray:
    """CIE Lab (float, ..., 3) back to sRGB uint8."""
    fy = (lab[..., 0] + 16) / 116
    f = np.stack([fy + lab[..., 1] / 500, fy, fy - lab[..., 2] / 200], axis=-1)
    xyz = np.where(f > 6 / 29, f**3, 3 * (6 / 29) ** 2 * (f - 4 / 29)) * _WHITE
    linear = np.clip(xyz @ np.linalg.inv(_RGB_TO_XYZ).T, 0, 1)
    srgb = np.where(linear <= 0.0031308, linear * 12.92, 1.055 * linear ** (1 / 2.4) - 0.055)
    return np.clip(np.rint(srgb * 255), 0, 255).astype(np.uint8)


def gray(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def sharpness(rgb: np.ndarray) -> float:
    """Variance of the Laplacian of the luma: high for crisp edges, low for a soft picture."""
    g = gray(rgb)
    laplacian = 4 * g[1:-1, 1:-1] - g[:-2, 1:-1] - g[2:, 1:-1] - g[1:-1, :-2] - g[1:-1, 2:]
    return float(laplacian.var())


def reduced(rgb: np.ndarray, factor: int = 4) -> np.ndarray:
    """The frame averaged over ``factor`` x ``factor`` blocks: fine detail (and so a frame's
    softness) drops out, leaving colour and the shapes that move."""
    height, width = rgb.shape[0] // factor * factor, rgb.shape[1] // factor * factor
    blocks = rgb[:height, :width].reshape(height // factor, factor, width // factor, factor, -1)
    return blocks.mean(axis=(1, 3)).astype(np.float32)


def motion(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute luma difference of two frames (0-255), over 4 x 4 blocks.

    Each frame's mean is taken out first: a change of exposure is not movement (brightness
    has its own measure), and the blocks keep a change of focus from counting as one.
    """
    ga, gb = gray(reduced(a)), gray(reduced(b))
    return float(np.abs((ga - ga.mean()) - (gb - gb.mean())).mean())


@dataclass(frozen=True)
class Look:
    """The colour of some frames: Lab mean and spread, and an a*b* histogram."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    hist: tuple[float, ...]

    @classmethod
    def of(cls, frames: list[np.ndarray]) -> Look:
        lab = np.concatenate(
            [to_lab(np.rint(reduced(frame)).astype(np.uint8)).reshape(-1, 3) for frame in frames]
        )
        hist, _, _ = np.histogram2d(
            lab[:, 1], lab[:, 2], bins=AB_BINS, range=[[-AB_RANGE, AB_RANGE]] * 2
        )
        hist = hist.ravel() / max(1.0, hist.sum())
        return cls(
            mean=tuple(round(float(v), 3) for v in lab.mean(axis=0)),
            std=tuple(round(float(v), 3) for v in lab.std(axis=0)),
            hist=tuple(round(float(v), 5) for v in hist),
        )

    def as_json(self) -> dict:
        return {"mean": list(self.mean), "std": list(self.std), "hist": list(self.hist)}

    @classmethod
    def from_json(cls, data: dict) -> Look:
        return cls(mean=tuple(data["mean"]), std=tuple(data["std"]), hist=tuple(data["hist"]))


def compare(before: Look, after: Look) -> dict[str, float]:
    """How ``after`` differs from ``before``: shifts of L*, a*, b*, ΔE, contrast, histogram."""
    d_l, d_a, d_b = (after.mean[n] - before.mean[n] for n in range(3))
    # Hellinger distance of the a*b* histograms: 0 the same colours, 1 none in common.
    overlap = sum(math.sqrt(p * q) for p, q in zip(before.hist, after.hist, strict=True))
    return {
        "brightness": round(d_l, 2),
        "tint": round(d_a, 2),
        "warmth": round(d_b, 2),
        "delta_e": round(math.sqrt(d_l**2 + d_a**2 + d_b**2), 2),
        "contrast": round(after.std[0] / max(before.std[0], 0.5), 3),
        "colour": round(math.sqrt(max(0.0, 1 - overlap)), 3),
    }
