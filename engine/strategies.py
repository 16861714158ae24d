"""High-resolution strategies shared by every model.

A model fills holes at its working size only; a strategy decides what it
sees and pastes its output back into the full-resolution photo:

- ``original``: the whole image, padded to the model's size multiple.
- ``resize``: the whole image scaled down to the model's native size and the
  fill scaled back up.
- ``cra``: contextual residual aggregation (:mod:`engine.cra`): the whole image
  at the native size, then the photo's own high frequencies borrowed from
  context cells into the hole, weighted by the model's attention.
- ``crop``: each hole region with a margin of context, scaled to the native
  size when larger, filled and pasted back; where crops overlap their fills
  are blended with weights that fall off towards each crop's edge (a
  feathered seam instead of a hard one).
- ``auto``: picks one per model and image (see :func:`choose_strategy`).

Whatever the strategy, the final composite takes hole pixels from the fill
and every other pixel from the input, so known pixels stay bit-identical.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np

from engine.errors import InvalidInputError
from engine.jobs import CancelToken
from engine.models.base import InpaintModel
from engine.registry import ModelSpec

SHARED_STRATEGIES = ("original", "resize", "crop", "cra")

# Shortest ramp (px, at full resolution) over which overlapping crops cross-fade.
FEATHER = 32
# Context kept around a hole's bounding box for classical models (their
# neighbourhood radius is a few pixels; more only costs time).
CLASSICAL_MARGIN = 16


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


def strategies_for(spec: ModelSpec) -> tuple[str, ...]:
    """Every strategy name a request for this model may give, ``auto`` first, no repeats."""
    return tuple(dict.fromkeys(("auto", *SHARED_STRATEGIES, *spec.strategies)))


def check_strategy(spec: ModelSpec, name: str) -> None:
    """Raise :class:`InvalidInputError` unless ``name`` is a strategy of :func:`strategies_for`."""
    if name not in strategies_for(spec):
        choices = ", ".join(strategies_for(spec))
        raise InvalidInputError(
            f"Strategy {name!r} is not available for {spec.label}; choose one of {choices}."
        )


def choose_strategy(spec: ModelSpec, image_shape: tuple[int, ...]) -> str:
    """The strategy ``auto`` stands for.

    Classical models work at any resolution: crops around the holes at full
    resolution. A learned model sees the whole image when it fits its native
    size; larger photos go through the model's own high-resolution strategy
    when it has one (e.g. ``cra``), else crops around the holes.
    """
    if spec.native_size is None:
        return "crop"
    if max(image_shape[:2]) <= spec.native_size:
        return "original"
    if "cra" in spec.strategies:
        return "cra"
    return "crop"


def _pad_to_multiple(
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


def _downscale_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
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
        work_mask = _downscale_mask(mask, size)
    else:
        work_image, work_mask = image, mask
    wh, ww = work_mask.shape
    work_image, work_mask = _pad_to_multiple(work_image, work_mask, model.spec.size_multiple)
    for fill in model.generate(work_image, work_mask, seeds, cancel):
        fill = fill[:wh, :ww]
        if scale < 1.0:
            fill = cv2.resize(fill, (w, h), interpolation=cv2.INTER_CUBIC)
        yield fill


def hole_boxes(mask: np.ndarray, spec: ModelSpec) -> list[Box]:
    """Crops to fill: one per hole region, with context, merged where that keeps them small.

    For learned models each hole's bounding box gets a margin of half its size
    (at least 1/8 of the native size) and is then grown to the native size
    when the image allows, so small holes are filled at the model's own scale
    with plenty of context. Overlapping crops are merged while the merged crop
    still fits the native size; larger overlapping crops stay separate and are
    cross-faded (see :func:`run_crop`). Classical models get a thin margin and
    every overlap is merged (they work at full resolution anyway).
    """
    h, w = mask.shape
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask.view(np.uint8), connectivity=8)
    native = spec.native_size
    boxes = []
    for x, y, bw, bh, _area in stats[1:count]:
        if native is None:
            margin_y = margin_x = CLASSICAL_MARGIN
        else:
            margin_y = margin_x = max(native // 8, max(bw, bh) // 2)
        y0, y1 = max(0, y - margin_y), min(h, y + bh + margin_y)
        x0, x1 = max(0, x - margin_x), min(w, x + bw + margin_x)
        if native is not None:
            y0, y1 = _grow(y0, y1, min(native, h), h)
            x0, x1 = _grow(x0, x1, min(native, w), w)
        boxes.append(Box(int(y0), int(y1), int(x0), int(x1)))
    return _merge(boxes, native)


def _grow(lo: int, hi: int, size: int, limit: int) -> tuple[int, int]:
    """Widen ``[lo, hi)`` symmetrically to at least ``size``, staying inside ``[0, limit)``."""
    missing = size - (hi - lo)
    if missing <= 0:
        return lo, hi
    lo = max(0, lo - missing // 2)
    hi = min(limit, lo + max(size, hi - lo))
    lo = max(0, hi - max(size, hi - lo))
    return lo, hi


def _merge(boxes: list[Box], native: int | None) -> list[Box]:
    merged = True
    while merged:
        merged = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a, b = boxes[i], boxes[j]
                if not a.overlaps(b):
                    continue
                u = a.union(b)
                if native is None or max(u.height, u.width) <= native or u in (a, b):
                    boxes[i] = u
                    del boxes[j]
                    merged = True
                    break
            if merged:
                break
    return boxes


def _feather_weight(box: Box, shape: tuple[int, int]) -> np.ndarray:
    """Weights in (0, 1] that fall off linearly towards the crop's inner edges.

    The ramp is a quarter of the crop's shorter side (at least FEATHER px): crops of a
    large hole are large, and a ramp of a fixed few pixels between two fills that
    disagree shows as a line inside the hole.
    """
    h, w = shape
    ramp = float(max(FEATHER, min(box.height, box.width) // 4))
    ys = np.arange(box.height, dtype=np.float32)
    xs = np.arange(box.width, dtype=np.float32)
    top = ys + 1 if box.y0 > 0 else np.full_like(ys, ramp)
    bottom = box.height - ys if box.y1 < h else np.full_like(ys, ramp)
    left = xs + 1 if box.x0 > 0 else np.full_like(xs, ramp)
    right = box.width - xs if box.x1 < w else np.full_like(xs, ramp)
    wy = np.minimum(np.minimum(top, bottom), ramp) / ramp
    wx = np.minimum(np.minimum(left, right), ramp) / ramp
    return np.minimum(wy[:, None], wx[None, :])


def run_whole(
    model: InpaintModel,
    image: np.ndarray,
    mask: np.ndarray,
    seeds: Sequence[int],
    cancel: CancelToken | None,
    report: Callable[[float], None],
    max_side: int | None,
) -> Iterator[np.ndarray]:
    """Strategies ``original`` (max_side None) and ``resize`` (max_side = native size)."""
    for i, fill in enumerate(fill_view(model, image, mask, seeds, cancel, max_side)):
        report((i + 1) / len(seeds))
        yield composite(image, mask, fill)


def run_crop(
    model: InpaintModel,
    image: np.ndarray,
    mask: np.ndarray,
    seeds: Sequence[int],
    cancel: CancelToken | None,
    report: Callable[[float], None],
) -> Iterator[np.ndarray]:
    """Strategy ``crop``: fill each hole region separately and paste it back."""
    boxes = hole_boxes(mask, model.spec)
    if len(boxes) == 1:
        # One crop: stream the samples as the model produces them.
        box = boxes[0]
        sl = box.slices
        fills = fill_view(model, image[sl], mask[sl], seeds, cancel, model.spec.native_size)
        for i, fill in enumerate(fills):
            out = image.copy()
            out[sl] = composite(image[sl], mask[sl], fill)
            report((i + 1) / len(seeds))
            yield out
        return
    steps = max(1, len(boxes) * len(seeds))
    workers = min(len(boxes), os.cpu_count() or 1) if model.parallel_views else 1
    native = model.spec.native_size
    # One generate call per crop with every seed (a multi-sample model ranks its draws
    # there); the crops advance in step, so each sample is ready as soon as its fills are.
    views = [iter(fill_view(model, image[b.slices], mask[b.slices], seeds, cancel, native))
             for b in boxes]  # fmt: skip
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for s in range(len(seeds)):
            out = image.copy()
            pending = _CrossFade(image.shape[:2])
            for b, (box, fill) in enumerate(zip(boxes, pool.map(next, views), strict=True)):
                pending.add(box, fill)
                report((s * len(boxes) + b + 1) / steps)
            pending.paste(out, mask)
            yield out


class _CrossFade:
    """Accumulates crop fills and blends them where crops overlap."""

    def __init__(self, shape: tuple[int, int]) -> None:
        self.shape = shape
        self.items: list[tuple[Box, np.ndarray]] = []

    def add(self, box: Box, fill: np.ndarray) -> None:
        self.items.append((box, fill))

    def paste(self, out: np.ndarray, mask: np.ndarray) -> None:
        # Group crops into clusters of overlapping crops so the float buffers
        # cover one cluster at a time rather than the whole (8K) image.
        clusters: list[list[int]] = []
        for i, (box, _) in enumerate(self.items):
            hits = [c for c in clusters if any(self.items[j][0].overlaps(box) for j in c)]
            merged = [i] + [j for c in hits for j in c]
            clusters = [c for c in clusters if c not in hits] + [merged]
        for cluster in clusters:
            bounds = self.items[cluster[0]][0]
            for j in cluster[1:]:
                bounds = bounds.union(self.items[j][0])
            acc = np.zeros((bounds.height, bounds.width, 3), np.float32)
            weight = np.zeros((bounds.height, bounds.width, 1), np.float32)
            for j in cluster:
                box, fill = self.items[j]
                wgt = _feather_weight(box, self.shape)[..., None]
                sl = (
                    slice(box.y0 - bounds.y0, box.y1 - bounds.y0),
                    slice(box.x0 - bounds.x0, box.x1 - bounds.x0),
                )
                acc[sl] += fill.astype(np.float32) * wgt
                weight[sl] += wgt
            blended = np.clip(acc / np.maximum(weight, 1e-6) + 0.5, 0, 255).astype(np.uint8)
            sl = bounds.slices
            out[sl] = composite(out[sl], mask[sl], blended)


def composite(image: np.ndarray, mask: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """Hole pixels from ``fill``, all others from ``image`` (bit-identical)."""
    return np.where(mask[..., None], fill, image)


def run_strategy(
    name: str,
    model: InpaintModel,
    image: np.ndarray,
    mask: np.ndarray,
    seeds: Sequence[int],
    cancel: CancelToken | None,
    report: Callable[[float], None],
) -> Iterator[np.ndarray]:
    """Yield one full-resolution result per seed using strategy ``name`` (not ``auto``)."""
    if name == "original":
        return run_whole(model, image, mask, seeds, cancel, report, None)
    if name == "resize":
        return run_whole(model, image, mask, seeds, cancel, report, model.spec.native_size)
    if name == "crop":
        return run_crop(model, image, mask, seeds, cancel, report)
    if name == "cra":
        from engine.cra import run_cra  # imports torch: only when used

        return run_cra(model, image, mask, seeds, cancel, report)
    check_strategy(model.spec, name)
    raise InvalidInputError(f"Strategy {name!r} has no runner.")
