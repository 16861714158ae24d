"""Classical inpainting that needs no weights: the fallback and the learned models' peers.

OpenCV's Telea and Navier-Stokes propagate colour from the hole border inwards;
PatchMatch (Barnes et al. 2009, the ``pypatchmatch`` wheel) copies patches of the
photo into the hole, coarse to fine, so it brings texture back. All three work at
any resolution; the pipeline feeds them full-resolution crops around each hole
(strategy ``crop`` without resizing), which bounds time and memory.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np

from engine.models.base import InpaintModel

# Radius of the neighbourhood each filled pixel is estimated from; OpenCV's
# documentation and samples use 3-5 px. Larger radii blur more.
_RADIUS = 5

_FLAGS = {"telea": cv2.INPAINT_TELEA, "navier-stokes": cv2.INPAINT_NS}


class ClassicalModel(InpaintModel):
    """OpenCV ``cv2.inpaint`` with the Telea or Navier-Stokes method (chosen by the spec id)."""

    parallel_views = True

    def predict(self, image: np.ndarray, mask: np.ndarray, seed: int) -> np.ndarray:
        hole = mask.astype(np.uint8)
        # cv2 works in BGR, but both methods treat channels independently, so
        # feeding RGB gives the same result without two colour conversions.
        return cv2.inpaint(np.ascontiguousarray(image), hole, _RADIUS, _FLAGS[self.spec.id])


# Half-width of PatchMatch's patches (7x7): the size its authors' examples use. Larger
# patches follow larger structures but are much slower.
PATCHMATCH_RADIUS = 3
# The native library keeps its random seed in one global: one fill at a time.
_PATCHMATCH_LOCK = threading.Lock()


class PatchMatchModel(InpaintModel):
    """PatchMatch inpainting (``pypatchmatch``, MIT): the hole rebuilt from the photo's patches.

    Deterministic per seed (the seed is taken modulo 2**32 by the native code).
    """

    def predict(self, image: np.ndarray, mask: np.ndarray, seed: int) -> np.ndarray:
        import patchmatch

        with _PATCHMATCH_LOCK:
            patchmatch.set_random_seed(seed % 2**32)
            return patchmatch.inpaint(
                np.ascontiguousarray(image), mask, patch_size=PATCHMATCH_RADIUS
            )
