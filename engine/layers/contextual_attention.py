"""DeepFill's contextual attention (Yu et al., CVPR 2018, section 4 and its public code).

A hole's features are rebuilt from the features of the known background, patch by patch:

1. Matching runs on the features scaled down by ``rate`` (2): every 3 x 3 patch of the
   background is a kernel, L2-normalised (norm at least 1e-4), and its convolution with the
   foreground is the cosine similarity of every foreground position to that patch.
2. A background patch that touches the hole (any hole pixel under its 3 x 3 window of the
   downscaled mask) is excluded; the mask is each batch item's own (the public code uses the
   first item's mask for the whole batch).
3. *Fuse*: the score map, seen as an image indexed by (background patch, foreground
   position), is convolved with a 3 x 3 identity kernel, once in row-major order and once in
   column-major order, so a match counts more when its neighbours match the neighbouring
   positions too (coherent copies win over isolated lookalikes).
4. Softmax with scale 10 over the background patches (excluded ones get zero weight; the
   public code multiplies the logits by the mask before and after the softmax, which leaves
   the weights a little short of summing to 1; here they are left out of the softmax).
5. Reconstruction: the weights paste the *raw* 4 x 4 background patches of the full-size
   features at stride 2 (a transposed convolution, done as unfold / matmul / fold) and the
   sum is divided by the 4 patches that overlap every pixel.

Everything is batched matrix products; the cost is quadratic in the number of positions
(4,096 at a 512 input), so the network only ever runs at its working size and the ``cra``
strategy takes it to full resolution with the same scores, pooled to its cells.

A fill only needs the positions whose output can reach the hole: ``forward(..., queries=)``
computes the scores, fuse and paste for those foreground positions alone (the fuse's
neighbours included, so they are the same numbers) and every other position pastes its own
raw patch (what a match on itself alone would paste). The matrix products then cost
in proportion to the share of positions asked for.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

SOFTMAX_SCALE = 10.0
# Smallest norm a background patch is divided by (the public code's 1e-4).
MIN_NORM = 1e-4
# Attention weights below this are set to 0 (see ContextualAttention.weights).
TINY_WEIGHT = 1e-20


def _diagonal_sum(x: torch.Tensor, kernel: int) -> torch.Tensor:
    """(N, A, B) -> same: the sum of ``x[a + k, b + k]`` for k in -r..r (zero beyond the
    ends), which is a convolution with a ``kernel x kernel`` identity matrix."""
    out = x.clone()
    for k in range(-(kernel // 2), kernel // 2 + 1):
        if k < 0:
            out[:, -k:, -k:] += x[:, :k, :k]
        elif k > 0:
            out[:, :-k, :-k] += x[:, k:, k:]
    return out


def _column_major_sum(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """:func:`_diagonal_sum` with kernel 3 of (N, L, L) scores whose two axes are positions
    in column-major order, computed in place of the row-major layout (no transposed copies
    of the L x L map). One step in column-major order is one row down, or from the bottom of
    a column to the top of the next; each of the four combinations of the two axes is a
    block of the (N, h, w, h, w) view. Terms are added in the same order as
    :func:`_diagonal_sum`'s, so the sums are bit-identical."""
    n = x.shape[0]
    v = x.view(n, h, w, h, w)
    out = x.clone()
    o = out.view(n, h, w, h, w)
    # The previous position (k = -1), then the next one (k = +1).
    o[:, 1:, :, 1:, :] += v[:, :-1, :, :-1, :]
    o[:, 0, 1:, 1:, :] += v[:, -1, :-1, :-1, :]
    o[:, 1:, :, 0, 1:] += v[:, :-1, :, -1, :-1]
    o[:, 0, 1:, 0, 1:] += v[:, -1, :-1, -1, :-1]
    o[:, :-1, :, :-1, :] += v[:, 1:, :, 1:, :]
    o[:, -1, :-1, :-1, :] += v[:, 0, 1:, 1:, :]
    o[:, :-1, :, -1, :-1] += v[:, 1:, :, 0, 1:]
    o[:, -1, :-1, -1, :-1] += v[:, 0, 1:, 0, 1:]
    return out


def _fuse(scores: torch.Tensor, grid: tuple[int, int], kernel: int) -> torch.Tensor:
    """Propagate scores (N, L, L) along the diagonal of the (foreground, background) map,
    first with positions in row-major order, then in column-major order (public code)."""
    n, lf, lb = scores.shape
    h, w = grid
    s = _diagonal_sum(scores, kernel)
    if kernel == 3 and h > 1 and w > 1:
        return _column_major_sum(s, h, w)

    def transpose(x: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
        # Reorder both axes from row-major (rows, cols) to column-major.
        x = x.reshape(n, rows, cols, rows, cols).permute(0, 2, 1, 4, 3)
        return x.reshape(n, lf, lb)

    return transpose(_diagonal_sum(transpose(s, h, w), kernel), w, h)


def _column_major_neighbours(
    h: int, w: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """For every position of an h x w grid (row-major index), the row-major index of the
    position before and after it in column-major order (-1 at the ends)."""
    order = torch.arange(h * w, device=device).view(h, w).t().reshape(-1)
    before = torch.full((h * w,), -1, dtype=torch.long, device=device)
    after = before.clone()
    before[order[1:]] = order[:-1]
    after[order[:-1]] = order[1:]
    return before, after


def _fused_rows(
    windows: torch.Tensor, kernels: torch.Tensor, rows: torch.Tensor, grid: tuple[int, int]
) -> torch.Tensor:
    """Rows ``rows`` (Q,) of :func:`_fuse` (kernel 3) of the score map ``windows.T @
    kernels`` (windows and kernels (C, L)): the raw scores of those rows' neighbours in both
    orders are computed and summed in the same order as the whole map's, nothing else."""
    h, w = grid
    length = h * w
    before, after = _column_major_neighbours(h, w, rows.device)

    def with_neighbours(idx: torch.Tensor, prev: torch.Tensor, nxt: torch.Tensor) -> torch.Tensor:
        both = torch.cat([idx, prev, nxt])
        return torch.unique(both[(both >= 0) & (both < length)])

    # The column-major pass on ``rows`` reads the row-major pass's rows around them, and
    # that pass reads the raw rows around those.
    middle = with_neighbours(rows, before[rows], after[rows])
    needed = with_neighbours(middle, middle - 1, middle + 1)
    # Scores carry one more row, of zeros, which stands for the positions off the grid (-1
    # or L) so every row gets the same additions in the same order.
    zero = windows.new_zeros(windows.shape[0], 1)
    raw = torch.cat([windows[:, needed], zero], 1).t() @ kernels  # (R + 1, L)
    slot = torch.empty(length + 2, dtype=torch.long, device=rows.device)

    def rows_of(scores: torch.Tensor, idx: torch.Tensor, at: torch.Tensor) -> torch.Tensor:
        # Rows ``at`` (positions) of ``scores``, whose rows are positions ``idx`` + the zeros.
        slot.fill_(len(idx))
        slot[idx] = torch.arange(len(idx), device=rows.device)
        return scores.index_select(0, slot[at])  # -1 reads slot[-1]: the zero row

    # Row-major pass (:func:`_diagonal_sum`): the previous row and key, then the next.
    ends = torch.cat([middle, middle.new_full((1,), -1)])
    first = rows_of(raw, needed, ends)
    first[:, 1:] += rows_of(raw, needed, ends - 1)[:, :-1]
    first[:, :-1] += rows_of(raw, needed, ends + 1)[:, 1:]
    first[-1] = 0.0
    # Column-major pass (:func:`_column_major_sum`): both axes step in column-major order;
    # on the key axis seen as (h, w) that is one row up or down, or across a column's end.
    out = rows_of(first, middle, rows)
    o = out.view(-1, h, w)
    v = rows_of(first, middle, before[rows]).view(-1, h, w)
    o[:, 1:, :] += v[:, :-1, :]
    o[:, 0, 1:] += v[:, -1, :-1]
    v = rows_of(first, middle, after[rows]).view(-1, h, w)
    o[:, :-1, :] += v[:, 1:, :]
    o[:, -1, :-1] += v[:, 0, 1:]
    return out


class ContextualAttention(nn.Module):
    """Parameter-free; ``forward(features, mask)`` returns the rebuilt features and the
    attention weights. Features (N, C, H, W) with H, W multiples of ``rate``."""

    def __init__(
        self,
        patch: int = 3,
        rate: int = 2,
        fuse_kernel: int = 3,
        softmax_scale: float = SOFTMAX_SCALE,
        fuse: bool = True,
    ) -> None:
        super().__init__()
        self.patch = patch
        self.rate = rate
        self.fuse_kernel = fuse_kernel
        self.softmax_scale = softmax_scale
        self.fuse = fuse

    def _windows(
        self, features: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, tuple[int, int]]:
        """The matching's inputs on the downscaled grid (h, w): foreground windows (N, C*k*k,
        L), the background kernels (the same windows L2-normalised) and which background
        patches touch the hole (N, L)."""
        r, k = self.rate, self.patch
        small = F.interpolate(features.float(), scale_factor=1 / r, mode="nearest")
        h, w = small.shape[-2:]
        m = self._hole(mask, w)
        windows = F.unfold(small, k, padding=k // 2)  # (N, C*k*k, L) foreground windows
        norm = windows.norm(dim=1, keepdim=True).clamp(min=MIN_NORM)
        # A background patch counts only if its whole window is known.
        touches = F.max_pool2d(m, k, stride=1, padding=k // 2).flatten(1) > 0  # (N, Lb)
        return windows, windows / norm, touches, (h, w)

    def _softmax(self, cosine: torch.Tensor, touches: torch.Tensor) -> torch.Tensor:
        logits = (cosine * self.softmax_scale).masked_fill(touches[..., None, :], float("-inf"))
        attn = torch.softmax(logits, dim=-1)
        # One pass zeroes both the NaN rows of an image with no usable background patch at
        # all and the weights below TINY_WEIGHT: those change nothing, but as subnormal
        # floats they made the paste's matrix product 3x slower on the CPU (2.3 s instead
        # of 0.8 s for a 512 fill). NaN > x is false.
        return torch.where(attn >= TINY_WEIGHT, attn, 0.0)

    def weights(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Attention weights (N, L, L): row f holds foreground position f's weights over the
        background patches, on the downscaled grid (row-major, ``L = (H / rate) * (W /
        rate)``); each row sums to 1 over the patches that do not touch the hole. ``mask``
        (N, 1, H', W'), 1 = hole, at any size that is a whole multiple of the grid's."""
        windows, kernels, touches, grid = self._windows(features, mask)
        cosine = windows.transpose(1, 2) @ kernels  # (N, Lf, Lb)
        if self.fuse:
            cosine = _fuse(cosine, grid, self.fuse_kernel)
        return self._softmax(cosine, touches)

    @staticmethod
    def _hole(mask: torch.Tensor, width: int) -> torch.Tensor:
        """``mask`` on a grid ``width`` positions wide: a position is a hole if any pixel
        under it is (thin strokes stay holes)."""
        return F.max_pool2d(mask.float(), mask.shape[-1] // width)

    def near_hole(self, features: torch.Tensor, mask: torch.Tensor, margin: int) -> torch.Tensor:
        """``queries`` for :meth:`forward`: the positions within ``margin`` positions of the
        hole (N, L) on the matching grid of ``features``."""
        hole = self._hole(mask, features.shape[-1] // self.rate)
        near = F.max_pool2d(hole, 2 * margin + 1, stride=1, padding=margin)
        return near.flatten(1) > 0

    def forward(
        self,
        features: torch.Tensor,
        mask: torch.Tensor,
        queries: torch.Tensor | None = None,
        with_weights: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Rebuild every position from the background: (N, C, H, W) -> same, and the weights
        (N, L, L) of :meth:`weights`.

        ``queries`` (N, L) bool on the matching grid (e.g. :meth:`near_hole`): rebuild only
        those positions. Their pasted patches and weights are the same as without it (up to
        float rounding); every other position pastes its own raw patch, as a match on itself
        alone would (its row of the weights is one-hot on itself). The weights are returned
        only if ``with_weights``. (A fuse kernel other than 3 attends from everywhere.)"""
        r = self.rate
        h, w = features.shape[-2:]
        raw = F.unfold(features, 2 * r, stride=r, padding=r // 2)  # (N, C*4r^2, Lb)
        if queries is None or (self.fuse and self.fuse_kernel != 3):
            attn = self.weights(features, mask)
            pasted = raw @ attn.transpose(1, 2).to(raw.dtype)  # (N, C*4r^2, Lf)
        else:
            n, length = queries.shape
            attn = None
            if with_weights:
                attn = torch.eye(length, device=features.device).repeat(n, 1, 1)
            windows, kernels, touches, grid = self._windows(features, mask)
            # A position that is not asked for pastes its own raw patch: its features.
            pasted = raw.clone()
            for b in range(features.shape[0]):
                rows = queries[b].nonzero().squeeze(1)
                if self.fuse:
                    cosine = _fused_rows(windows[b], kernels[b], rows, grid)
                else:
                    cosine = windows[b][:, rows].t() @ kernels[b]
                weights = self._softmax(cosine, touches[b])
                usable = (~touches[b]).nonzero().squeeze(1)
                pasted[b][:, rows] = raw[b][:, usable] @ weights[:, usable].t().to(raw.dtype)
                if attn is not None:
                    attn[b][rows] = weights
        out = F.fold(pasted, (h, w), 2 * r, stride=r, padding=r // 2)
        # Every pixel lies under (2r / r)^2 = 4 pasted patches.
        return out / 4.0, attn
