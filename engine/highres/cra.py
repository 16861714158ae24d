"""Contextual residual aggregation (CRA): sharp high-resolution fills from a low-resolution model.

HiFill (Yi et al., CVPR 2020), section 3.1, done for any model and any aspect ratio:

1. The photo (H, W) is cut into a grid of square cells of ``cell`` pixels,
   ``native / 16`` cells along its long side (32 for a 512 model). It is
   reflect-padded to whole cells (at most ``cell - 1`` pixels, no squashing)
   and scaled down so a cell is 16 pixels: the model's working image, at most
   ``native`` on the long side, with the photo's own aspect ratio.
2. The model fills the hole at that size and says where each cell borrows from
   (:class:`engine.models.base.AttentionScores`, HiFill's ACM); a model without
   attention gets scores from its own fill (:func:`completion_scores`).
3. ``base`` = the low-resolution completion scaled back up (blurry). The
   residual ``photo - base`` holds the high frequencies of every context cell.
4. Each hole cell's residual is the score-weighted sum of the context cells'
   residuals (no learned parameters); ``base + residual`` fills the hole and
   every pixel outside it is the input's, bit for bit. With the texture option
   (``model.texture``) each hole cell instead copies the residual of the one
   context cell it weighs most, and neighbouring cells' copies cross-fade pixel by
   pixel with their contrast kept (:func:`copy_residuals`): the weighted sum of
   hundreds of similar cells cancels their texture (detail ratio 0.10 on the
   validation photos), the copy keeps it. A copy is never more contrasted than the
   known cells around its hole cell (:func:`copy_gain`): no grass streaks in a
   smooth sky (detail 0.50 at an L1 of 0.00775, the plain sum's 0.00743).
5. The fill's border is matched to the photo (:func:`border_shift`): the model
   fills whole working pixels, so where one straddles the hole's edge the step
   between its colour and the photo's shows as a line along the edge at full
   resolution. That step, the photo's mean minus the fill's across the edge on a
   grid of half a working pixel, is spread into the hole (push-pull) and added.

Step 4 is one matrix product, (hole cells x context cells) @ (context cells x
cell pixels), run in torch on the engine's device. It is done in chunks of
cell rows so its buffers stay below :data:`CHUNK_BYTES` whatever the hole:
memory grows with the photo (input, base, output), never photo x hole.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from engine.highres.common import View, downscale_mask, fill_whole, pad_to_multiple, pad_to_shape
from engine.jobs import CancelToken
from engine.models.base import AttentionScores, InpaintModel
from engine.models.torch_base import image_to_tensor, push_pull

# Side of a cell in the model's working image (HiFill: 512 / 32 cells).
LOW_CELL = 16
# Upper bound of the float buffers of one aggregation chunk.
CHUNK_BYTES = 48 * 2**20
# Softmax temperature of scores derived from a fill (as HiFill's ACM).
SOFTMAX_SCALE = 10.0
# border_shift measures the step at the hole's edge on a grid of 1 / BORDER_STEPS of a
# working pixel.
BORDER_STEPS = 2
# Rows of the full-resolution shift made at a time (bounds BorderShift.apply's buffers).
STRIP_ROWS = 256
# Hole pixels whose residuals copy_residuals copies at a time (about 100 MB of buffers).
COPY_CHUNK = 1 << 21
# copy_residuals' bilinear weights are raised to this power: each pixel mostly takes one
# cell's copy and the cross-fade narrows to the cells' edges (measured on the validation
# photos: power 1 detail 0.30-0.36, 4 0.43-0.51, 12 0.49-0.57 with more visible patches).
BLEND_POWER = 4
# cell_energy reads every ENERGY_STRIDE-th pixel of a cell in each direction.
ENERGY_STRIDE = 4


@dataclass(frozen=True)
class Grid:
    """The cell grid of a photo: ``rows x cols`` cells of ``cell x cell`` pixels."""

    rows: int
    cols: int
    cell: int

    @property
    def padded_shape(self) -> tuple[int, int]:
        return self.rows * self.cell, self.cols * self.cell

    @property
    def low_shape(self) -> tuple[int, int]:
        return self.rows * LOW_CELL, self.cols * LOW_CELL


def plan_grid(height: int, width: int, native: int) -> Grid:
    """Cells so that the long side has ``native / 16`` of them, each at least 16 px."""
    cell = max(LOW_CELL, math.ceil(max(height, width) / (native // LOW_CELL)))
    return Grid(math.ceil(height / cell), math.ceil(width / cell), cell)


def completion_scores(fill: torch.Tensor, holes: torch.Tensor, cell: int) -> torch.Tensor:
    """Attention scores from a low-resolution completion, for models without attention.

    Each cell is described by its 4 x 4 average-pooled colours, centred on the image's
    mean colour; scores are the softmax (scale 10) of cosine similarities to context cells.

    Args:
        fill: float (1, 3, h, w) completion in [0, 1], h and w multiples of ``cell``.
        holes: bool (L,) hole cells.
        cell: cell side in pixels of ``fill``.

    Returns:
        float (L, L); hole rows sum to 1 over context cells.
    """
    pool = max(1, cell // 4)
    feats = F.avg_pool2d(fill.float(), pool)
    feats = feats - feats.mean(dim=(2, 3), keepdim=True)
    sub = cell // pool
    _, c, h, w = feats.shape
    cells = feats.reshape(c, h // sub, sub, w // sub, sub).permute(1, 3, 0, 2, 4)
    cells = F.normalize(cells.reshape((h // sub) * (w // sub), -1), dim=1, eps=1e-6)
    logits = (cells @ cells.T * SOFTMAX_SCALE).masked_fill(holes[None, :], float("-inf"))
    return torch.nan_to_num(torch.softmax(logits, dim=1), nan=0.0)


def _cell_rows(t: torch.Tensor, grid: Grid) -> torch.Tensor:
    """(H', W', ...) -> a (H' * cols, cell * ...) view (no copy): row ``(y * cols + k)`` is
    the pixels of row ``y`` that lie in column ``k`` of cells, contiguous."""
    return t.view(t.shape[0] * grid.cols, -1)


def _rows_of(grid: Grid, cell_row: torch.Tensor, cell_col: torch.Tensor, y0: int, y1: int):
    """Indices into :func:`_cell_rows` of rows ``y0:y1`` of each cell, cell by cell."""
    y = torch.arange(y0, y1, device=cell_row.device)
    return ((cell_row[:, None] * grid.cell + y) * grid.cols + cell_col[:, None]).flatten()


def aggregate_residuals(
    out: torch.Tensor,
    image: torch.Tensor,
    base: torch.Tensor,
    mask: torch.Tensor,
    grid: Grid,
    weights: torch.Tensor,
    hole_idx: torch.Tensor,
    context_idx: torch.Tensor,
    chunk_bytes: int = CHUNK_BYTES,
    cancel: CancelToken | None = None,
    on_chunk: Callable[[int], None] | None = None,
) -> None:
    """Write ``base + aggregated residual`` into the hole pixels of ``out`` (in place).

    Args:
        out: uint8 (H', W', 3) result buffer, a copy of ``image``; only hole pixels change.
        image: uint8 (H', W', 3) photo, sides ``grid.padded_shape``.
        base: uint8 (H', W', 3) upsampled low-resolution completion.
        mask: bool (H', W'), True = hole.
        grid: the cell grid.
        weights: float (n_hole, n_context); row i: weights of hole cell ``hole_idx[i]``
            over the context cells ``context_idx`` (rows sum to 1).
        hole_idx, context_idx: long (n_hole,), (n_context,) flat cell indices (row-major).
        chunk_bytes: bound of one chunk's float buffers.
        on_chunk: called with the byte size of each chunk's float buffers (for tests).
    """
    c = grid.cell
    hr, hc = hole_idx // grid.cols, hole_idx % grid.cols
    cr, cc = context_idx // grid.cols, context_idx % grid.cols
    out_r, image_r, base_r, mask_r = (_cell_rows(t, grid) for t in (out, image, base, mask))
    n_hole, n_ctx = weights.shape
    # Float buffers per cell-pixel row: context residual, product, hole base + sum.
    row_bytes = (n_ctx + 3 * n_hole) * c * 3 * 4
    step = max(1, min(c, chunk_bytes // max(row_bytes, 1)))
    weights = weights.float()
    for y0 in range(0, c, step):
        if cancel is not None:
            cancel.check()
        y1 = min(c, y0 + step)
        if on_chunk is not None:
            on_chunk(row_bytes * (y1 - y0))
        # Whole cell rows gathered at once (index_select: a copy per row, not per value);
        # the difference of whole levels first (exact in int16), one conversion to float.
        at = _rows_of(grid, cr, cc, y0, y1)
        ctx = image_r.index_select(0, at).to(torch.int16).sub_(base_r.index_select(0, at))
        residual = weights @ ctx.float().view(n_ctx, -1)
        del ctx
        at = _rows_of(grid, hr, hc, y0, y1)
        filled = base_r.index_select(0, at).float().add_(residual.view(len(at), -1))
        del residual
        filled = filled.round_().clamp_(0, 255).to(torch.uint8)
        hole = mask_r.index_select(0, at).repeat_interleave(3, dim=1)
        out_r.index_copy_(0, at, torch.where(hole, filled, out_r.index_select(0, at)))


def copy_residuals(
    out: torch.Tensor,
    image: torch.Tensor,
    base: torch.Tensor,
    mask: torch.Tensor,
    copies: torch.Tensor,
    grid: Grid,
    cancel: CancelToken | None = None,
    chunk: int = COPY_CHUNK,
    gain: torch.Tensor | None = None,
) -> None:
    """Write ``base + copied residual`` into the hole pixels of ``out`` (in place): the
    per-pixel version of :func:`aggregate_residuals`, for a working-size match (``copies``,
    see :class:`engine.models.base.AttentionScores`) instead of cell weights.

    Each hole pixel takes the residual (photo - base) at its offset scaled to full
    resolution, blended bilinearly between the matches of the four nearest working pixels:
    where neighbours copy from the same place (a coherent copy) the photo's detail comes
    back unchanged, and where they differ the copies cross-fade instead of meeting at a
    cell edge, with their contrast kept (variance-preserving blend). Only hole working
    pixels' matches count, and only known source pixels.
    """
    ph, pw = mask.shape
    lh, lw = copies.shape[:2]
    sy_scale, sx_scale = lh / ph, lw / pw
    # Flat tables, gathered with index_select / take (advanced indexing with two index
    # tensors goes value by value); ``out`` is written through its view.
    has = (copies != 0).any(-1).reshape(-1)
    copies_r = copies.reshape(-1, 2)
    gain_r = None if gain is None else gain.reshape(-1)
    out_r, image_r, base_r = (t.view(-1, 3) for t in (out, image, base))
    mask_r = mask.view(-1)
    ys_all, xs_all = mask.nonzero(as_tuple=True)
    for start in range(0, len(ys_all), chunk):
        if cancel is not None:
            cancel.check()
        ys, xs = ys_all[start : start + chunk], xs_all[start : start + chunk]
        v = (ys.float() + 0.5) * sy_scale - 0.5
        u = (xs.float() + 0.5) * sx_scale - 0.5
        y0, x0 = v.floor().long(), u.floor().long()
        fy, fx = (v - y0)[:, None], (u - x0)[:, None]
        corners = ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx),
                   (1, 0, fy * (1 - fx)), (1, 1, fy * fx))  # fmt: skip
        # Raised to the power relative to the largest, so no weight underflows.
        top = torch.stack([w for _, _, w in corners]).amax(0)
        acc = torch.zeros(len(ys), 3, device=out.device)
        weights, sources = [], []
        for dy, dx, w in corners:
            cell = (y0 + dy).clamp(0, lh - 1) * lw + (x0 + dx).clamp(0, lw - 1)
            offset = copies_r.index_select(0, cell).float()
            sy = (ys + torch.round(offset[:, 0] / sy_scale).long()).clamp(0, ph - 1)
            sx = (xs + torch.round(offset[:, 1] / sx_scale).long()).clamp(0, pw - 1)
            source = sy * pw + sx
            ok = (has.take(cell) & ~mask_r.take(source))[:, None].float()
            ok = ok * (w / top) ** BLEND_POWER
            # The difference of whole levels first (exact in int16), one conversion to float.
            residual = image_r.index_select(0, source).to(torch.int16)
            residual = residual.sub_(base_r.index_select(0, source)).float()
            if gain_r is not None:
                residual = residual * gain_r.take(cell)[:, None]
            acc += ok * residual
            weights.append(ok)
            sources.append(source)
        # Corners that copy the same source pixel carry the same residual; different copies
        # are uncorrelated, so a plain weighted mean of them loses contrast where they
        # cross-fade (to 1/sqrt(2) of it at equal weights). Dividing by the root of the summed
        # squared weight per source keeps one copy's contrast everywhere (a
        # variance-preserving blend, as Heitz and Neyret 2018 for texture tiles).
        square = torch.zeros(len(ys), 1, device=out.device)
        for a in range(4):
            for b in range(4):
                square += weights[a] * weights[b] * (sources[a] == sources[b])[:, None]
        at = ys * pw + xs
        filled = base_r.index_select(0, at).float() + acc / square.sqrt().clamp_min(1e-6)
        out_r.index_copy_(0, at, filled.round().clamp(0, 255).to(torch.uint8))


def cell_energy(image: torch.Tensor, base: torch.Tensor, grid: Grid) -> torch.Tensor:
    """(rows, cols): the mean squared residual (photo - base) of every cell, a row at a time,
    from every ``ENERGY_STRIDE``-th pixel of it in both directions (an estimate is enough)."""
    k = ENERGY_STRIDE if grid.cell % ENERGY_STRIDE == 0 else 1
    side = grid.cell // k
    out = []
    for r in range(grid.rows):
        rows = slice(r * grid.cell, (r + 1) * grid.cell, k)
        d = (image[rows, ::k].float() - base[rows, ::k].float()).square().mean(-1)
        out.append(d.view(side, grid.cols, side).mean((0, 2)))
    return torch.stack(out)


def copy_gain(energy: torch.Tensor, holes: torch.Tensor, copies: torch.Tensor) -> torch.Tensor:
    """(rows, cols) factor for each cell's copied residual (``copies`` as
    :func:`best_cell_offsets`): a hole cell's copy is brought down to the contrast the known
    cells around it have (their energy spread into the hole by push-pull), never up, so a
    copy of grass does not streak a smooth sky or sea."""
    rows, cols = energy.shape
    known = (~holes).view(1, 1, rows, cols).float()
    e = energy.view(1, 1, rows, cols)
    expected = push_pull(e * known, known)[0, 0]
    ys, xs = torch.meshgrid(
        torch.arange(rows, device=copies.device),
        torch.arange(cols, device=copies.device),
        indexing="ij",
    )
    sy = (ys + copies[..., 0]).clamp(0, rows - 1)
    sx = (xs + copies[..., 1]).clamp(0, cols - 1)
    return (expected / energy[sy, sx].clamp_min(1e-2)).sqrt().clamp(max=1.0)


def best_cell_offsets(
    weights: torch.Tensor, hole_idx: torch.Tensor, context_idx: torch.Tensor, grid: Grid
) -> torch.Tensor:
    """(rows, cols, 2) long: for each hole cell, the (row, col) offset to the context cell
    it weighs most (0 for context cells), the copies :func:`copy_residuals` blends."""
    best = context_idx[weights.argmax(dim=1)]
    offsets = torch.zeros(grid.rows * grid.cols, 2, dtype=torch.long, device=weights.device)
    offsets[hole_idx, 0] = best // grid.cols - hole_idx // grid.cols
    offsets[hole_idx, 1] = best % grid.cols - hole_idx % grid.cols
    return offsets.view(grid.rows, grid.cols, 2)


def _tensor(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """A tensor sharing ``array``'s memory on the CPU (a read-only input is never written)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(array).to(device)


def _low_fills(
    model: InpaintModel,
    image: np.ndarray,
    mask: np.ndarray,
    seeds: Sequence[int],
    cancel: CancelToken | None,
) -> Iterator[tuple[np.ndarray, AttentionScores | None]]:
    """The model's fills of the working image (padded to its size multiple if needed) with
    their attention, one per seed, from one :meth:`InpaintModel.generate` call."""
    h, w = mask.shape
    padded_image, padded_mask = pad_to_multiple(image, mask, model.spec.size_multiple)
    for fill, attention in model.generate(padded_image, padded_mask, seeds, cancel, True):
        if attention is not None and padded_mask.shape != mask.shape:
            attention = None  # its grid covers the padding; derive scores instead
        yield fill[:h, :w], attention


def cell_weights(
    attention: AttentionScores | None,
    fill: np.ndarray,
    holes: torch.Tensor,
    device: torch.device | str,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(weights (n_hole, n_context), hole_idx, context_idx) for the grid whose hole cells are given.

    Uses the model's scores when they are on this grid, else :func:`completion_scores`.
    Rows are renormalised over the context cells (a model may count a border cell as
    hole that has no hole pixel at full resolution).
    """
    hole_idx = holes.nonzero().squeeze(1)
    context_idx = (~holes).nonzero().squeeze(1)
    n = holes.numel()
    scores = None
    if (
        attention is not None
        and attention.scores is not None
        and attention.cell == LOW_CELL
        and attention.scores.shape == (n, n)
    ):
        scores = attention.scores.to(device).float()
    if scores is None:
        scores = completion_scores(image_to_tensor(fill, device), holes, LOW_CELL)
    weights = scores[hole_idx][:, context_idx]
    total = weights.sum(dim=1, keepdim=True)
    # No usable weight at all: spread evenly (a hole cell must not stay residual-free).
    uniform = torch.full_like(weights, 1.0 / max(1, weights.shape[1]))
    weights = torch.where(total > 1e-6, weights / total.clamp_min(1e-12), uniform)
    return weights, hole_idx, context_idx


@dataclass(frozen=True)
class BorderShift:
    """What :func:`border_shift` measured: the shift on a coarse grid over ``box``."""

    spread: np.ndarray  # float32 (rows, cols, 3), one value per coarse pixel
    box: tuple[slice, slice]  # where in the padded photo the grid lies
    step: int  # side of a coarse pixel, photo pixels

    def apply(self, out: np.ndarray, mask: np.ndarray) -> None:
        """Add the shift, bilinear at full resolution, to the hole pixels of ``out`` (in place;
        the photo's other pixels keep their values). A strip of rows at a time."""
        hole, target = mask[self.box], out[self.box]
        h = hole.shape[0]
        for s0 in range(0, h, STRIP_ROWS):
            s1 = min(h, s0 + STRIP_ROWS)
            # Only the strip's columns that hold hole pixels (several holes leave wide gaps).
            cols = hole[s0:s1].any(axis=0).nonzero()[0]
            if cols.size == 0:
                continue
            x0, x1 = int(cols[0]), int(cols[-1]) + 1
            map_x = ((np.arange(x0, x1, dtype=np.float32) + 0.5) / self.step - 0.5)[None]
            map_y = ((np.arange(s0, s1, dtype=np.float32) + 0.5) / self.step - 0.5)[:, None]
            xs, ys = np.broadcast_arrays(map_x, map_y)
            shift = cv2.remap(
                self.spread, np.ascontiguousarray(xs), np.ascontiguousarray(ys),
                cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE,
            )  # fmt: skip
            strip = target[s0:s1, x0:x1]
            # Added in place where the mask is set: rounds and saturates, the rest untouched.
            hole_u8 = hole[s0:s1, x0:x1].view(np.uint8)
            cv2.add(strip, shift, dst=strip, mask=hole_u8, dtype=cv2.CV_8U)


def border_shift(
    image: np.ndarray, base: np.ndarray, mask: np.ndarray, grid: Grid
) -> BorderShift | None:
    """The shift that makes the fill meet the photo without a step at the hole's edge.

    Outside the hole the result is the photo, inside ``base`` plus texture. Near the hole ``base``
    comes from working pixels the model filled although part of each was known, so the two
    sides can differ by a few levels, visible as a line tracing the hole at full resolution.
    On a grid of half a working pixel, each grid pixel the hole's edge runs through measures
    the step: the photo's mean on its known side minus ``base``'s on its hole side (a
    texture's detail averages out over the pixel, the step does not). The steps are spread
    into the hole by push-pull (so its interior takes a smooth mix of those around it) and
    added to its pixels (:meth:`BorderShift.apply`). All arrays are the padded photo's: uint8
    (H, W, 3) and bool (H, W). None when there is nothing to shift.
    """
    rows, cols = mask.any(axis=1).nonzero()[0], mask.any(axis=0).nonzero()[0]
    if rows.size == 0:
        return None
    step = max(1, round(grid.cell / LOW_CELL / BORDER_STEPS))
    # The hole's bounding box and a margin of a few coarse pixels, on the coarse grid's lines.
    pad = 2 * BORDER_STEPS * step
    y0, x0 = (max(0, int(v) - pad) // step * step for v in (rows[0], cols[0]))
    y1, x1 = (
        min(n, int(v) + 1 + pad) for v, n in ((rows[-1], mask.shape[0]), (cols[-1], mask.shape[1]))
    )
    box = (slice(y0, y1), slice(x0, x1))
    hole = mask[box]
    h, w = hole.shape
    # Whole coarse pixels only (a ragged last row or column of pixels takes its neighbour's
    # shift when it is added below).
    ch, cw = h // step, w // step
    if ch == 0 or cw == 0:
        return None
    rows_per_strip = step * max(1, STRIP_ROWS // step)
    # Per coarse pixel, in float (a sliver's mean needs more than whole levels): the share of
    # known pixels, the photo's mean over them and base's mean over the hole's pixels; the
    # means only where the hole's edge runs through (elsewhere the weight below is 0).
    share = np.empty((ch, cw), np.float32)
    photo_side = np.zeros((ch, cw, 3), np.float32)
    fill_side = np.zeros((ch, cw, 3), np.float32)
    for s0 in range(0, ch * step, rows_per_strip):
        s1 = min(ch * step, s0 + rows_per_strip)
        c0, c1 = s0 // step, s1 // step
        known = (~hole[s0:s1, : cw * step]).astype(np.float32)
        share[c0:c1] = cv2.resize(known, (cw, c1 - c0), interpolation=cv2.INTER_AREA)
        edge = ((share[c0:c1] > 0) & (share[c0:c1] < 1)).any(axis=0).nonzero()[0]
        if edge.size == 0:
            continue
        # The columns of the edge's coarse pixels (whole ones: the x scale is step too).
        i0, i1 = int(edge[0]), int(edge[-1]) + 1
        cols = slice(i0 * step, i1 * step)
        size = (i1 - i0, c1 - c0)
        part = known[:, cols, None]
        photo = image[box][s0:s1, cols].astype(np.float32) * part
        photo_side[c0:c1, i0:i1] = cv2.resize(photo, size, interpolation=cv2.INTER_AREA)
        fill = base[box][s0:s1, cols].astype(np.float32) * (1.0 - part)
        fill_side[c0:c1, i0:i1] = cv2.resize(fill, size, interpolation=cv2.INTER_AREA)
    # Coarse pixels the hole's edge runs through: the photo's mean on their known side minus
    # the fill's on their hole side is the step there. Slivers of either side count less.
    step_there = photo_side / np.maximum(share, 1e-6)[..., None]
    step_there -= fill_side / np.maximum(1.0 - share, 1e-6)[..., None]
    weight = 4.0 * share * (1.0 - share)
    spread = push_pull(
        torch.from_numpy(step_there).permute(2, 0, 1)[None], torch.from_numpy(weight)[None, None]
    )[0]
    return BorderShift(np.ascontiguousarray(spread.permute(1, 2, 0).numpy()), box, step)


def run(view: View) -> Iterator[np.ndarray]:
    """Strategy ``cra``: yield one full-resolution result per seed (module docstring)."""
    model, image, mask, seeds = view.model, view.image, view.mask, view.seeds
    cancel, report = view.cancel, view.report
    h, w = mask.shape
    native = model.spec.native_size
    if native is None or max(h, w) <= native:
        # The model sees the photo as it is: there is no lost detail to restore.
        yield from fill_whole(view, None)
        return
    grid = plan_grid(h, w, native)
    device = torch.device(model.device if model.spec.uses_torch else "cpu")
    image_p, mask_p = pad_to_shape(image, mask, grid.padded_shape)
    lh, lw = grid.low_shape
    low_image = cv2.resize(image_p, (lw, lh), interpolation=cv2.INTER_AREA)
    low_mask = downscale_mask(mask_p, (lw, lh))
    # Full-resolution hole cells; the aggregation fills exactly these.
    holes_np = mask_p.reshape(grid.rows, grid.cell, grid.cols, grid.cell).any(axis=(1, 3))
    holes = torch.from_numpy(holes_np.reshape(-1)).to(device)
    image_t = _tensor(image_p, device)
    mask_t = _tensor(mask_p, device)
    for i, (fill, attention) in enumerate(_low_fills(model, low_image, low_mask, seeds, cancel)):
        # Only the fill's hole pixels are the model's: known pixels must be the photo's, or
        # the residual of context cells would carry the model's reconstruction error.
        fill = np.where(low_mask[..., None], fill, low_image)
        report((i + 0.5) / len(seeds))
        base = cv2.resize(fill, (grid.padded_shape[1], grid.padded_shape[0]), cv2.INTER_LINEAR)
        weights, hole_idx, context_idx = cell_weights(attention, fill, holes, device)
        out = image_p.copy()
        out_t = torch.from_numpy(out).to(device)
        base_t = torch.from_numpy(base).to(device)
        shift = border_shift(image_p, base, mask_p, grid)
        del base
        if model.texture and len(context_idx) > 0:
            copies = best_cell_offsets(weights, hole_idx, context_idx, grid)
            energy = cell_energy(image_t, base_t, grid)
            gain = copy_gain(energy, holes.view(grid.rows, grid.cols), copies)
            copy_residuals(out_t, image_t, base_t, mask_t, copies, grid, cancel, gain=gain)
        elif len(context_idx) == 0:
            # No context to borrow texture from: the upsampled fill alone.
            out_t = torch.where(mask_t[..., None], base_t, out_t)
        else:
            aggregate_residuals(
                out_t, image_t, base_t, mask_t, grid, weights, hole_idx, context_idx,
                cancel=cancel,
            )  # fmt: skip
        del base_t
        result = out_t.cpu().numpy()
        if shift is not None:
            shift.apply(result, mask_p)
        report((i + 1) / len(seeds))
        yield np.ascontiguousarray(result[:h, :w]) if result.shape[:2] != (h, w) else result
