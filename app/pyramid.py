"""Mip levels of a photo or mask, updated region by region, without Qt.

Level ``k`` is the image shrunk by ``2**k`` (each pixel the mean of a 2x2
block of level ``k - 1``; sizes round down, so a level covers the top-left
``size * 2**k`` pixels of the image and drops at most ``2**k - 1`` pixels at
the right and bottom edge, invisible at the zoom it is drawn at). The canvas
draws the level closest above the screen resolution, so a zoom-to-fit paint of
an 8K photo scales a 1920x1080 level instead of 33 megapixels. Levels are
built on first use; after an edit only the blocks under the changed
rectangle are recomputed.
"""

from __future__ import annotations

import cv2
import numpy as np

from app.geometry import Rect

# Levels stop once their long side would fall below this many pixels.
MIN_SIDE = 256


def _halve(region: np.ndarray) -> np.ndarray:
    """2x2 block means of an even-sized region (OpenCV's area filter at an exact factor 2)."""
    h, w = region.shape[:2]
    return cv2.resize(region, (w // 2, h // 2), interpolation=cv2.INTER_AREA)


class Pyramid:
    """Levels of a uint8 ``(H, W)`` or ``(H, W, C)`` array.

    Args:
        base: level 0; held by reference (never copied), so it must not be
            resized. After changing its pixels call :meth:`update`.
        gain: factor applied to level 0 before averaging; 255 turns a bool
            mask into an 8-bit coverage (level ``k >= 1`` = fraction of hole).
        blank: level 0 is all zeros, so levels start as zeros without reading it.
    """

    def __init__(self, base: np.ndarray, gain: int = 1, blank: bool = False) -> None:
        self._base = base
        self._gain = gain
        self._levels: dict[int, np.ndarray] = {}
        self._blank = blank
        h, w = base.shape[:2]
        self.max_level = 0
        while max(h >> (self.max_level + 1), w >> (self.max_level + 1)) >= MIN_SIDE:
            self.max_level += 1

    @property
    def base(self) -> np.ndarray:
        return self._base

    def set_base(self, base: np.ndarray) -> None:
        """Point level 0 at a new array of the same shape; then :meth:`update` where it differs."""
        if base.shape != self._base.shape:
            raise ValueError(f"new base has shape {base.shape}, expected {self._base.shape}")
        self._base = base

    def level(self, level: int) -> np.ndarray:
        """Level ``level`` (0 = the base itself), building it and the ones above on first use."""
        if level <= 0:
            return self._base
        level = min(level, self.max_level)
        if level not in self._levels:
            upper = self._source(level - 1)
            h, w = upper.shape[:2]
            if self._blank:
                shape = (h // 2, w // 2, *upper.shape[2:])
                self._levels[level] = np.zeros(shape, np.uint8)
            else:
                self._levels[level] = _halve(upper[: h // 2 * 2, : w // 2 * 2])
        return self._levels[level]

    def _source(self, level: int) -> np.ndarray:
        if level == 0:
            if self._blank or self._gain == 1:
                return self._base
            return self._base.view(np.uint8) * np.uint8(self._gain)
        return self.level(level)

    def update(self, rect: Rect) -> None:
        """Recompute the built levels where level 0 changed inside ``rect``."""
        self._blank = False
        for level in range(1, self.max_level + 1):
            if level not in self._levels:
                break
            # Blocks of the upper level that cover the rectangle, aligned to 2.
            upper = self._base if level == 1 else self._levels[level - 1]
            uh, uw = upper.shape[:2]
            x0, y0 = rect.x0 // 2 * 2, rect.y0 // 2 * 2
            x1 = min((rect.x1 + 1) // 2 * 2, uw // 2 * 2)
            y1 = min((rect.y1 + 1) // 2 * 2, uh // 2 * 2)
            if x1 <= x0 or y1 <= y0:
                break
            region = upper[y0:y1, x0:x1]
            if level == 1 and self._gain != 1:
                region = region.view(np.uint8) * np.uint8(self._gain)
            rect = Rect(x0 // 2, y0 // 2, x1 // 2, y1 // 2)
            self._levels[level][rect.slices] = _halve(region)

    def level_for_scale(self, scale: float) -> int:
        """The smallest level that still has at least one pixel per screen pixel at ``scale``."""
        level = 0
        while level < self.max_level and scale * (2 ** (level + 1)) <= 1.0:
            level += 1
        return level
