"""Hole masks for training and evaluation, in the style of the PConv paper.

Masks are bool ``(H, W)`` arrays, True = hole (the project's convention). Everything is
driven by a ``numpy.random.Generator``, so the same seed always draws the same mask.

* :func:`stroke_mask` — free-form strokes: thick polylines of random walks (DeepFill v2 style).
* :func:`irregular_mask` — strokes and blobs (ellipses) until the hole ratio lands inside a
  requested interval (the PConv paper's irregular masks, bucketed by hole ratio).
* :func:`eval_mask` — the fixed evaluation masks: a deterministic function of the image
  size, the hole-ratio bin and the case number.
"""

from __future__ import annotations

import hashlib

import cv2
import numpy as np

# The PConv paper's hole-ratio bins: (0.01, 0.1], (0.1, 0.2], ... (0.5, 0.6].
BINS: tuple[tuple[float, float], ...] = (
    (0.01, 0.1),
    (0.1, 0.2),
    (0.2, 0.3),
    (0.3, 0.4),
    (0.4, 0.5),
    (0.5, 0.6),
)


def bin_label(bounds: tuple[float, float]) -> str:
    return f"({bounds[0]:g}, {bounds[1]:g}]"


def _draw_stroke(canvas: np.ndarray, rng: np.random.Generator, scale: float) -> None:
    h, w = canvas.shape
    side = min(h, w)
    thickness = max(2, int(rng.uniform(0.015, 0.07) * side * scale))
    x, y = rng.uniform(0, w), rng.uniform(0, h)
    angle = rng.uniform(0, 2 * np.pi)
    for _ in range(int(rng.integers(2, 9))):
        angle += rng.uniform(-1.2, 1.2)
        length = rng.uniform(0.05, 0.3) * side * max(scale, 0.3)
        nx = float(np.clip(x + length * np.cos(angle), 0, w - 1))
        ny = float(np.clip(y + length * np.sin(angle), 0, h - 1))
        cv2.line(canvas, (int(x), int(y)), (int(nx), int(ny)), 1, thickness, cv2.LINE_8)
        cv2.circle(canvas, (int(nx), int(ny)), thickness // 2, 1, -1)
        x, y = nx, ny


def _draw_blob(canvas: np.ndarray, rng: np.random.Generator, scale: float) -> None:
    h, w = canvas.shape
    side = min(h, w)
    axes = (
        max(2, int(rng.uniform(0.03, 0.2) * side * scale)),
        max(2, int(rng.uniform(0.03, 0.2) * side * scale)),
    )
    center = (int(rng.uniform(0, w)), int(rng.uniform(0, h)))
    cv2.ellipse(canvas, center, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)


def stroke_mask(
    h: int, w: int, rng: np.random.Generator, max_strokes: int = 6, scale: float = 1.0
) -> np.ndarray:
    """Free-form strokes: 1..max_strokes thick random-walk polylines. bool (h, w), True = hole."""
    canvas = np.zeros((h, w), np.uint8)
    for _ in range(int(rng.integers(1, max_strokes + 1))):
        _draw_stroke(canvas, rng, scale)
    return canvas.astype(bool)


def irregular_mask(
    h: int,
    w: int,
    rng: np.random.Generator,
    ratio: tuple[float, float] = (0.01, 0.6),
    blob_share: float = 0.3,
) -> np.ndarray:
    """Strokes and blobs whose hole ratio lies in ``(ratio[0], ratio[1]]``.

    Shapes are added one by one; a shape that would overshoot the upper bound is drawn again
    smaller. The result always lies in the interval (a final top-up of small strokes guarantees
    the lower bound). bool (h, w), True = hole.
    """
    lo, hi = ratio
    target = rng.uniform(lo, hi)
    total = float(h * w)
    canvas = np.zeros((h, w), np.uint8)
    filled = 0.0
    scale = 1.0
    for _ in range(400):
        if filled / total > lo and filled / total >= target:
            break
        # Shapes get smaller as the remaining gap closes, so the ratio converges.
        gap = max(target - filled / total, 0.005)
        shape_scale = scale * min(1.0, 0.25 + 2.5 * gap)
        candidate = canvas.copy()
        if rng.random() < blob_share:
            _draw_blob(candidate, rng, shape_scale)
        else:
            _draw_stroke(candidate, rng, shape_scale)
        count = float(candidate.sum())
        if count / total <= hi:
            canvas, filled = candidate, count
        else:
            scale *= 0.7
    if not lo < filled / total <= hi:
        # Could not converge (tiny image): fall back to a rectangle of the target area.
        canvas[:] = 0
        side_h = max(1, round(np.sqrt(target * total * h / w)))
        side_w = max(1, round(target * total / side_h))
        y, x = int(rng.integers(0, h - min(side_h, h) + 1)), int(rng.integers(0, w - side_w + 1))
        canvas[y : y + side_h, x : x + side_w] = 1
    return canvas.astype(bool)


def training_mask(h: int, w: int, rng: np.random.Generator, settings: dict) -> np.ndarray:
    """One training mask following the config's ``masks`` section.

    ``settings``: ``{"min_ratio", "max_ratio", "stroke_share", "blob_share"}``; with
    probability ``stroke_share`` a free-form stroke mask, otherwise an irregular mask whose
    ratio is drawn uniformly over the bins inside [min_ratio, max_ratio].
    """
    lo = float(settings.get("min_ratio", 0.01))
    hi = float(settings.get("max_ratio", 0.6))
    if rng.random() < float(settings.get("stroke_share", 0.2)):
        mask = stroke_mask(h, w, rng)
        if lo < mask.mean() <= hi:
            return mask
    bins = [b for b in BINS if b[0] >= lo - 1e-9 and b[1] <= hi + 1e-9] or [(lo, hi)]
    bounds = bins[int(rng.integers(len(bins)))]
    return irregular_mask(h, w, rng, bounds, float(settings.get("blob_share", 0.3)))


def case_seed(*parts: object) -> int:
    """A stable 63-bit seed from labels (file, bin, case); independent of PYTHONHASHSEED."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def eval_mask(h: int, w: int, bin_index: int, case: int | str) -> np.ndarray:
    """The evaluation mask of ``case`` in hole-ratio bin ``BINS[bin_index]`` (deterministic)."""
    rng = np.random.default_rng(case_seed("eval-mask", h, w, bin_index, case))
    return irregular_mask(h, w, rng, BINS[bin_index])
