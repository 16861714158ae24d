"""HiFill: a thin coarse-to-fine network with attention (Yi et al., CVPR 2020).

Architecture (paper, section 3 and figure 3; channel counts scale with the config):

- Coarse network at half the working size (256 for a 512 input): light-weight
  gated convolutions with single-channel gates, two stride-2 steps down to 1/8
  of the working size, dilated convolutions (rates 2, 4, 8, 16) for a large
  receptive field, nearest-neighbour upsampling back. Its output is pasted
  into the hole and upsampled to the working size.
- Refine network at the working size: an encoder of LWGC layers with
  depthwise-separable (or pixelwise) gates down to 1/8 (64 x 64 for 512),
  dilated convolutions, then the attention computing module (ACM) on that
  high-level map with cells of 2 x 2 features = 16 x 16 input pixels (the
  paper's 32 x 32 grid at 512). The attention transfer module (ATM) fills the
  hole pixels of the encoder's features at 1/8, 1/4 and 1/2 with the SAME
  scores, and the decoder consumes them as skip connections.
- The scores are returned with the image so the ``cra`` strategy
  (:mod:`engine.highres.cra`) can aggregate full-resolution residuals with them.
- Not in the paper: the engine shifts the refined fill by the network's own
  colour error on the known pixels around the hole
  (:class:`engine.models.torch_base.CoarseToFineModel`); training sees the raw network.

Activations are ELU, images are scaled to [-1, 1] inside and the output is
clipped there (as in DeepFill / HiFill). Any working size that is a multiple
of 16 works; a non-square input gets a non-square attention grid.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.layers.attention import AttentionTransfer, attention_scores, hole_cells
from engine.layers.gated_conv import GatedConv2d, GateKind
from engine.models.base import AttentionScores
from engine.models.torch_base import CoarseToFineModel

TRANSFER_MODES = ("cell", "pixel", "skip")


@dataclass(frozen=True)
class HiFillConfig:
    """Hyper-parameters of HiFill (stored in the weights' metadata).

    Attributes:
        coarse_channels: base width of the coarse network (widest layer = 4x).
        refine_channels: base width of the refine network (widest layer = 4x).
        refine_gate: ``"depthwise"`` or ``"pixelwise"`` light-weight gate in the refine network.
        cell: attention cell side in working-size pixels (16 -> 32 x 32 cells at 512).
        softmax_scale: temperature of the attention softmax.
        transfer: what the ATM puts in a hole cell: ``"cell"`` replaces every pixel;
            ``"pixel"`` only its hole pixels (the known pixels of a cell on the hole's border
            keep their own features, so the decoder sees the fine detail right at the
            border); ``"skip"`` as ``"pixel"``, plus a learned per-channel share (zero at
            first) of the encoder's own features at those hole pixels: the coarse fill's
            local detail, which a thin stroke needs more than features from cells far
            away. The shares exist in every mode and get gradients only under ``"skip"``,
            so a run may switch modes (``train.model_schedule``).
    """

    coarse_channels: int = 16
    refine_channels: int = 16
    refine_gate: str = "depthwise"
    cell: int = 16
    softmax_scale: float = 10.0
    transfer: str = "pixel"

    def __post_init__(self) -> None:
        if self.transfer not in TRANSFER_MODES:
            raise ValueError(f"Unknown transfer {self.transfer!r}")


def _conv(
    cin: int, cout: int, k: int = 3, stride: int = 1, dilation: int = 1, gate: GateKind = "single"
) -> GatedConv2d:
    return GatedConv2d(cin, cout, k, stride, dilation, gate, nn.ELU())


def _up(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="nearest")


class CoarseNet(nn.Module):
    """Coarse network at half resolution; single-channel gates. (N, 4, h, w) -> (N, 3, h, w)."""

    def __init__(self, c: int) -> None:
        super().__init__()
        g: GateKind = "single"
        self.body = nn.Sequential(
            _conv(4, c, 5, gate=g),
            _conv(c, 2 * c, 3, 2, gate=g),
            _conv(2 * c, 2 * c, gate=g),
            _conv(2 * c, 4 * c, 3, 2, gate=g),
            _conv(4 * c, 4 * c, gate=g),
            *(_conv(4 * c, 4 * c, 3, 1, rate, gate=g) for rate in (2, 4, 8, 16)),
            _conv(4 * c, 4 * c, gate=g),
        )
        self.up1 = _conv(4 * c, 2 * c, gate=g)
        self.up2 = _conv(2 * c, c, gate=g)
        self.tail = _conv(c, max(c // 2, 4), gate=g)
        self.out = nn.Conv2d(max(c // 2, 4), 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.body(x)
        x = self.up1(_up(x))
        x = self.up2(_up(x))
        return self.out(self.tail(x))


# The shares are stored divided by this, so Adam (steps of about lr) moves them to useful
# values (order 1) in a few hundred steps instead of thousands.
SKIP_GAIN_SCALE = 30.0


class HoleSkip(nn.Module):
    """Per-channel shares of the encoder's own features kept at hole pixels (``"skip"``)."""

    def __init__(self, channels: tuple[int, ...]) -> None:
        super().__init__()
        self.gains = nn.ParameterList(nn.Parameter(torch.zeros(c)) for c in channels)

    def share(self, level: int, e: torch.Tensor) -> torch.Tensor:
        gain = self.gains[level] * SKIP_GAIN_SCALE
        return e * gain.to(e.dtype).view(1, -1, 1, 1)


class RefineNet(nn.Module):
    """Refine network with ACM + ATM. (N, 4, H, W), hole mask -> (N, 3, H, W), scores."""

    def __init__(
        self, c: int, gate: GateKind, cell: int, softmax_scale: float, transfer: str = "pixel"
    ) -> None:
        super().__init__()
        g = gate
        self.cell = cell
        self.softmax_scale = softmax_scale
        self.transfer_mode = transfer
        self.enc1 = _conv(4, c, 5, gate=g)
        self.enc2 = nn.Sequential(_conv(c, 2 * c, 3, 2, gate=g), _conv(2 * c, 2 * c, gate=g))
        self.enc4 = nn.Sequential(_conv(2 * c, 4 * c, 3, 2, gate=g), _conv(4 * c, 4 * c, gate=g))
        self.enc8 = nn.Sequential(_conv(4 * c, 4 * c, 3, 2, gate=g), _conv(4 * c, 4 * c, gate=g))
        self.dilated = nn.Sequential(
            *(_conv(4 * c, 4 * c, 3, 1, rate, gate=g) for rate in (2, 4, 8, 16))
        )
        self.transfer = AttentionTransfer()
        self.dec8 = _conv(8 * c, 4 * c, gate=g)
        self.dec4 = nn.Sequential(_conv(8 * c, 2 * c, gate=g), _conv(2 * c, 2 * c, gate=g))
        self.dec2 = nn.Sequential(_conv(4 * c, c, gate=g), _conv(c, c, gate=g))
        self.dec1 = _conv(c, max(c // 2, 4), gate=g)
        self.out = nn.Conv2d(max(c // 2, 4), 3, 3, padding=1)
        # Registered last: its parameters come after all others (a checkpoint without them
        # keeps its optimizer state's order).
        self.hole_skip = HoleSkip((4 * c, 4 * c, 2 * c))

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (N, 4, H, W), mask (N, 1, H, W) -> (out (N, 3, H, W), scores (N, L, L), holes)."""
        h, w = mask.shape[-2:]
        grid = (h // self.cell, w // self.cell)
        holes = hole_cells(mask, self.cell)
        e1 = self.enc1(x)
        e2 = self.enc2(e1)
        e4 = self.enc4(e2)
        e8 = self.enc8(e4)
        high = self.dilated(e8)
        # ACM once; every ATM below gets this very tensor (score sharing across scales).
        scores = attention_scores(high, holes, self.softmax_scale)

        def transfer(e: torch.Tensor, level: int) -> torch.Tensor:
            if self.transfer_mode == "cell":
                return self.transfer(e, scores, holes, grid)
            # A feature pixel is a hole pixel if any input pixel under it is.
            fill = F.max_pool2d(mask, h // e.shape[-2]) > 0
            moved = self.transfer(e, scores, holes, grid, fill)
            if self.transfer_mode == "skip":
                moved = moved + fill * self.hole_skip.share(level, e)
            return moved

        d = self.dec8(torch.cat([high, transfer(e8, 0)], 1))
        d = self.dec4(torch.cat([_up(d), transfer(e4, 1)], 1))
        d = self.dec2(torch.cat([_up(d), transfer(e2, 2)], 1))
        return self.out(self.dec1(_up(d))), scores, holes


class HiFillNet(nn.Module):
    """The generator: coarse at half size, refine at full working size."""

    def __init__(self, config: HiFillConfig) -> None:
        super().__init__()
        self.config = config
        self.coarse = CoarseNet(config.coarse_channels)
        gate: GateKind = "pixelwise" if config.refine_gate == "pixelwise" else "depthwise"
        self.refine = RefineNet(
            config.refine_channels, gate, config.cell, config.softmax_scale, config.transfer
        )

    def reconfigure(self, config: HiFillConfig) -> None:
        """Switch the settings that have no parameters (``transfer``) in place."""
        if dataclasses.replace(config, transfer=self.config.transfer) != self.config:
            raise ValueError("only 'transfer' can change in a trained HiFill network")
        self.config = config
        self.refine.transfer_mode = config.transfer

    def forward(
        self, image: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Fill the hole.

        Args:
            image: (N, 3, H, W) in [0, 1]; H, W multiples of 16; hole values are ignored.
            mask: (N, 1, H, W), 1 = hole.

        Returns:
            ``(coarse, refined, scores)``: coarse and refined (N, 3, H, W) in [0, 1]
            (raw network outputs, not composited), scores (N, L, L) from the ACM.
        """
        known = 1.0 - mask
        x = (image * 2.0 - 1.0) * known
        # Coarse stage at half size: a half-size pixel is a hole if any of its 4 pixels is.
        mask_half = F.max_pool2d(mask, 2)
        x_half = F.avg_pool2d(x, 2) * (1.0 - mask_half)
        coarse_half = self.coarse(torch.cat([x_half, mask_half], 1)).clamp(-1, 1)
        coarse = F.interpolate(coarse_half, scale_factor=2.0, mode="bilinear", align_corners=False)
        merged = x * known + coarse * mask
        refined, scores, _ = self.refine(torch.cat([merged, mask], 1), mask)
        refined = refined.clamp(-1, 1)
        return (coarse + 1.0) / 2.0, (refined + 1.0) / 2.0, scores


class HiFillModel(CoarseToFineModel):
    """HiFill at its native 512; ``cra`` uses its attention for high-resolution photos."""

    config_class = HiFillConfig

    def build(self, config: HiFillConfig) -> nn.Module:
        return HiFillNet(config)

    def scores(self, attention: torch.Tensor, shape: tuple[int, int]) -> AttentionScores:
        return AttentionScores(attention[0], self.net.config.cell)
