"""HiFill's attention computing (ACM) and attention transfer (ATM) modules.

Both work on a grid of square *cells* (the paper's patches): a feature map of
size (h, w) is cut into (h / p) x (w / p) cells of p x p pixels, numbered row
by row. For a 512 x 512 input and cells of 16 input pixels this is the paper's
32 x 32 grid; a non-square input simply gives a non-square grid (HiFill's
public code squashes the photo to a square instead).

- ACM (:func:`attention_scores`): cosine similarity between every cell of a
  high-level feature map and every *context* cell (one with no hole pixel),
  softmax with a scale (~10) over the context cells. One (L, L) matrix per
  image: row i = how much cell i borrows from each cell.
- ATM (:class:`AttentionTransfer`): fills the hole cells of another, usually
  larger, feature map with the score-weighted sum of its context cells. Every
  ATM of the network is called with the SAME score tensor, so attention is
  computed once and shared across scales; the same scores later aggregate the
  full-resolution residuals (:mod:`engine.highres.cra`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# The softmax temperature of HiFill / DeepFill's contextual attention.
SOFTMAX_SCALE = 10.0


def to_cells(x: torch.Tensor, cell: int) -> torch.Tensor:
    """(N, C, H, W) -> (N, L, C * cell * cell), L = (H / cell) * (W / cell) cells row by row."""
    n, c, h, w = x.shape
    rows, cols = h // cell, w // cell
    x = x.reshape(n, c, rows, cell, cols, cell).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(n, rows * cols, c * cell * cell)


def hole_cells(mask: torch.Tensor, cell: int) -> torch.Tensor:
    """(N, 1, H, W) mask, 1 = hole -> bool (N, L): True where a cell holds any hole pixel."""
    pooled = F.max_pool2d(mask, cell, cell)
    return pooled.flatten(1) > 0


def attention_scores(
    features: torch.Tensor, holes: torch.Tensor, scale: float = SOFTMAX_SCALE
) -> torch.Tensor:
    """ACM: softmax of cosine similarities between all cells and the context cells.

    Args:
        features: (N, C, H, W) high-level features; the grid is (rows, cols) with
            ``L = rows * cols`` cells of ``H / rows`` pixels (see ``holes``).
        holes: bool (N, L) hole cells (:func:`hole_cells`), whose columns get zero weight.
        scale: softmax temperature (the paper's lambda, ~10).

    Returns:
        float (N, L, L): row i sums to 1 over context cells (all zero when an image has no
        context cell). Computed in float32 even under autocast (a softmax of scaled cosines).
    """
    h, w = features.shape[-2:]
    cells = holes.shape[1]
    cell = round((h * w / cells) ** 0.5)
    patches = F.normalize(to_cells(features.float(), cell), dim=-1, eps=1e-6)
    cosine = patches @ patches.transpose(1, 2)
    logits = (cosine * scale).masked_fill(holes[:, None, :], float("-inf"))
    scores = torch.softmax(logits, dim=-1)
    # A row with no finite logit (no context cell at all) is NaN: make it zero.
    return torch.nan_to_num(scores, nan=0.0)


class AttentionTransfer(nn.Module):
    """ATM: replace hole cells of a feature map by the score-weighted sum of its context cells.

    Parameter-free; the cell size is the feature map's size divided by the grid.
    """

    def forward(
        self,
        x: torch.Tensor,
        scores: torch.Tensor,
        holes: torch.Tensor,
        grid: tuple[int, int],
        fill: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x (N, C, H, W), scores (N, L, L), holes bool (N, L), grid (rows, cols) -> like x.

        ``fill`` (bool (N, 1, H, W), optional): the hole pixels at this scale. Given, only
        they take the transferred features and the known pixels of a hole cell keep their
        own; without it every pixel of a hole cell is replaced.
        """
        n, c, h = x.shape[:3]
        rows, cols = grid
        cell = h // rows
        patches = to_cells(x, cell)
        if n == 1:
            # Inference: only hole cells are computed, and written into a copy of ``x`` in
            # its own memory format (channels last stays channels last, so the convolutions
            # after it need no conversion).
            idx = holes[0].nonzero().squeeze(1)
            moved = scores[0, idx].to(patches.dtype) @ patches[0]
            out = x.clone()
            view = out.view(n, c, rows, cell, cols, cell).permute(0, 2, 4, 1, 3, 5)
            view[0, idx // cols, idx % cols] = moved.view(-1, c, cell, cell)
        else:
            # Training: every cell at once, written back in x's memory format too.
            moved = scores.to(patches.dtype) @ patches
            cells = torch.where(holes[..., None], moved, patches)
            out = torch.empty_like(x)
            view = out.view(n, c, rows, cell, cols, cell).permute(0, 2, 4, 1, 3, 5)
            view.copy_(cells.view(n, rows, cols, c, cell, cell))
        return out if fill is None else torch.where(fill, out, x)
