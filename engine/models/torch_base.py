"""Shared plumbing of the learned (PyTorch) models.

A learned model is an ``nn.Module`` whose hyper-parameters live in a config
dataclass; the weights file (safetensors) stores that config as JSON in its
metadata under ``"config"``, so a file is self-describing and loading
rebuilds the exact network it was trained as.

Tensor convention inside the models: images float32 ``(N, 3, H, W)`` in
[0, 1], masks float32 ``(N, 1, H, W)`` with 1 = hole (the project's
polarity; a model that wants 1 = valid converts internally).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open

from engine.errors import WeightsError
from engine.models.base import AttentionScores, InpaintModel


def _as_tensor(array: np.ndarray) -> torch.Tensor:
    # Arrays that cross threads are read-only; torch.from_numpy would warn that
    # writing through the tensor is undefined. The copy is cheap at working size.
    if not array.flags.writeable:
        array = array.copy()
    return torch.from_numpy(np.ascontiguousarray(array))


def image_to_tensor(image: np.ndarray, device: str | torch.device = "cpu") -> torch.Tensor:
    """RGB uint8 (H, W, 3) -> float32 (1, 3, H, W) in [0, 1]."""
    t = _as_tensor(image).to(device)
    return t.permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def mask_to_tensor(mask: np.ndarray, device: str | torch.device = "cpu") -> torch.Tensor:
    """bool (H, W), True = hole -> float32 (1, 1, H, W), 1 = hole."""
    return _as_tensor(mask).to(device).float()[None, None]


def tensor_to_image(t: torch.Tensor) -> np.ndarray:
    """float (1, 3, H, W) in [0, 1] -> RGB uint8 (H, W, 3), rounded."""
    t = t.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8)
    return t[0].permute(1, 2, 0).contiguous().cpu().numpy()


def hole_distance(mask: torch.Tensor) -> torch.Tensor:
    """Euclidean distance (pixels) from each hole pixel to the nearest known pixel, 0 outside
    the hole; ``mask`` ``(N, 1, H, W)`` float, 1 = hole. Same shape, float32, same device."""
    holes = (mask.detach() > 0.5).to(torch.uint8).cpu().numpy()[:, 0]
    dist = [cv2.distanceTransform(m, cv2.DIST_L2, 3) for m in holes]
    return torch.from_numpy(np.stack(dist))[:, None].to(mask.device)


def _binomial_blur(x: torch.Tensor) -> torch.Tensor:
    """5-tap binomial blur (sigma about 1 px) per channel; zeros beyond the border."""
    k = x.new_tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0
    c = x.shape[1]
    x = F.conv2d(x, k.view(1, 1, 1, 5).expand(c, 1, 1, 5), padding=(0, 2), groups=c)
    return F.conv2d(x, k.view(1, 1, 5, 1).expand(c, 1, 5, 1), padding=(2, 0), groups=c)


def known_error_correction(
    fill: torch.Tensor, image: torch.Tensor, mask: torch.Tensor, sure: float = 0.05
) -> torch.Tensor:
    """Shift a network's raw ``fill`` in the hole by its own error on the known pixels nearby.

    A network also predicts the known pixels, and where it gets their colour wrong it gets the
    hole's colour wrong the same way. The error ``image - fill`` on known pixels is spread into
    the hole by :func:`push_pull`, so the hole's border takes the error right beside it and its
    interior a smooth mix of the errors around it. ``fill``, ``image`` (N, 3, H, W), ``mask``
    (N, 1, H, W), 1 = hole. Returns the corrected fill in [0, 1].
    """
    offset = push_pull(image - fill, 1.0 - mask, sure)
    return (fill + offset * mask).clamp(0.0, 1.0)


def push_pull(values: torch.Tensor, weight: torch.Tensor, sure: float = 0.05) -> torch.Tensor:
    """Spread ``values`` (N, C, H, W) known where ``weight`` (N, 1, H, W, in [0, 1]) is > 0
    over the whole image: a Gaussian pyramid of the weighted values and their weight, each
    level half the size of the last; a pixel takes the finest level where at least ``sure``
    of its neighbourhood was known, blended into the coarser levels (normalised convolution
    at every scale). Where the weight is 1 the result is close to the value itself."""
    c = values.shape[1]
    # Push: the weighted values and their weight (one tensor), blurred and halved down to a
    # few pixels.
    levels = [_binomial_blur(torch.cat([values * weight, weight], 1))]
    while min(levels[-1].shape[-2:]) > 2:
        levels.append(_binomial_blur(F.avg_pool2d(levels[-1], 2, ceil_mode=True)))
    total = levels[-1].sum((2, 3), keepdim=True)
    out = total[:, :c] / total[:, c:].clamp(min=1e-12)
    # Pull: from the coarsest level back up.
    for level in reversed(levels):
        val, w = level[:, :c], level[:, c:]
        coarse = F.interpolate(out, size=val.shape[-2:], mode="bilinear", align_corners=False)
        share = (w / sure).clamp(max=1.0)
        out = share * val / w.clamp(min=1e-12) + (1.0 - share) * coarse
    return out


Fill = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def two_scale_fill(
    fill: Fill, image: torch.Tensor, mask: torch.Tensor, border_px: float = 3, ramp_px: float = 3
) -> torch.Tensor:
    """Fill the hole twice and keep each pass where it is better; returns the composite.

    ``fill(image, mask)`` is a network's raw prediction in [0, 1] (``image`` with the hole
    zeroed, ``mask`` 1 = hole). The first pass at the working size gives the hole's interior.
    The second fills the same hole in the composite upsampled 2x (bicubic; the hole upsampled
    exactly) and is averaged back down: it continues the known pixels more exactly, so it
    gives the hole's border, the first ``border_px`` pixels, blending linearly into the first
    pass over the next ``ramp_px``. Measured on the validation photos (README): most of the
    U-Nets' error against the classical methods was in those first pixels. No pixel of the
    hole's original content reaches either pass. Costs about 5x one pass.
    """
    first = fill(image, mask)
    comp = first * mask + image * (1 - mask)
    up = F.interpolate(comp, scale_factor=2, mode="bicubic", align_corners=False).clamp(0, 1)
    mask_up = F.interpolate(mask, scale_factor=2, mode="nearest")
    fine = F.avg_pool2d(fill(up * (1 - mask_up), mask_up), 2)
    weight = ((hole_distance(mask) - border_px) / ramp_px).clamp(0, 1)
    out = weight * first + (1 - weight) * fine
    return out * mask + image * (1 - mask)


def read_config(path: Path) -> dict[str, Any]:
    """The model config stored in a safetensors file's metadata."""
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
    except (SafetensorError, OSError) as exc:
        raise WeightsError(f"Weights file {path.name} cannot be read: {exc}") from exc
    if "config" not in metadata:
        raise WeightsError(f"Weights file {path.name} has no model config in its metadata.")
    return json.loads(metadata["config"])


def config_from_dict(cls: type, values: dict[str, Any]) -> Any:
    """Build config dataclass ``cls`` from ``values``, ignoring unknown keys, tuples restored."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for name, value in values.items():
        if name in fields:
            kwargs[name] = tuple(value) if isinstance(value, list) else value
    return cls(**kwargs)


class TorchInpaintModel(InpaintModel):
    """Base of learned models: builds the network from the weights' config and runs it.

    Subclasses set ``config_class`` and implement :meth:`build` and :meth:`forward`.
    """

    config_class: ClassVar[type]

    net: torch.nn.Module

    def build(self, config: Any) -> torch.nn.Module:
        """The network for ``config`` (an instance of ``config_class``)."""
        raise NotImplementedError

    def forward(
        self, image: torch.Tensor, mask: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """image (1, 3, h, w) in [0, 1], mask (1, 1, h, w) 1 = hole -> (1, 3, h, w)."""
        raise NotImplementedError

    def load(self, weights_path: Path | None) -> None:
        if weights_path is None:
            raise WeightsError(f"{self.spec.label} needs a weights file.")
        config = config_from_dict(self.config_class, read_config(weights_path))
        self.config = config
        net = self.build(config)
        try:
            state = load_file(str(weights_path), device="cpu")
            net.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
        except (SafetensorError, RuntimeError, OSError) as exc:
            raise WeightsError(
                f"Weights file {weights_path.name} does not fit the {self.spec.label} network: "
                f"{str(exc).splitlines()[0]}"
            ) from exc
        net = net.to(self.device).eval()
        if torch.device(self.device).type == "cpu":
            # oneDNN's convolutions run 15-35% faster on channels-last weights (and then
            # return channels-last activations); measured on every shipped network at its
            # working size, outputs within one level (docs/measurements.md, 2026-12-03).
            net = net.to(memory_format=torch.channels_last)
        self.net = net

    @torch.inference_mode()
    def predict(self, image: np.ndarray, mask: np.ndarray, seed: int) -> np.ndarray:
        generator = torch.Generator(device=self.device).manual_seed(seed)
        image_t = image_to_tensor(image, self.device)
        mask_t = mask_to_tensor(mask, self.device)
        # Hole pixels are undefined: zero them so nothing can leak from them.
        image_t = image_t * (1 - mask_t)
        out = self.forward(image_t, mask_t, generator)
        return tensor_to_image(out)


class CoarseToFineModel(TorchInpaintModel):
    """A network that returns ``(coarse, refined, attention)`` (HiFill, DeepFill): the
    refined fill is what the engine uses, the attention feeds the ``cra`` strategy.

    The refined fill is shifted by the network's own colour error on the known pixels around
    the hole (:func:`known_error_correction`): a small network's raw output is often a few
    levels off in colour (over the validation cases HiFill's hole's mean colour was 5.6
    levels off, Telea's 2.6); the correction cut HiFill's L1 by 13% and took its border L1
    below Telea's (docs/measurements.md). Training sees the raw network.

    Subclasses implement :meth:`scores`.
    """

    def scores(self, attention: torch.Tensor, shape: tuple[int, int]) -> AttentionScores | None:
        """The network's attention output (batch of one) as ``cra`` scores for a working
        image of ``shape`` (h, w), or None when it has none on ``cra``'s cells."""
        raise NotImplementedError

    def run_net(
        self, image: torch.Tensor, mask: torch.Tensor, attention: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """The network's ``(coarse, refined, attention)`` on the zeroed image; with
        ``attention=False`` a subclass may skip what only the attention output needs."""
        return self.net(image * (1 - mask), mask)

    def fill(
        self, image: torch.Tensor, mask: torch.Tensor, attention: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The corrected refined fill and the network's raw attention output."""
        _, refined, weights = self.run_net(image, mask, attention)
        return known_error_correction(refined.float(), image, mask), weights

    def forward(
        self, image: torch.Tensor, mask: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        return self.fill(image, mask)[0]

    def _fill_arrays(
        self, image: np.ndarray, mask: np.ndarray, attention: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.fill(
            image_to_tensor(image, self.device), mask_to_tensor(mask, self.device), attention
        )

    @torch.inference_mode()
    def predict_with_attention(
        self, image: np.ndarray, mask: np.ndarray, seed: int
    ) -> tuple[np.ndarray, AttentionScores | None]:
        refined, attention = self._fill_arrays(image, mask)
        return tensor_to_image(refined), self.scores(attention, image.shape[:2])

    @torch.inference_mode()
    def predict(self, image: np.ndarray, mask: np.ndarray, seed: int) -> np.ndarray:
        # The same fill as predict_with_attention's, without pooling cra's scores.
        return tensor_to_image(self._fill_arrays(image, mask, attention=False)[0])
