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


def sharpness(luma: np.ndarray) -> float:
    """Variance of the Laplacian of a luma plane (height x width): high for crisp edges, low
    for a soft picture. An RGB frame is turned into luma first."""
    g = gray(luma) if luma.ndim == 3 else luma.astype(np.float32)
    laplacian = 4 * g[1:-1, 1:-1] - g[:-2, 1:-1] - g[2:, 1:-1] - g[1:-1, :-2] - g[1:-1, 2:]
    return float(laplacian.var())


@dataclass(frozen=True)
class Summary:
    """What the seam measures need of one frame: its sharpness, and a small RGB copy (a
    quarter of the analysis size each way, area-averaged), in which fine detail, and so
    focus, drops out, leaving colour and the shapes that move."""

    small: np.ndarray
    sharpness: float


def motion(a: Summary, b: Summary) -> float:
    """Mean absolute luma difference of two frames (0-255), on their small copies.

    Each frame's mean is taken out first: a change of exposure is not movement (brightness
    has its own measure), and the small copies keep a change of focus from counting as one.
    """
    ga, gb = gray(a.small.astype(np.float32)), gray(b.small.astype(np.float32))
    return float(np.abs((ga - ga.mean()) - (gb - gb.mean())).mean())


@dataclass(frozen=True)
class Look:
    """The colour of some frames: Lab mean and spread, and an a*b* histogram."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    hist: tuple[float, ...]

    @classmethod
    def of(cls, frames: list[Summary]) -> Look:
        lab = np.concatenate([to_lab(frame.small).reshape(-1, 3) for frame in frames])
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
