"""The interface every inpainting model implements.

A model only fills holes at its working size: the high-resolution strategies
(:mod:`engine.highres`) decide what the model sees (the whole image, a
downscaled copy or crops around the holes) and paste its output back.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.jobs import CancelToken
from engine.registry import ModelSpec


@dataclass(frozen=True)
class AttentionScores:
    """Where each cell of a working-size image borrows its content from (:mod:`engine.highres.cra`).

    Attributes:
        scores: torch float (L, L) on the model's device, L = (h / cell) * (w / cell) cells of
            the working image numbered row by row; row i holds cell i's weights over all cells
            (context cells, i.e. cells without hole pixels, carry the weight).
        cell: side of a cell in working-size pixels.
    """

    scores: Any
    cell: int


class InpaintModel:
    """Base class of all models.

    Subclasses implement :meth:`predict`; learned models also :meth:`load`.
    Instances live in the engine's worker thread and are reused across jobs.
    """

    #: ``predict`` may run on several crops at once from a thread pool (true for
    #: OpenCV methods, which release the GIL; torch models use all cores already).
    parallel_views: bool = False
    #: The fill should carry the photo's own texture (the request's ``texture`` option,
    #: :class:`engine.texture.TextureRefined`): ``cra`` copies residuals, not averages them.
    texture: bool = False

    def __init__(self, spec: ModelSpec, device: str = "cpu") -> None:
        self.spec = spec
        self.device = device

    def load(self, weights_path: Path | None) -> None:
        """Load weights (already verified against the manifest). No-op for classical models."""

    def predict(self, image: np.ndarray, mask: np.ndarray, seed: int) -> np.ndarray:
        """Fill the hole of one image at working size.

        Args:
            image: RGB uint8 (h, w, 3); h and w are multiples of ``spec.size_multiple``
                and at most ``spec.native_size`` when the spec sets one.
            mask: bool (h, w), True = hole. Hole pixels of ``image`` are undefined
                and must not influence the result.
            seed: makes stochastic models reproducible.

        Returns:
            RGB uint8 (h, w, 3). Only its hole pixels are used.
        """
        raise NotImplementedError

    def predict_with_attention(
        self, image: np.ndarray, mask: np.ndarray, seed: int
    ) -> tuple[np.ndarray, AttentionScores | None]:
        """Like :meth:`predict`, plus the model's own attention scores when it computes them.

        The ``cra`` strategy aggregates full-resolution residuals with these scores; models
        without an attention module return None and ``cra`` derives scores from their fill.
        """
        return self.predict(image, mask, seed), None

    def generate(
        self,
        image: np.ndarray,
        mask: np.ndarray,
        seeds: Sequence[int],
        cancel: CancelToken | None = None,
        attention: bool = False,
    ) -> Iterator[Any]:
        """Yield one completion per seed, one at a time (a cancellation point between each).

        Every strategy asks for all of a view's samples through this one call, so a
        multi-sample model may override it (e.g. to draw many and keep the best) and the
        override holds at any resolution. With ``attention`` each item is a pair
        ``(fill, AttentionScores | None)`` (what ``cra`` needs), else the fill alone.
        """
        for seed in seeds:
            if cancel is not None:
                cancel.check()
            yield (
                self.predict_with_attention(image, mask, seed)
                if attention
                else self.predict(image, mask, seed)
            )
