"""Light-weight gated convolution (LWGC), HiFill (Yi et al., CVPR 2020), section 3.3.

A gated convolution (DeepFill v2) learns a soft, per-pixel, per-channel mask
``sigmoid(gate(x))`` that multiplies the activated features, which lets the
network tell hole from context without hand-made mask updates. Its gate is a
full convolution, which doubles the cost. HiFill's light-weight variants keep
the feature branch and make the gate cheap:

- ``"depthwise"`` (DS): a depthwise k x k convolution followed by a 1x1
  convolution to the output channels;
- ``"pixelwise"``: a 1x1 convolution to the output channels;
- ``"single"``: a full k x k convolution to ONE gate channel, broadcast to all
  output channels.

``output = activation(conv_f(x)) * sigmoid(gate(x))``.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

GateKind = Literal["single", "depthwise", "pixelwise", "none"]


class GatedConv2d(nn.Module):
    """One LWGC layer; ``padding`` keeps the size for stride 1 ('same' with dilation).

    Args:
        in_channels, out_channels: channel counts.
        kernel_size: odd kernel size of the feature branch (and of the DS / single gate).
        stride: 1 or 2.
        dilation: dilation of the feature branch (and of the DS / single gate).
        gate: which light-weight gate (module docstring); ``"none"`` = plain convolution.
        activation: applied to the feature branch (ELU as in DeepFill / HiFill); None = identity.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        dilation: int = 1,
        gate: GateKind = "single",
        activation: nn.Module | None = None,
    ) -> None:
        super().__init__()
        padding = dilation * (kernel_size - 1) // 2
        conv = dict(stride=stride, padding=padding, dilation=dilation)
        self.feature = nn.Conv2d(in_channels, out_channels, kernel_size, **conv)
        self.gate_kind = gate
        self.gate: nn.Module | None
        if gate == "single":
            self.gate = nn.Conv2d(in_channels, 1, kernel_size, **conv)
        elif gate == "pixelwise":
            # A 1x1 gate has no spatial extent: stride it like the features.
            self.gate = nn.Conv2d(in_channels, out_channels, 1, stride=stride)
        elif gate == "depthwise":
            self.gate = nn.Sequential(
                nn.Conv2d(in_channels, in_channels, kernel_size, groups=in_channels, **conv),
                nn.Conv2d(in_channels, out_channels, 1),
            )
        elif gate == "none":
            self.gate = None
        else:
            raise ValueError(f"Unknown gate kind {gate!r}")
        self.activation = activation if activation is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in, H, W) -> (N, out, H / stride, W / stride)."""
        if not torch.is_grad_enabled() and isinstance(self.activation, nn.ELU):
            # Inference: every intermediate is this layer's own, so work in place (the same
            # values, three fewer maps written).
            y = nn.functional.elu_(self.feature(x), self.activation.alpha)
            return y if self.gate is None else y.mul_(torch.sigmoid_(self.gate(x)))
        y = self.activation(self.feature(x))
        if self.gate is None:
            return y
        # The single-channel gate (N, 1, H, W) broadcasts over the output channels.
        return y * torch.sigmoid(self.gate(x))
