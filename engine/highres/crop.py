"""Strategy ``crop``: each hole region with a margin of context, scaled to the model's
native size when larger, filled and pasted back; where crops overlap their fills are
blended with weights that fall off towards each crop's edge (a feathered seam instead of a
hard one). Classical models get full-resolution crops with a thin margin."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

from engine.highres.common import Box, View, composite, fill_view
from engine.registry import ModelSpec

# Shortest ramp (px, at full resolution) over which overlapping crops cross-fade.
FEATHER = 32
# Context kept around a hole's bounding box for classical models (their
# neighbourhood radius is a few pixels; more only costs time).
CLASSICAL_MARGIN = 16


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


def _feather_axes(box: Box, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Per row and per column of the crop, weights in (0, 1] that fall off linearly towards
    the crop's inner edges; a pixel's weight is the smaller of its row's and column's.

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
    return wy, wx


def run(view: View) -> Iterator[np.ndarray]:
    """Strategy ``crop``: fill each hole region separately and paste it back."""
    model, image, mask, seeds = view.model, view.image, view.mask, view.seeds
    cancel, report = view.cancel, view.report
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
        flat_out = out.reshape(-1, 3)  # a view: ``out`` is a whole contiguous photo
        for cluster in clusters:
            if len(cluster) == 1:
                # One crop: its hole pixels are its fill (what the blend of one gives).
                box, fill = self.items[cluster[0]]
                cv2.copyTo(fill, mask[box.slices].view(np.uint8), out[box.slices])
                continue
            bounds = self.items[cluster[0]][0]
            for j in cluster[1:]:
                bounds = bounds.union(self.items[j][0])
            # Only the hole's pixels are blended (every other pixel stays the photo's), so
            # the float buffers hold those alone: at 8K a few million, not the whole box.
            ys, xs = (v.astype(np.int32) for v in np.nonzero(mask[bounds.slices]))
            if ys.size == 0:
                continue
            acc = np.zeros((ys.size, 3), np.float32)
            weight = np.zeros((ys.size, 1), np.float32)
            contribution = np.empty_like(acc)
            for j in cluster:
                box, fill = self.items[j]
                # Dense over the group's hole pixels: outside this crop the weight is 0 and
                # adds exactly nothing (no scatter into the buffers).
                y, x = ys + (bounds.y0 - box.y0), xs + (bounds.x0 - box.x0)
                inside = (y >= 0) & (y < box.height) & (x >= 0) & (x < box.width)
                y, x = np.clip(y, 0, box.height - 1), np.clip(x, 0, box.width - 1)
                wy, wx = _feather_axes(box, self.shape)
                wgt = np.where(inside, np.minimum(wy[y], wx[x]), np.float32(0))[:, None]
                pixels = np.ascontiguousarray(fill).reshape(-1, 3).take(y * box.width + x, axis=0)
                np.multiply(pixels, wgt, out=contribution)  # in float32, as acc
                acc += contribution
                weight += wgt
            # The cluster's bounding box can hold holes of another cluster's crops: those
            # pixels have no weight here and keep what their own crops paste.
            ours = np.flatnonzero(weight[:, 0] > 0)
            blended = np.clip(acc[ours] / np.maximum(weight[ours], 1e-6) + 0.5, 0, 255)
            at = (ys[ours] + bounds.y0).astype(np.int64) * self.shape[1] + xs[ours] + bounds.x0
            flat_out[at] = blended.astype(np.uint8)
