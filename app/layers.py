"""What the canvas draws: QImages over the pyramid levels of the photo, the original and the mask.

Lives in the GUI thread. Every QImage here wraps a numpy array in place. The
levels follow the document's changes region by region: small regions (a
brush segment) at once, large ones (an inpainted 8K photo, an inverted
mask) in horizontal bands between events, a few milliseconds at a time, so
the event loop never stalls; the canvas repaints each band when it is ready.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QTimer
from PySide6.QtGui import QColor, QImage

from app.document import Change, Document
from app.geometry import Rect
from app.pyramid import Pyramid
from app.qimage import ArrayImage, overlay_colors, wrap_indexed, wrap_rgb

MASK_COLOR = QColor(255, 40, 80)
MASK_OPACITY = 0.5
# Regions up to this many pixels are brought up to date at once.
SYNC_PIXELS = 1 << 20
# Time spent on pending bands per event-loop turn.
SLICE_SECONDS = 0.006


class LayerImages:
    """Pyramids and their QImage wrappers for one document.

    Args:
        doc: the document shown.
        on_ready: called with an image rectangle whose levels became up to
            date later than the change that caused it (to repaint it).
    """

    def __init__(self, doc: Document, on_ready: Callable[[Rect], None] | None = None) -> None:
        self.doc = doc
        self._on_ready = on_ready
        self._photo = Pyramid(doc.photo)
        self._original: Pyramid | None = None
        # A gallery sample shown in place of the photo until the user uses it or moves on.
        self._preview: Pyramid | None = None
        self._mask = Pyramid(doc.mask, gain=255, blank=not doc.mask.any())
        self._cache: dict[tuple[str, int], ArrayImage] = {}
        self._pending: list[tuple[Pyramid, Rect]] = []
        self._timer = QTimer()
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._work)
        # Level 0 of the mask is 0/1; coarser levels hold 0..255 coverage.
        self._mask_colors0 = overlay_colors(MASK_COLOR, MASK_OPACITY, 2)
        self._mask_colors = overlay_colors(MASK_COLOR, MASK_OPACITY, 256)

    def level_for_scale(self, scale: float) -> int:
        return self._photo.level_for_scale(scale)

    def changed(self, change: Change) -> bool:
        """Bring the levels up to date with a change of the document, or schedule it.

        Returns False when coarse levels will catch up later, band by band
        (``on_ready`` is called for each); level 0 is always current at once.
        """
        now = True
        if change.mask:
            now &= self._schedule(self._mask, change.rect)
        if change.photo:
            self._photo.set_base(self.doc.photo)
            now &= self._schedule(self._photo, change.rect)
        return now

    @property
    def pending(self) -> bool:
        return bool(self._pending)

    def flush(self) -> None:
        """Finish all pending level updates now."""
        while self._pending:
            self._run_one()

    def _schedule(self, pyramid: Pyramid, rect: Rect) -> bool:
        if rect.width * rect.height <= SYNC_PIXELS:
            pyramid.update(rect)
            return True
        # Bands aligned to the coarsest level's blocks, about SYNC_PIXELS each.
        align = 2**pyramid.max_level
        rows = max(align, SYNC_PIXELS // max(1, rect.width) // align * align)
        y = rect.y0
        while y < rect.y1:
            y1 = min(rect.y1, (y // align + 1) * align + rows - align)
            self._pending.append((pyramid, Rect(rect.x0, y, rect.x1, y1)))
            y = y1
        if not self._timer.isActive():
            self._timer.start()
        return False

    def _run_one(self) -> None:
        pyramid, band = self._pending.pop(0)
        pyramid.update(band)
        if self._on_ready is not None:
            self._on_ready(band)

    def _work(self) -> None:
        deadline = time.perf_counter() + SLICE_SECONDS
        while self._pending and time.perf_counter() < deadline:
            self._run_one()
        if self._pending:
            self._timer.start()

    @property
    def previewing(self) -> bool:
        return self._preview is not None

    @property
    def preview(self) -> np.ndarray | None:
        """The image shown in place of the photo, if any."""
        return self._preview.base if self._preview is not None else None

    def set_preview(self, image: np.ndarray | None) -> None:
        """Show ``image`` (RGB uint8, the photo's size) instead of the photo, or stop (None)."""
        if image is not None and image.shape != self.doc.photo.shape:
            raise ValueError(f"preview is {image.shape}, photo is {self.doc.photo.shape}")
        self._preview = Pyramid(image) if image is not None else None
        for key in [k for k in self._cache if k[0] == "preview"]:
            del self._cache[key]

    def photo(self, level: int, original: bool = False) -> QImage:
        """Level ``level`` of the current photo (or of the photo as opened). While a preview
        is shown it replaces the photo, and ``original`` shows the photo as it is now."""
        if self._preview is not None:
            if original:
                return self._wrapped(("photo", level), self._photo.level(level), rgb=True)
            return self._wrapped(("preview", level), self._preview.level(level), rgb=True)
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
        if cached is None or (cached.array is not array and cached.array.base is not array):
            if rgb:
                cached = wrap_rgb(array)
            else:
                colors = self._mask_colors0 if key[1] == 0 else self._mask_colors
                cached = wrap_indexed(array, colors)
            self._cache[key] = cached
        return cached.image

    def stop(self) -> None:
        """Drop pending work (the document is closing)."""
        self._pending.clear()
        self._timer.stop()
