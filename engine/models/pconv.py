"""PConv: U-Net of partial convolutions (Liu et al., ECCV 2018).

Architecture (paper, section 3.2, for a 512 input): eight stride-2 partial convolutions
with kernels 7,5,5,3,3,3,3,3 and 64,128,256,512,512,512,512,512 channels (ReLU, BatchNorm
except on the first layer); a decoder of eight steps, each nearest-neighbour x2 upsampling
followed by concatenation of the skip features *and* skip masks and a 3x3 partial
convolution (LeakyReLU 0.2, BatchNorm except on the last layer). The last layer also sees
the input image and mask and outputs RGB. ``width`` scales every channel count, so the
paper network (``width=1``, ~33M parameters) and the thin one trained on a CPU are the same
code.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.layers.partial_conv import PartialConv2d
from engine.models.torch_base import TorchInpaintModel, two_scale_fill

PAPER_KERNELS = (7, 5, 5, 3, 3, 3, 3, 3)
PAPER_CHANNELS = (64, 128, 256, 512, 512, 512, 512, 512)


@dataclass(frozen=True)
class UNetConfig:
    """Geometry of the paper's U-Net, shared by PConv and DFNet.

    Attributes:
        width: multiplier of every channel count (1.0 = paper).
        kernels: encoder kernel sizes, one per level (stride 2 each).
        channels: encoder channels at ``width=1``, one per level.
        min_channels: floor of a scaled channel count.
    """

    width: float = 1.0
    kernels: tuple[int, ...] = PAPER_KERNELS
    channels: tuple[int, ...] = PAPER_CHANNELS
    min_channels: int = 8

    @property
    def levels(self) -> int:
        return len(self.kernels)

    @property
    def size_multiple(self) -> int:
        """Image sides must be multiples of this (one halving per level)."""
        return 2**self.levels

    def scaled_channels(self) -> list[int]:
        return [max(self.min_channels, round(c * self.width)) for c in self.channels]


@dataclass(frozen=True)
class PConvConfig(UNetConfig):
    """Hyper-parameters of the PConv U-Net (stored in the weights' metadata): its geometry."""


class PConvBlock(nn.Module):
    """Partial convolution, optional BatchNorm, activation; passes the mask along."""

    def __init__(
        self, c_in: int, c_out: int, kernel: int, stride: int, bn: bool, act: nn.Module | None
    ) -> None:
        super().__init__()
        self.conv = PartialConv2d(c_in, c_out, kernel, stride, kernel // 2, bias=not bn)
        self.bn = nn.BatchNorm2d(c_out) if bn else None
        self.act = act

    def forward(
        self, x: torch.Tensor | list[torch.Tensor], mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x, mask = self.conv(x, mask)
        if self.bn is not None:
            x = self.bn(x)
        if self.act is not None:
            x = self.act(x)
        return x, mask


class PConvUNet(nn.Module):
    """The PConv network.

    ``forward(image, mask)``: image ``(N, 3, H, W)`` float in [0, 1] (hole content ignored),
    mask ``(N, 1, H, W)`` float, 1 = hole (project polarity); H and W multiples of
    ``config.size_multiple``. Returns the raw prediction ``(N, 3, H, W)`` (about [0, 1], not
    clamped, not composited).
    """

    def __init__(self, config: PConvConfig) -> None:
        super().__init__()
        if len(config.kernels) != len(config.channels):
            raise ValueError("kernels and channels must have one entry per level")
        self.config = config
        chans = config.scaled_channels()
        self.encoder = nn.ModuleList()
        c_prev = 3
        for i, (k, c) in enumerate(zip(config.kernels, chans, strict=True)):
            self.encoder.append(PConvBlock(c_prev, c, k, 2, bn=i > 0, act=nn.ReLU(inplace=True)))
            c_prev = c
        # Decoder step j merges the deeper features with the skip of level L-2-j (the input
        # image for the last step).
        skips = [3, *chans[:-1]]
        self.decoder = nn.ModuleList()
        for j in range(config.levels):
            skip_c = skips[-1 - j]
            last = j == config.levels - 1
            c_out = 3 if last else skip_c
            act = None if last else nn.LeakyReLU(0.2, inplace=True)
            self.decoder.append(PConvBlock(c_prev + skip_c, c_out, 3, 1, bn=not last, act=act))
            c_prev = c_out

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        valid = 1.0 - mask  # partial convolutions want 1 = valid
        x = (image - 0.5) / 0.5
        feats, masks = [x], [valid]
        for block in self.encoder:
            x, valid = block(x, valid)
            feats.append(x)
            masks.append(valid)
        for j, block in enumerate(self.decoder):
            skip_x, skip_m = feats[-2 - j], masks[-2 - j]
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            valid = F.interpolate(valid, scale_factor=2.0, mode="nearest")
            # Multi-channel mask: upsampled features and skip features keep their own validity
            # (one mask channel per part; see PartialConv2d).
            x, valid = block([x, skip_x], torch.cat([valid, skip_m], dim=1))
        return x * 0.5 + 0.5

    def freeze_encoder_bn(self) -> None:
        """Fine-tuning phase of the paper: encoder BatchNorm statistics and affine params fixed."""
        for block in self.encoder:
            if block.bn is not None:
                block.bn.eval()
                for p in block.bn.parameters():
                    p.requires_grad_(False)


class PConvModel(TorchInpaintModel):
    """Engine wrapper: loads a PConv weights file and fills holes."""

    config_class = PConvConfig

    def build(self, config: PConvConfig) -> nn.Module:
        return PConvUNet(config)

    def forward(
        self, image: torch.Tensor, mask: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        return two_scale_fill(lambda x, m: self.net(x, m).clamp(0, 1), image, mask)
