"""Integer rectangles in image pixels, shared by the Qt-free canvas model and the widgets."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np


class Rect(NamedTuple):
    """The pixels ``[x0, x1) x [y0, y1)`` of an image; empty when ``x1 <= x0`` or ``y1 <= y0``."""

    x0: int
    y0: int
    x1: int
    y1: int

    @classmethod
    def around(cls, xs: tuple[float, ...], ys: tuple[float, ...], pad: float = 0.0) -> Rect:
        """The smallest rectangle of whole pixels covering points ``(xs, ys)`` grown by ``pad``."""
        return cls(
            math.floor(min(xs) - pad),
            math.floor(min(ys) - pad),
            math.ceil(max(xs) + pad),
            math.ceil(max(ys) + pad),
        )

    @property
    def width(self) -> int:
        return max(0, self.x1 - self.x0)

    @property
    def height(self) -> int:
        return max(0, self.y1 - self.y0)

    @property
    def empty(self) -> bool:
        return self.x1 <= self.x0 or self.y1 <= self.y0

    @property
    def slices(self) -> tuple[slice, slice]:
        """``(rows, cols)`` to index a numpy array with."""
        return slice(self.y0, self.y1), slice(self.x0, self.x1)

    def clip(self, width: int, height: int) -> Rect:
        """This rectangle limited to an image of ``width`` x ``height``."""
        return Rect(
            max(0, min(self.x0, width)),
            max(0, min(self.y0, height)),
            max(0, min(self.x1, width)),
            max(0, min(self.y1, height)),
        )

    def union(self, other: Rect | None) -> Rect:
        if other is None or other.empty:
            return self
        if self.empty:
            return other
        return Rect(
            min(self.x0, other.x0),
            min(self.y0, other.y0),
            max(self.x1, other.x1),
            max(self.y1, other.y1),
        )


def bounding_rect(mask: np.ndarray) -> Rect | None:
    """The bounding rectangle of the True pixels of a 2-D bool array, or None if there are none.

    Costs a few milliseconds on an 8K mask: numpy's reductions along rows
    (``any(axis=1)``) are slow and ``argmax`` copies read-only arrays, so the
    first and last rows are found by testing blocks of rows from either end,
    and the columns by OR-ing the rows in between (a fast vectorised reduction).
    """
    h = mask.shape[0]
    if not mask.any():
        return None
    block = 64
    y0 = 0
    while not mask[y0 : y0 + block].any():
        y0 += block
    y0 += int(np.flatnonzero(mask[y0 : y0 + block].any(axis=1))[0])
    y1 = h
    while not mask[max(y0, y1 - block) : y1].any():
        y1 -= block
    start = max(y0, y1 - block)
    y1 = start + int(np.flatnonzero(mask[start:y1].any(axis=1))[-1]) + 1
    cols = np.flatnonzero(np.logical_or.reduce(mask[y0:y1], axis=0))
    return Rect(int(cols[0]), y0, int(cols[-1]) + 1, y1)
