"""What the canvas draws: QImages over the pyramid levels of the photo, the original and the mask.

Lives in the GUI thread. Every QImage here wraps a numpy array in place; the
arrays are kept up to date region by region from the document's changes.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QColor, QImage

from app.document import Change, Document
from app.pyramid import Pyramid
from app.qimage import ArrayImage, overlay_colors, wrap_indexed, wrap_rgb

MASK_COLOR = QColor(255, 40, 80)
MASK_OPACITY = 0.5


class LayerImages:
    """Pyramids and their QImage wrappers for one document."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self._photo = Pyramid(doc.photo)
        self._original: Pyramid | None = None
        self._mask = Pyramid(doc.mask, gain=255, blank=not doc.mask.any())
        self._cache: dict[tuple[str, int], ArrayImage] = {}
        # Level 0 of the mask is 0/1; coarser levels hold 0..255 coverage.
        self._mask_colors0 = overlay_colors(MASK_COLOR, MASK_OPACITY, 2)
        self._mask_colors = overlay_colors(MASK_COLOR, MASK_OPACITY, 256)

    def level_for_scale(self, scale: float) -> int:
        return self._photo.level_for_scale(scale)

    def changed(self, change: Change) -> None:
        """Bring the levels up to date with a change of the document."""
        if change.mask:
            self._mask.update(change.rect)
        if change.photo:
            self._photo.set_base(self.doc.photo, change.rect)

    def photo(self, level: int, original: bool = False) -> QImage:
        """Level ``level`` of the current photo (or of the photo as opened)."""
        pyramid = self._photo
        if original and self.doc.original is not self.doc.photo:
            if self._original is None:
                self._original = Pyramid(self.doc.original)
            pyramid = self._original
        key = ("original" if pyramid is self._original else "photo", level)
        return self._wrapped(key, pyramid.level(level), rgb=True)

    def mask(self, level: int) -> QImage:
        """Level ``level`` of the mask as a translucent overlay."""
        return self._wrapped(("mask", level), self._mask.level(level), rgb=False)

    def _wrapped(self, key: tuple[str, int], array: np.ndarray, rgb: bool) -> QImage:
        cached = self._cache.get(key)
        if cached is None or (cached.array.base is not array and cached.array is not array):
            if rgb:
                cached = wrap_rgb(array)
            else:
                colors = self._mask_colors0 if key[1] == 0 else self._mask_colors
                cached = wrap_indexed(array, colors)
            self._cache[key] = cached
        return cached.image
