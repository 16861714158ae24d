"""numpy <-> QImage, in the GUI thread only.

The wrappers share memory with the numpy array (no copy); the returned
:class:`ArrayImage` keeps the array alive for as long as the QImage is used.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from PySide6.QtGui import QColor, QImage


@dataclass(frozen=True)
class ArrayImage:
    """A QImage that reads the pixels of ``array`` in place."""

    array: np.ndarray
    image: QImage


def wrap_rgb(array: np.ndarray) -> ArrayImage:
    """An RGB888 QImage over an RGB uint8 ``(H, W, 3)`` array with contiguous rows."""
    h, w = array.shape[:2]
    if array.strides[1:] != (3, 1):
        array = np.ascontiguousarray(array)
    return ArrayImage(
        array, QImage(array.data, w, h, array.strides[0], QImage.Format.Format_RGB888)
    )


def wrap_indexed(array: np.ndarray, colors: list[int]) -> ArrayImage:
    """An 8-bit indexed QImage over a uint8 (or bool) ``(H, W)`` array with a colour table."""
    array = array.view(np.uint8)
    h, w = array.shape
    image = QImage(array.data, w, h, array.strides[0], QImage.Format.Format_Indexed8)
    image.setColorTable(colors)
    return ArrayImage(array, image)


def overlay_colors(color: QColor, opacity: float, levels: int) -> list[int]:
    """Colour table mapping index ``i`` to ``color`` at ``opacity * i / (levels - 1)``."""
    r, g, b = color.red(), color.green(), color.blue()
    table = []
    for i in range(levels):
        alpha = round(255 * opacity * i / (levels - 1))
        table.append((alpha << 24) | (r << 16) | (g << 8) | b)
    return table


def to_rgb_array(image: QImage) -> np.ndarray:
    """A read-only RGB uint8 ``(H, W, 3)`` copy of any QImage (e.g. from the clipboard)."""
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    h, w = image.height(), image.width()
    view = np.frombuffer(image.constBits(), np.uint8, count=image.bytesPerLine() * h)
    array = view.reshape(h, image.bytesPerLine())[:, : w * 3].reshape(h, w, 3).copy()
    array.flags.writeable = False
    return array


def thumbnail(image: np.ndarray, side: int) -> QImage:
    """A QImage copy of ``image`` scaled so its long side is ``side`` px (cheap on 8K photos)."""
    h, w = image.shape[:2]
    # Subsample to a few times the target first: an area filter over 33 Mpx costs ~40 ms.
    step = max(1, max(h, w) // (side * 4))
    small = image[::step, ::step]
    sh, sw = small.shape[:2]
    scale = side / max(sh, sw)
    size = (max(1, round(sw * scale)), max(1, round(sh * scale)))
    small = np.ascontiguousarray(cv2.resize(small, size, interpolation=cv2.INTER_AREA))
    return wrap_rgb(small).image.copy()
