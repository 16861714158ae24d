"""Pluralistic Image Completion (Zheng, Cham, Cai, CVPR 2019): many plausible fills of one hole.

Architecture (paper, figure 3, and the authors' public code; widths scale with ``channels``,
32 there, capped at ``max_channels``, 128 there):

- One residual encoder (spectral norm, LeakyReLU) down to 1/32 of the working size. It sees
  an image with some pixels zeroed and a channel saying which: the visible part ``I_m``
  (generative path, the only one at test time) or the hole's content ``I_c``
  (reconstructive path, training only).
- Two heads on the deepest features give a diagonal Gaussian over the latent ``z`` (one
  vector of ``z_channels`` per 1/32 position): the *prior* p(z | I_m) from the visible
  part and the *posterior* q(z | I_c) from the hole's content.
- One generator for both paths: ``z`` through residual blocks, added to the visible part's
  deepest features, then a decoder of residual up-blocks with an RGB output (tanh) at each
  of the last ``output_scales`` levels, each fed back to the next level.
- Short+long term attention (:class:`ShortLongAttention`) after the decoder level at 1/8:
  self-attention on the decoder's features (a 1x1 query conv to C/4, the keys are the
  queries) with a learnable gate ``gamma``, plus the same attention map applied to the
  encoder's features of the visible part at that level, used in the hole (gate ``alpha``)
  while the visible part keeps its own features; both gates start at 0. A residual block
  fuses the two.
- A ranker (:class:`Ranker`): the generative path's discriminator, trained with the
  network (LSGAN). The public code computes its score and never uses it; here each sample
  is the best of ``candidates`` draws by that score (:meth:`PluralisticModel.generate`).

Each draw is shifted by the generator's own colour error on the known pixels around the hole
before it is ranked (:func:`engine.models.torch_base.known_error_correction`, as for HiFill
and DeepFill): on the validation cases it cut the first sample's L1 by 18% and its
deep-feature distance by 20% (docs/measurements.md, 2026-12-03).

Sampling is deterministic per seed: sample ``seed`` draws its candidates' noise from a
generator seeded with ``seed`` alone, so ``--seed S --samples 1`` gives the gallery's sample
``S`` exactly. Deviations from the public code: the encoder sees the zeroed-pixel channel,
the decoder upsamples by nearest neighbour + convolution (no transposed convolutions, no
checkerboard) and has no normalisation layers (spectral norm only, as the encoder).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm

from engine.jobs import CancelToken
from engine.models.torch_base import (
    TorchInpaintModel,
    image_to_tensor,
    known_error_correction,
    mask_to_tensor,
    tensor_to_image,
)

# Draws per sample in the app and the CLI; the best by the ranker's score is kept.
CANDIDATES = 2
# Sampling temperature: z = mu + TEMPERATURE * std * noise. The CPU-trained generator leans
# little on z, so at 1 the gallery's samples look alike. With the shipped weights (27
# validation cases with 30-60% holes, all 5 samples): mean pairwise L1 in the hole 0.0040 at
# 4, 0.0081 at 8 for 1.8% more L1 and 0.5% more deep-feature distance (docs/measurements.md,
# 2026-12-03).
TEMPERATURE = 8.0
# Smallest standard deviation of a latent Gaussian (keeps the KL finite).
MIN_STD = 1e-3


@dataclass(frozen=True)
class PluralisticConfig:
    """Hyper-parameters of the pluralistic network (stored in the weights' metadata).

    Attributes:
        channels: width of the first encoder level (the public code's ``ngf``, 32).
        max_channels: widest level (``img_f``, 128).
        z_channels: latent channels per 1/32 position (128).
        levels: stride-2 steps of the encoder (5: 1/32).
        output_scales: decoder levels with an RGB output, the finest last (4).
        attention_level: decoder level after which attention runs (1: at 1/8 for 5 levels).
        ranker_channels: first width of the ranker (discriminator), 32.
    """

    channels: int = 32
    max_channels: int = 128
    z_channels: int = 128
    levels: int = 5
    output_scales: int = 4
    attention_level: int = 1
    ranker_channels: int = 32

    def width(self, level: int) -> int:
        """Channels of encoder level ``level`` (0 = 1/2 of the working size)."""
        return min(self.channels * 2**level, self.max_channels)


def _conv(cin: int, cout: int, k: int = 3) -> nn.Module:
    return spectral_norm(nn.Conv2d(cin, cout, k, 1, k // 2))


class ResBlock(nn.Module):
    """Pre-activation residual block with spectral norm: act, conv3, act, conv3 plus a 1x1
    shortcut. ``sample``: ``down`` average-pools both branches after the block, ``up``
    upsamples (nearest) between the two convolutions and before the shortcut; ``first``
    leaves out the activation before the first convolution (the input is an image)."""

    def __init__(
        self, cin: int, cout: int, sample: str = "none", first: bool = False, hidden: int = 0
    ) -> None:
        super().__init__()
        hidden = hidden or cout
        self.sample = sample
        self.act = nn.Identity() if first else nn.LeakyReLU(0.1)
        self.conv1 = _conv(cin, hidden)
        self.conv2 = _conv(hidden, cout)
        self.shortcut = _conv(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(self.act(x))
        h = F.leaky_relu(h, 0.1)
        if self.sample == "up":
            h = F.interpolate(h, scale_factor=2.0, mode="nearest")
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        out = self.conv2(h) + self.shortcut(x)
        return F.avg_pool2d(out, 2) if self.sample == "down" else out


class ShortLongAttention(nn.Module):
    """Short+long term attention (the paper's section 3.3, the public code's ``Auto_Attn``)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.query = nn.Conv2d(channels, max(1, channels // 4), 1)
        self.gamma = nn.Parameter(torch.zeros(1))
        self.alpha = nn.Parameter(torch.zeros(1))
        self.fuse = ResBlock(2 * channels, channels)

    def forward(
        self, x: torch.Tensor, encoder: torch.Tensor, known: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` decoder features (N, C, h, w), ``encoder`` the visible part's features at the
        same size, ``known`` (N, 1, h, w) the share of known pixels. Returns the fused
        features and the attention (N, hw, hw), row = the position that attends."""
        n, c, h, w = x.shape
        q = self.query(x).flatten(2)  # (N, C/4, hw)
        # Scaled dot products (the public code leaves out the 1/sqrt(d), which lets the
        # softmax overflow while the weights are still far from trained).
        energy = q.transpose(1, 2) @ q / q.shape[1] ** 0.5
        attention = torch.softmax(energy, dim=-1)  # (N, hw, hw)
        short = (x.flatten(2) @ attention.transpose(1, 2)).view(n, c, h, w)
        short = self.gamma * short + x
        flow = (encoder.flatten(2) @ attention.transpose(1, 2)).view_as(encoder)
        long = self.alpha * (1 - known) * flow + known * encoder
        return self.fuse(torch.cat([short, long], 1)), attention


class Encoder(nn.Module):
    """The shared residual encoder and the prior and posterior heads."""

    def __init__(self, config: PluralisticConfig) -> None:
        super().__init__()
        widths = [config.width(i) for i in range(config.levels)]
        self.blocks = nn.ModuleList(
            [ResBlock(4, widths[0], "down", first=True)]
            + [ResBlock(widths[i - 1], widths[i], "down") for i in range(1, config.levels)]
        )
        deep, z = widths[-1], config.z_channels
        self.prior = nn.Sequential(ResBlock(deep, deep), ResBlock(deep, 2 * z))
        self.posterior = nn.Sequential(ResBlock(deep, deep), ResBlock(deep, 2 * z))

    def forward(self, image: torch.Tensor, zeroed: torch.Tensor) -> list[torch.Tensor]:
        """Features of every level (1/2 ... 1/2**levels) of ``image`` in [0, 1] whose pixels
        where ``zeroed`` (N, 1, H, W) is 1 are zero."""
        x = torch.cat([(image * 2 - 1) * (1 - zeroed), zeroed], 1)
        features = []
        for block in self.blocks:
            x = block(x)
            features.append(x)
        return features

    @staticmethod
    def gaussian(head: nn.Module, deep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, raw = head(deep).chunk(2, 1)
        return mu, F.softplus(raw) + MIN_STD


class Generator(nn.Module):
    """z (N, z, H/32, W/32) + the visible part's encoder features -> RGB at several scales."""

    def __init__(self, config: PluralisticConfig) -> None:
        super().__init__()
        self.config = config
        levels = config.levels
        deep = config.width(levels - 1)
        self.start = nn.Sequential(ResBlock(config.z_channels, deep), ResBlock(deep, deep))
        self.decoders = nn.ModuleList()
        self.outputs = nn.ModuleDict()
        cin = deep
        first_output = levels - config.output_scales
        for i in range(levels):
            cout = config.width(levels - 2 - i) if i < levels - 1 else config.channels
            self.decoders.append(ResBlock(cin, cout, "up"))
            cin = cout
            if i >= first_output:
                self.outputs[str(i)] = nn.Sequential(nn.LeakyReLU(0.1), _conv(cout, 3))
                cin += 3
            if i == config.attention_level:
                self.attention = ShortLongAttention(cout)

    def forward(
        self, z: torch.Tensor, features: list[torch.Tensor], hole: torch.Tensor
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """RGB outputs in [0, 1], coarsest first, finest (the working size) last, and the
        attention map; ``features`` the encoder's of the visible part (batch of z)."""
        levels = self.config.levels
        x = self.start(z) + features[-1]
        outputs: list[torch.Tensor] = []
        attention = x.new_zeros(())
        for i, decoder in enumerate(self.decoders):
            x = decoder(x)
            if i == self.config.attention_level:
                encoder = features[levels - 2 - i]
                known = 1 - F.adaptive_avg_pool2d(hole, encoder.shape[-2:])
                x, attention = self.attention(x, encoder, known)
            if str(i) in self.outputs:
                rgb = torch.tanh(self.outputs[str(i)](x))
                outputs.append((rgb + 1) / 2)
                x = torch.cat([x, rgb], 1)
        return outputs, attention


class Ranker(nn.Module):
    """Residual discriminator with spectral norm (the public code's ``ResDiscriminator``): an
    image in [0, 1] -> a map of LSGAN scores at 1/32 (1 = real)."""

    def __init__(self, channels: int = 32, levels: int = 5, max_channels: int = 128) -> None:
        super().__init__()
        widths = [min(channels * 2**i, max_channels) for i in range(levels)]
        self.blocks = nn.Sequential(
            ResBlock(3, widths[0], "down", first=True),
            *[ResBlock(widths[i - 1], widths[i], "down") for i in range(1, levels)],
            ResBlock(widths[-1], widths[-1]),
        )
        self.head = nn.Sequential(nn.LeakyReLU(0.1), _conv(widths[-1], 1))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(image * 2 - 1))

    def score(self, image: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        """(N,) realism of each composite: the mean score over the positions that see the
        hole (higher = more real)."""
        logits = self(image)
        weight = F.adaptive_max_pool2d(hole, logits.shape[-2:])
        return (logits * weight).sum((1, 2, 3)) / weight.sum((1, 2, 3)).clamp_min(1.0)


class PluralisticNet(nn.Module):
    """Encoder, generator and ranker; the weights file holds all three."""

    def __init__(self, config: PluralisticConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.generator = Generator(config)
        self.ranker = Ranker(config.ranker_channels, config.levels, config.max_channels)

    def visible(
        self, image: torch.Tensor, hole: torch.Tensor
    ) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
        """The visible part's features and its prior (mu, std)."""
        features = self.encoder(image, hole)
        mu, std = self.encoder.gaussian(self.encoder.prior, features[-1])
        return features, mu, std

    def forward(
        self, image: torch.Tensor, hole: torch.Tensor, noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The finest output of the generative path with ``z = mu + std * noise`` (the prior's
        mean without noise); image (N, 3, H, W) in [0, 1], H, W multiples of 2**levels."""
        features, mu, std = self.visible(image, hole)
        z = mu if noise is None else mu + std * noise
        return self.generator(z, features, hole)[0][-1]


def composite(fill: torch.Tensor, image: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
    return fill * hole + image * (1 - hole)


class PluralisticModel(TorchInpaintModel):
    """The pluralistic network at its working size; every sample is the best of
    :attr:`candidates` draws by the ranker."""

    config_class = PluralisticConfig
    #: Draws per sample (1: the first draw, unranked).
    candidates: int = CANDIDATES
    #: Scale of the prior's noise (:data:`TEMPERATURE`).
    temperature: float = TEMPERATURE
    #: Shift each draw by its own colour error on the known pixels around the hole.
    colour_correction: bool = True

    def build(self, config: PluralisticConfig) -> nn.Module:
        return PluralisticNet(config)

    def noise(self, seed: int, shape: Sequence[int]) -> torch.Tensor:
        """The candidates' noise of sample ``seed``: (candidates, *shape), from ``seed`` alone,
        scaled by :attr:`temperature`."""
        generator = torch.Generator().manual_seed(int(seed))
        eps = torch.randn((self.candidates, *shape), generator=generator)
        return (eps * self.temperature).to(self.device)

    def best(self, fills: torch.Tensor, image: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        """The composite (1, 3, H, W) of the best-scored fill among ``fills`` (k, 3, H, W)."""
        comps = composite(fills, image, hole)
        if len(comps) == 1:
            return comps
        scores = self.net.ranker.score(comps, hole.expand(len(comps), -1, -1, -1))
        return comps[int(scores.argmax())][None]

    @torch.inference_mode()
    def generate(
        self,
        image: np.ndarray,
        mask: np.ndarray,
        seeds: Sequence[int],
        cancel: CancelToken | None = None,
        attention: bool = False,
    ) -> Iterator[Any]:
        image_t = image_to_tensor(image, self.device)
        hole = mask_to_tensor(mask, self.device)
        image_t = image_t * (1 - hole)
        features, mu, std = self.net.visible(image_t, hole)  # once for every sample
        for seed in seeds:
            if cancel is not None:
                cancel.check()
            eps = self.noise(seed, mu.shape[1:])
            k = len(eps)
            feats = [f.expand(k, -1, -1, -1) for f in features]
            holes = hole.expand(k, -1, -1, -1)
            fills = self.net.generator(mu + std * eps, feats, holes)[0][-1]
            if self.colour_correction:
                fills = known_error_correction(fills, image_t.expand(k, -1, -1, -1), holes)
            out = tensor_to_image(self.best(fills, image_t, hole))
            yield (out, None) if attention else out

    def predict(self, image: np.ndarray, mask: np.ndarray, seed: int) -> np.ndarray:
        return next(iter(self.generate(image, mask, [seed])))
