"""A test double of a multi-sample model: fills the hole with a colour that depends on the seed."""

from __future__ import annotations

import time

import numpy as np

from engine.models.base import InpaintModel


class SeededFill(InpaintModel):
    def predict(self, image: np.ndarray, mask: np.ndarray, seed: int) -> np.ndarray:
        out = image.copy()
        out[mask] = (seed * 40 % 256, 255 - seed * 40 % 256, 128)
        return out


class SlowSeededFill(SeededFill):
    """SeededFill that takes a while per sample (to cancel in the middle of sampling)."""

    def predict(self, image: np.ndarray, mask: np.ndarray, seed: int) -> np.ndarray:
        time.sleep(0.4)
        return super().predict(image, mask, seed)
