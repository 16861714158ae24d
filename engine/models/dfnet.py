"""DFNet: Deep Fusion Network for image completion (Hong et al., ACM MM 2019).

A U-Net of plain convolutions (same kernels as PConv: 7,5,5,3,...) whose last decoder
scales end in *fusion blocks*. At scale k the block turns the decoder features into a raw
completion ``C_k = sigmoid(conv1x1(F_k))``, predicts a 3-channel alpha map
``A_k = sigmoid(conv(concat(I_k, M_k, C_k)))`` from the input resized to that scale, and
blends ``R_k = A_k·C_k + (1 - A_k)·I_k``. The alpha map learns a soft transition at the hole
border (no seams), and every scale gets its own loss (structure at low resolution, texture at
high resolution). ``width`` scales the channels as in PConv.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.models.pconv import UNetConfig
from engine.models.torch_base import TorchInpaintModel, two_scale_fill


@dataclass(frozen=True)
class DFNetConfig(UNetConfig):
    """Hyper-parameters of DFNet (stored in the weights' metadata): ``UNetConfig`` plus these.

    Attributes:
        fusion_scales: number of last decoder scales ending in a fusion block (paper: 6).
        blend_channels: hidden channels of the alpha predictor at ``width=1``.
    """

    fusion_scales: int = 6
    blend_channels: int = 32


def conv_bn_act(c_in: int, c_out: int, kernel: int, stride: int, bn: bool, act: nn.Module):
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=not bn)]
    if bn:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(act)
    return nn.Sequential(*layers)


class FusionBlock(nn.Module):
    """Raw completion + learned alpha composition with the (resized) input."""

    def __init__(self, c_feat: int, c_blend: int) -> None:
        super().__init__()
        self.to_rgb = nn.Conv2d(c_feat, 3, 1)
        self.blend = nn.Sequential(
            nn.Conv2d(3 + 1 + 3, c_blend, 3, 1, 1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(c_blend, 3, 3, 1, 1),
        )

    def forward(self, feat: torch.Tensor, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        raw = torch.sigmoid(self.to_rgb(feat))
        alpha = torch.sigmoid(self.blend(torch.cat([image, mask, raw], dim=1)))
        return alpha * raw + (1 - alpha) * image


class DFNet(nn.Module):
    """The DFNet network.

    ``forward(image, mask)``: image ``(N, 3, H, W)`` float in [0, 1], hole pixels zeroed;
    mask ``(N, 1, H, W)`` float, 1 = hole. Returns the list of fused results, coarsest first,
    the last one at full resolution ``(N, 3, H, W)`` in [0, 1] (not composited).
    """

    def __init__(self, config: DFNetConfig) -> None:
        super().__init__()
        if not 1 <= config.fusion_scales <= config.levels:
            raise ValueError("fusion_scales must be between 1 and the number of levels")
        self.config = config
        chans = config.scaled_channels()
        self.encoder = nn.ModuleList()
        c_prev = 4  # RGB with the hole zeroed + the mask
        for i, (k, c) in enumerate(zip(config.kernels, chans, strict=True)):
            self.encoder.append(conv_bn_act(c_prev, c, k, 2, bn=i > 0, act=nn.ReLU(inplace=True)))
            c_prev = c
        skips = [4, *chans[:-1]]
        self.decoder = nn.ModuleList()
        self.fusion = nn.ModuleDict()
        c_blend = max(config.min_channels, round(config.blend_channels * config.width))
        for j in range(config.levels):
            skip_c = skips[-1 - j]
            # The full-resolution step has no skip features worth keeping as its width;
            # it outputs as many channels as the first level.
            c_out = chans[0] if j == config.levels - 1 else skip_c
            act = nn.LeakyReLU(0.2, inplace=True)
            self.decoder.append(conv_bn_act(c_prev + skip_c, c_out, 3, 1, bn=True, act=act))
            if j >= config.levels - config.fusion_scales:
                self.fusion[str(j)] = FusionBlock(c_out, c_blend)
            c_prev = c_out

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
        image = image * (1 - mask)
        x = torch.cat([(image - 0.5) / 0.5, mask], dim=1)
        feats = [x]
        for block in self.encoder:
            x = block(x)
            feats.append(x)
        results = []
        levels = self.config.levels
        for j, block in enumerate(self.decoder):
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            x = block(torch.cat([x, feats[-2 - j].to(x.dtype)], dim=1))
            if str(j) in self.fusion:
                scale = 2 ** (levels - 1 - j)
                img_k, mask_k = downscale(image, scale), downscale(mask, scale)
                results.append(self.fusion[str(j)](x, img_k.to(x.dtype), mask_k.to(x.dtype)))
        return results


def downscale(t: torch.Tensor, factor: int) -> torch.Tensor:
    """Average-pool by an integer factor (identity for 1); used for inputs and targets alike."""
    return t if factor == 1 else F.avg_pool2d(t, factor)


class DFNetModel(TorchInpaintModel):
    """Engine wrapper: loads a DFNet weights file and fills holes."""

    config_class = DFNetConfig

    def build(self, config: DFNetConfig) -> nn.Module:
        return DFNet(config)

    def forward(
        self, image: torch.Tensor, mask: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        return two_scale_fill(lambda x, m: self.net(x, m)[-1].float().clamp(0, 1), image, mask)
