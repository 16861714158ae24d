"""DeepFill v1: generative inpainting with contextual attention (Yu et al., CVPR 2018).

Architecture (paper, figure 2, and the authors' public code; widths scale with
``channels``, 32 in the paper):

- Input: the photo in [-1, 1] with the hole zeroed, a channel of ones and the mask
  (5 channels).
- Coarse network: 5x5 conv, two stride-2 steps to 1/4, dilated convolutions (rates 2, 4,
  8, 16), nearest-neighbour upsampling back, ELU throughout, a final 3-channel conv
  clipped to [-1, 1]. Its output is pasted into the hole and fed to the refine network.
- Refine network: two parallel encoders to 1/4 on the pasted image: a dilated-convolution
  branch (it hallucinates new content) and a contextual-attention branch
  (:class:`engine.layers.contextual_attention.ContextualAttention`: it copies features of
  the known background into the hole), concatenated into one decoder.

The attention weights are returned with the fill; :meth:`DeepFillModel.predict_with_attention`
pools them to the 16-pixel cells of the ``cra`` strategy, which aggregates
full-resolution residuals with them. As for HiFill, the engine shifts the refined fill by
the network's own colour error on the known pixels around the hole; training sees the raw
network. Any working size that is a multiple of 16 works.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.layers.contextual_attention import ContextualAttention
from engine.models.base import AttentionScores
from engine.models.torch_base import CoarseToFineModel

# cra's cells are 16 working pixels; an attention position is 8 (1/4 features, rate 2).
CRA_CELL = 16
# A plain fill attends only from the positions within this many attention positions (8
# working pixels each) of the hole: what the refine network does after the attention reaches
# about 3 positions, and on the validation cases a margin of 4 left the hole's fill within
# 0.001 of a level of attending from everywhere (docs/measurements.md, 2026-12-03).
NEAR_HOLE = 4


@dataclass(frozen=True)
class DeepFillConfig:
    """Hyper-parameters of DeepFill (stored in the weights' metadata).

    Attributes:
        channels: base width (the paper's ``cnum``, 32); the widest layers have 4x.
        softmax_scale: temperature of the attention softmax (10).
        rate: contextual attention matches on features downscaled by this (2).
        fuse: propagate attention scores with the 3x3 identity kernel.
    """

    channels: int = 32
    softmax_scale: float = 10.0
    rate: int = 2
    fuse: bool = True


class _Conv(nn.Sequential):
    """Convolution with 'same' padding (dilated or strided) and ELU (``act=False``: none)."""

    def __init__(
        self, cin: int, cout: int, k: int = 3, stride: int = 1, rate: int = 1, act: bool = True
    ) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, k, stride, padding=rate * (k - 1) // 2, dilation=rate)
        ]
        if act:
            layers.append(nn.ELU())
        super().__init__(*layers)


class _UpConv(_Conv):
    """Nearest-neighbour x2 upsampling, then a 3x3 conv (the public code's ``gen_deconv``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.interpolate(x, scale_factor=2.0, mode="nearest"))


def _dilated(c: int) -> list[nn.Module]:
    return [_Conv(c, c, 3, 1, rate) for rate in (2, 4, 8, 16)]


def _decoder(cin: int, c: int) -> nn.Sequential:
    """1/4 -> full size: two convs, up, conv, up, conv, 3-channel output (no activation)."""
    return nn.Sequential(
        _Conv(cin, 4 * c),
        _Conv(4 * c, 4 * c),
        _UpConv(4 * c, 2 * c),
        _Conv(2 * c, 2 * c),
        _UpConv(2 * c, c),
        _Conv(c, c // 2),
        _Conv(c // 2, 3, act=False),
    )


class CoarseNet(nn.Module):
    """Stage 1: (N, 5, H, W) -> (N, 3, H, W) in [-1, 1]."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            _Conv(5, c, 5),
            _Conv(c, 2 * c, 3, 2),
            _Conv(2 * c, 2 * c),
            _Conv(2 * c, 4 * c, 3, 2),
            _Conv(4 * c, 4 * c),
            _Conv(4 * c, 4 * c),
            *_dilated(4 * c),
        )
        self.decoder = _decoder(4 * c, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x)).clamp(-1, 1)


class RefineNet(nn.Module):
    """Stage 2: dilated branch + contextual-attention branch, one decoder."""

    def __init__(self, config: DeepFillConfig) -> None:
        super().__init__()
        c = config.channels
        self.hallucinate = nn.Sequential(
            _Conv(5, c, 5),
            _Conv(c, c, 3, 2),
            _Conv(c, 2 * c),
            _Conv(2 * c, 2 * c, 3, 2),
            _Conv(2 * c, 4 * c),
            _Conv(4 * c, 4 * c),
            *_dilated(4 * c),
        )
        self.attend_in = nn.Sequential(
            _Conv(5, c, 5),
            _Conv(c, c, 3, 2),
            _Conv(c, 2 * c),
            _Conv(2 * c, 4 * c, 3, 2),
            _Conv(4 * c, 4 * c),
            # The public code ends this encoder with a ReLU before the attention.
            nn.Conv2d(4 * c, 4 * c, 3, padding=1),
            nn.ReLU(),
        )
        self.attention = ContextualAttention(
            rate=config.rate, softmax_scale=config.softmax_scale, fuse=config.fuse
        )
        self.attend_out = nn.Sequential(_Conv(4 * c, 4 * c), _Conv(4 * c, 4 * c))
        self.decoder = _decoder(8 * c, c)

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor,
        near_hole: int | None = None,
        with_weights: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x (N, 5, H, W), mask (N, 1, H, W) -> (out (N, 3, H, W) in [-1, 1], weights).

        ``near_hole``: attend only from the positions within that many attention positions
        of the hole (see :data:`NEAR_HOLE`); the weights (one-hot on themselves for the
        others) are then returned only if ``with_weights``."""
        hallucinated = self.hallucinate(x)
        features = self.attend_in(x)
        queries = None
        if near_hole is not None:
            queries = self.attention.near_hole(features, mask, near_hole)
        moved, weights = self.attention(features, mask, queries, with_weights)
        merged = torch.cat([hallucinated, self.attend_out(moved)], 1)
        return self.decoder(merged).clamp(-1, 1), weights


class DeepFillNet(nn.Module):
    """The generator: coarse then refine, both at the working size."""

    def __init__(self, config: DeepFillConfig) -> None:
        super().__init__()
        self.config = config
        self.coarse = CoarseNet(config.channels)
        self.refine = RefineNet(config)

    def forward(
        self,
        image: torch.Tensor,
        mask: torch.Tensor,
        near_hole: int | None = None,
        with_weights: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Fill the hole.

        Args:
            image: (N, 3, H, W) in [0, 1]; H, W multiples of 16; hole values are ignored.
            mask: (N, 1, H, W), 1 = hole.
            near_hole, with_weights: see :meth:`RefineNet.forward` (near_hole None: attend
                from every position and return the weights).

        Returns:
            ``(coarse, refined, weights)``: coarse and refined (N, 3, H, W) in [0, 1] (raw
            outputs, not composited) and the attention weights (N, L, L) of
            :meth:`ContextualAttention.weights` on the grid of 1/8 of the working size.
        """
        known = 1.0 - mask
        x = (image * 2.0 - 1.0) * known
        ones = torch.ones_like(mask)
        coarse = self.coarse(torch.cat([x, ones, mask], 1))
        pasted = x * known + coarse * mask
        refined, weights = self.refine(
            torch.cat([pasted, ones, mask], 1), mask, near_hole, with_weights
        )
        return (coarse + 1.0) / 2.0, (refined + 1.0) / 2.0, weights


def cell_scores(weights: torch.Tensor, grid: tuple[int, int], factor: int) -> torch.Tensor:
    """Pool attention weights (L, L) (row = foreground position) on a (rows, cols) grid to
    cells of ``factor x factor`` positions: row I = the mean over cell I's positions of their
    weights summed over each cell J, so rows still sum to 1."""
    rows, cols = grid
    # Mean over the foreground positions of each cell (the rows) ...
    w = weights.T.reshape(-1, 1, rows, cols)  # (background, 1, rows, cols)
    w = F.avg_pool2d(w, factor).flatten(1).T  # (foreground cells, background)
    # ... then summed over the background positions of each cell.
    w = w.reshape(-1, 1, rows, cols)
    return F.avg_pool2d(w, factor).flatten(1) * factor**2


class DeepFillModel(CoarseToFineModel):
    """DeepFill at its working size; ``cra`` uses its attention for high-resolution photos."""

    config_class = DeepFillConfig

    def build(self, config: DeepFillConfig) -> nn.Module:
        return DeepFillNet(config)

    def run_net(
        self, image: torch.Tensor, mask: torch.Tensor, attention: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        # cra reads only the hole cells' rows of the weights: all attended from.
        return self.net(image * (1 - mask), mask, NEAR_HOLE, with_weights=attention)

    def scores(self, attention: torch.Tensor, shape: tuple[int, int]) -> AttentionScores | None:
        h, w = shape
        step = 4 * self.net.config.rate  # working pixels per attention position
        if h % CRA_CELL or w % CRA_CELL or CRA_CELL % step:
            return None
        return AttentionScores(
            cell_scores(attention[0], (h // step, w // step), CRA_CELL // step), CRA_CELL
        )
