"""Synthetic photo-like images and hole masks for benchmarks and tests.

Deterministic for a given seed, fast at 8K (everything is drawn at low
resolution and upsampled, plus fine grain), and free of any data download.
"""

from __future__ import annotations

import cv2
import numpy as np


def photo_like(height: int, width: int, seed: int = 0) -> np.ndarray:
    """An RGB uint8 (H, W, 3) image with smooth gradients, shapes, texture and grain."""
    rng = np.random.default_rng(seed)
    # Low-frequency "scene": a few random colours on a coarse grid, smoothly upsampled.
    coarse = rng.integers(30, 226, size=(6, 10, 3), dtype=np.uint8)
    image = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    # Mid-frequency structure: shapes with hard edges, like objects and horizons.
    scale = max(height, width) / 1000
    for _ in range(12):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        if rng.random() < 0.5:
            radius = int(rng.integers(20, 120) * scale) + 1
            cv2.circle(image, centre, radius, colour, -1, lineType=cv2.LINE_AA)
        else:
            size = (int(rng.integers(20, 200) * scale) + 1, int(rng.integers(20, 200) * scale) + 1)
            end = (centre[0] + size[0], centre[1] + size[1])
            cv2.rectangle(image, centre, end, colour, -1)
    # Texture (~64 px features, 1:1 at any size) and per-pixel grain like sensor noise.
    tex = rng.normal(0, 18, size=(max(2, height // 8), max(2, width // 8), 1)).astype(np.float32)
    tex = cv2.resize(tex, (width, height), interpolation=cv2.INTER_LINEAR)[..., None]
    grain = rng.integers(-6, 7, size=(height, width, 1), dtype=np.int16)
    out = image.astype(np.int16) + tex.astype(np.int16) + grain
    return np.clip(out, 0, 255).astype(np.uint8)


def hole_mask(
    height: int, width: int, ratio: float = 0.12, regions: int = 4, seed: int = 0
) -> np.ndarray:
    """A bool (H, W) mask (True = hole) of ``regions`` brushed blobs covering about ``ratio``."""
    rng = np.random.default_rng(seed + 1)
    mask = np.zeros((height, width), np.uint8)
    target = ratio * height * width
    # Each region is an ellipse-like blob plus a brush stroke, scaled to its share of the area.
    share = target / regions
    for _ in range(regions):
        ry = int(np.sqrt(share / np.pi) * rng.uniform(0.7, 1.3))
        rx = max(1, int(share / (np.pi * max(ry, 1))))
        cy = int(rng.integers(ry, max(ry + 1, height - ry)))
        cx = int(rng.integers(rx, max(rx + 1, width - rx)))
        angle = float(rng.uniform(0, 180))
        cv2.ellipse(mask, (cx, cy), (rx, max(ry, 1)), angle, 0, 360, 1, -1)
        thickness = max(2, min(height, width) // 60)
        end = (cx + int(rng.integers(-2 * rx, 2 * rx + 1)), cy + int(rng.integers(-ry, ry + 1)))
        cv2.line(mask, (cx, cy), end, 1, thickness)
    return mask.astype(bool)
