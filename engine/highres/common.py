"""What every high-resolution strategy shares: the view of a job, crops, padding, the
model's fill at a working size, and the composite.

A strategy gets a :class:`View` (the model, the photo, the mask, the seeds, the cancel
token and a progress callback) and yields one full-resolution result per seed. Whatever
the strategy, the result takes hole pixels from the fill and every other pixel from the
photo, so known pixels stay bit-identical (:func:`composite`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from engine.jobs import CancelToken
from engine.models.base import InpaintModel


@dataclass(frozen=True)
class View:
    """The values every strategy works from.

    Attributes:
        model: the loaded model (its spec says its working size).
        image: RGB uint8 (H, W, 3), the full-resolution photo.
        mask: bool (H, W), True = hole.
        seeds: one per sample; every strategy asks the model for all of them through one
            :meth:`InpaintModel.generate` call per view of the photo.
        cancel: checked between crops, cells and samples.
        report: called with the share of the job done, in [0, 1].
    """

    model: InpaintModel
    image: np.ndarray
    mask: np.ndarray
    seeds: Sequence[int]
    cancel: CancelToken | None
    report: Callable[[float], None]


@dataclass(frozen=True)
class Box:
    """A rectangle ``[y0, y1) x [x0, x1)`` in full-resolution pixels."""

    y0: int
    y1: int
    x0: int
    x1: int

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.y0, self.y1), slice(self.x0, self.x1)

    def overlaps(self, other: Box) -> bool:
        return (
            self.y0 < other.y1 and other.y0 < self.y1 and self.x0 < other.x1 and other.x0 < self.x1
        )

    def union(self, other: Box) -> Box:
        return Box(
            min(self.y0, other.y0),
            max(self.y1, other.y1),
            min(self.x0, other.x0),
            max(self.x1, other.x1),
        )


def pad_to_multiple(
    image: np.ndarray, mask: np.ndarray, multiple: int
) -> tuple[np.ndarray, np.ndarray]:
    h, w = mask.shape
    return pad_to_shape(image, mask, (h + (-h) % multiple, w + (-w) % multiple))


def pad_to_shape(
    image: np.ndarray, mask: np.ndarray, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Pad image and mask at the bottom and right to ``shape`` (h, w); unchanged if equal."""
    h, w = mask.shape
    ph, pw = shape[0] - h, shape[1] - w
    if ph == 0 and pw == 0:
        return image, mask
    # Reflection gives the model plausible context in the padding; the mask is
    # reflected with it so undefined hole pixels stay flagged as hole.
    mode = cv2.BORDER_REFLECT_101 if min(h, w) > max(ph, pw) else cv2.BORDER_REPLICATE
    image = cv2.copyMakeBorder(image, 0, ph, 0, pw, mode)
    mask = cv2.copyMakeBorder(mask.view(np.uint8), 0, ph, 0, pw, mode).astype(bool)
    return image, mask


def downscale_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    # A working pixel that covers any hole pixel is a hole: its area average
    # would otherwise mix undefined hole values into "known" context.
    small = cv2.resize(mask.view(np.uint8), size, interpolation=cv2.INTER_AREA)
    grown = cv2.resize(mask.view(np.uint8) * np.uint8(255), size, interpolation=cv2.INTER_AREA)
    return (small > 0) | (grown > 0)


def fill_view(
    model: InpaintModel,
    image: np.ndarray,
    mask: np.ndarray,
    seeds: Sequence[int],
    cancel: CancelToken | None,
    max_side: int | None,
) -> Iterator[np.ndarray]:
    """Run the model on ``image`` scaled so its long side is at most ``max_side``.

    Yields one fill per seed at the size of ``image`` (only hole pixels are meaningful).
    """
    h, w = mask.shape
    scale = 1.0
    if max_side is not None and max(h, w) > max_side:
        scale = max_side / max(h, w)
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        work_image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        work_mask = downscale_mask(mask, size)
    else:
        work_image, work_mask = image, mask
    wh, ww = work_mask.shape
    work_image, work_mask = pad_to_multiple(work_image, work_mask, model.spec.size_multiple)
    for fill in model.generate(work_image, work_mask, seeds, cancel):
        fill = fill[:wh, :ww]
        if scale < 1.0:
            fill = cv2.resize(fill, (w, h), interpolation=cv2.INTER_CUBIC)
        yield fill


def fill_whole(view: View, max_side: int | None) -> Iterator[np.ndarray]:
    """The whole photo through the model, scaled so its long side is at most ``max_side``
    (strategies ``original`` and ``resize``, and ``cra`` for photos that fit)."""
    fills = fill_view(view.model, view.image, view.mask, view.seeds, view.cancel, max_side)
    for i, fill in enumerate(fills):
        view.report((i + 1) / len(view.seeds))
        yield composite(view.image, view.mask, fill)


def composite(image: np.ndarray, mask: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """Hole pixels from ``fill``, all others from ``image`` (bit-identical)."""
    return np.where(mask[..., None], fill, image)
