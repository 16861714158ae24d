"""Mask editing in plain numpy/OpenCV: brush segments, fills and whole-mask operations.

Masks are ``bool`` arrays of shape ``(H, W)`` with ``True`` = hole. Image
coordinates are floats with ``(0, 0)`` at the top-left corner of the first
pixel, so pixel ``(col, row)`` has its centre at ``(col + 0.5, row + 0.5)``.
Every function here works on the smallest region it can, so an edit on an 8K
mask costs in proportion to the area it touches, not to the photo.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from app.geometry import Rect, bounding_rect


def segment_rect(a: tuple[float, float], b: tuple[float, float], radius: float) -> Rect:
    """Pixels that a brush of ``radius`` moving from ``a`` to ``b`` may touch (unclipped)."""
    return Rect.around((a[0], b[0]), (a[1], b[1]), radius + 1)


def capsule(
    rect: Rect, a: tuple[float, float], b: tuple[float, float], radius: float
) -> np.ndarray:
    """Which pixels of ``rect`` a round brush covers while moving from ``a`` to ``b``.

    A pixel is covered when its centre lies within ``radius`` of the segment
    ``ab``. This is the limit of stamping round dabs infinitely close together,
    so a stroke is continuous whatever the mouse speed (no gaps between dabs).

    Returns:
        bool array of shape ``(rect.height, rect.width)``.
    """
    ax, ay = a
    dx, dy = b[0] - ax, b[1] - ay
    # Centres relative to a; a row vector and a column vector broadcast to the region.
    xs = np.arange(rect.x0, rect.x1, dtype=np.float32) + np.float32(0.5 - ax)
    ys = (np.arange(rect.y0, rect.y1, dtype=np.float32) + np.float32(0.5 - ay))[:, None]
    r2 = np.float32(radius * radius)
    length2 = dx * dx + dy * dy
    if length2 < 1e-12:
        return ys * ys + xs * xs <= r2
    # Projection of each centre on the segment, clamped to its ends.
    t = np.clip((ys * np.float32(dy) + xs * np.float32(dx)) * np.float32(1.0 / length2), 0, 1)
    px = xs - t * np.float32(dx)
    py = ys - t * np.float32(dy)
    return px * px + py * py <= r2


def polygon(
    shape: tuple[int, int], points: Sequence[tuple[float, float]]
) -> tuple[Rect, np.ndarray]:
    """Rasterise a closed polygon (lasso) given in image coordinates.

    A pixel is inside when its centre is (even-odd rule, left edges inclusive),
    the same centre rule as :func:`capsule`. Returns the clipped bounding
    rectangle and the bool coverage inside it (an empty rectangle when the
    polygon is outside the image or degenerate).
    """
    h, w = shape
    if len(points) < 3:
        return Rect(0, 0, 0, 0), np.zeros((0, 0), bool)
    xs, ys = zip(*points, strict=True)
    rect = Rect.around(xs, ys, 1).clip(w, h)
    if rect.empty:
        return rect, np.zeros((0, 0), bool)
    pts = np.asarray(points, np.float64)
    x0, y0 = pts[:, 0], pts[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    inside = np.zeros((rect.height, rect.width), bool)
    for row in range(rect.height):
        yc = rect.y0 + row + 0.5
        # Edges crossing the row's centre line (half-open in y, so vertices count once).
        crossing = (y0 <= yc) != (y1 <= yc)
        if not crossing.any():
            continue
        e = crossing.nonzero()[0]
        t = (yc - y0[e]) / (y1[e] - y0[e])
        b = np.sort(x0[e] + t * (x1[e] - x0[e]))
        # Pixel i is inside between a pair [left, right) when left <= i + 0.5 < right.
        lefts = np.ceil(b[0::2] - 0.5).astype(np.int64) - rect.x0
        rights = np.ceil(b[1::2] - 0.5).astype(np.int64) - rect.x0
        for left, right in zip(lefts, rights, strict=True):
            inside[row, max(0, left) : max(0, min(rect.width, right))] = True
    return rect, inside


def _disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def grow(mask: np.ndarray, pixels: int) -> tuple[Rect, np.ndarray] | None:
    """The mask dilated by a disk of ``pixels``: ``(region, new values)`` or None if empty."""
    return _morph(mask, pixels, cv2.dilate)


def shrink(mask: np.ndarray, pixels: int) -> tuple[Rect, np.ndarray] | None:
    """The mask eroded by a disk of ``pixels``: ``(region, new values)`` or None if empty."""
    return _morph(mask, pixels, cv2.erode)


def _morph(mask: np.ndarray, pixels: int, op) -> tuple[Rect, np.ndarray] | None:
    box = bounding_rect(mask)
    if box is None or pixels <= 0:
        return None
    h, w = mask.shape
    rect = Rect(box.x0 - pixels, box.y0 - pixels, box.x1 + pixels, box.y1 + pixels).clip(w, h)
    region = mask[rect.slices].view(np.uint8)
    # Outside the image counts as "not hole" for growing and as "hole" for
    # shrinking, so a hole touching the border is not eaten from the border.
    border = 0 if op is cv2.dilate else 1
    out = op(region, _disk(pixels), borderType=cv2.BORDER_CONSTANT, borderValue=border)
    return rect, out.view(bool)


def feather(mask: np.ndarray, pixels: int) -> tuple[Rect, np.ndarray] | None:
    """The mask with its outline smoothed over ``pixels`` (blur, then threshold at one half).

    Rounds jagged lasso and brush edges and closes pinholes smaller than the
    radius; the mask stays binary (a hole is either filled or not).
    """
    box = bounding_rect(mask)
    if box is None or pixels <= 0:
        return None
    h, w = mask.shape
    rect = Rect(box.x0 - pixels, box.y0 - pixels, box.x1 + pixels, box.y1 + pixels).clip(w, h)
    region = mask[rect.slices].view(np.uint8) * np.uint8(255)
    size = 2 * pixels + 1
    blurred = cv2.GaussianBlur(region, (size, size), pixels / 2, borderType=cv2.BORDER_REPLICATE)
    return rect, blurred >= 128
