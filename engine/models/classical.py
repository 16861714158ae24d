"""Classical inpainting with OpenCV: the fallback that needs no weights.

Both methods propagate colour from the hole border inwards, so they work at
any resolution; the pipeline feeds them full-resolution crops around each
hole (strategy ``crop`` without resizing), which bounds time and memory.
"""

from __future__ import annotations

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
