"""Partial convolution (Liu et al., "Image Inpainting for Irregular Holes Using Partial
Convolutions", ECCV 2018), multi-channel mask variant.

For every output position the layer sees a window ``X`` of the input and the matching
window ``M`` of its mask (1 = valid, 0 = hole; the layer's own polarity, the opposite of the
project's). The paper's equation (1) is

    x' = W^T (X ⊙ M) · sum(1) / sum(M) + b    if sum(M) > 0
    x' = 0                                    otherwise

and the mask update (equation (2)) is ``m' = 1 if sum(M) > 0 else 0``. ``sum(1)`` is the
number of entries in the window (``C_in · k_h · k_w``) and ``sum(M)`` the number of valid
ones: with a multi-channel mask each input channel has its own validity, which is what the
U-Net's decoder needs when it concatenates upsampled features with skip features whose
masks differ.

Unlike NVIDIA's reference code this layer keeps no per-call state on ``self``: the mask is an
argument and the updated mask is returned, so one module can serve inputs of any size and
threads/ranks never share hidden buffers.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class PartialConv2d(nn.Conv2d):
    """A ``nn.Conv2d`` that only looks at valid input pixels and renormalises for the hole.

    ``forward(x, mask)`` takes features ``x`` ``(N, C_in, H, W)`` and a mask ``(N, 1, H, W)``
    (the same validity for every channel) or ``(N, C_in, H, W)`` (one per channel), float,
    1 = valid. ``x`` may also be a sequence of ``k`` tensors to concatenate along channels
    (e.g. the U-Net's upsampled and skip features) with a ``(N, k, H, W)`` mask, one channel per
    part: the same multi-channel mask, stored compactly (no ``C_in``-channel mask is built).
    It returns ``(out, new_mask)``: ``out`` ``(N, C_out, H', W')`` and ``new_mask``
    ``(N, 1, H', W')``, the same for every output channel (the update rule does not depend on
    the output channel), float 0/1. Groups are not supported (the paper does not use them).
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.groups != 1:
            raise ValueError("PartialConv2d does not support groups.")
        if self.padding_mode != "zeros":
            raise ValueError("PartialConv2d pads with zeros: padding counts as hole.")
        # Window size sum(1) of the paper: every input channel times the kernel area.
        self.window_size = float(self.in_channels * self.kernel_size[0] * self.kernel_size[1])

    def valid_count(
        self, mask: torch.Tensor, part_channels: Sequence[int] | None = None
    ) -> torch.Tensor:
        """Number of valid inputs in each window, ``(N, 1, H', W')`` float32.

        The all-ones kernel of the mask convolution means the count over ``C_in`` channels is the
        box sum of the channel-summed mask: one cheap single-channel convolution instead of a
        ``C_out x C_in`` one. It runs in float32 so the counts (integers up to ``C_in·k·k``) are
        exact even under bf16 autocast.
        """
        mask = mask.float()
        if part_channels is not None:
            # One mask channel per part: channel i stands for part_channels[i] input channels.
            per_pixel = sum(mask[:, i : i + 1] * c for i, c in enumerate(part_channels))
        elif mask.shape[1] == 1:
            per_pixel = mask * self.in_channels
        elif mask.shape[1] == self.in_channels:
            per_pixel = mask.sum(dim=1, keepdim=True)
        else:
            raise ValueError(f"mask has {mask.shape[1]} channels; expected 1 or {self.in_channels}")
        ones = torch.ones((1, 1, *self.kernel_size), dtype=torch.float32, device=mask.device)
        with torch.autocast(device_type=mask.device.type, enabled=False):
            return F.conv2d(
                per_pixel, ones, stride=self.stride, padding=self.padding, dilation=self.dilation
            )

    def forward(
        self, x: torch.Tensor | Sequence[torch.Tensor], mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # Zero the hole so its values cannot reach the output (this is what makes the output
        # independent of the hole's content), then convolve without the bias.
        if isinstance(x, torch.Tensor):
            count = self.valid_count(mask)
            masked = x * mask.to(x.dtype)
        else:
            parts = list(x)
            if mask.shape[1] != len(parts):
                raise ValueError(f"mask has {mask.shape[1]} channels for {len(parts)} parts")
            channels = [p.shape[1] for p in parts]
            if sum(channels) != self.in_channels:
                raise ValueError(f"parts have {sum(channels)} channels, not {self.in_channels}")
            count = self.valid_count(mask, channels)
            dtype = parts[0].dtype
            # Multiply each part by its own 1-channel mask before concatenating: far cheaper
            # than building and applying a C_in-channel mask (mixed memory layouts are slow).
            masked = torch.cat(
                [p.to(dtype) * mask[:, i : i + 1].to(dtype) for i, p in enumerate(parts)], dim=1
            )
        new_mask = (count > 0).to(torch.float32)
        raw = F.conv2d(masked, self.weight, None, self.stride, self.padding, self.dilation)
        # sum(1) / sum(M): windows without any valid input get ratio 0 (output 0, bias
        # included). The clamp only avoids 0/0; a valid window has count >= 1 so the
        # ratio is exact. Computed in float32 and cast once: bf16 would round the ratio.
        ratio = (self.window_size / count.clamp(min=1.0)) * new_mask
        out = raw * ratio.to(raw.dtype)
        if self.bias is not None:
            out = out + self.bias.view(1, -1, 1, 1).to(out.dtype) * new_mask.to(out.dtype)
        return out, new_mask
