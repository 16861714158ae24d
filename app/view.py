"""Where the photo sits in the canvas widget: a scale and an offset, without Qt.

Widget point ``w`` shows image point ``(w - offset) / scale``; image
coordinates have ``(0, 0)`` at the top-left corner of the first pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

MIN_SCALE = 1 / 64
MAX_SCALE = 32.0


@dataclass
class View:
    """Zoom and pan state of the canvas."""

    scale: float = 1.0
    offset_x: float = 0.0
    offset_y: float = 0.0

    def to_image(self, x: float, y: float) -> tuple[float, float]:
        """Widget coordinates to image coordinates."""
        return (x - self.offset_x) / self.scale, (y - self.offset_y) / self.scale

    def to_widget(self, x: float, y: float) -> tuple[float, float]:
        """Image coordinates to widget coordinates."""
        return x * self.scale + self.offset_x, y * self.scale + self.offset_y

    def zoom_at(self, scale: float, x: float, y: float) -> None:
        """Set the scale keeping the image point under widget point ``(x, y)`` in place."""
        ix, iy = self.to_image(x, y)
        self.scale = min(MAX_SCALE, max(MIN_SCALE, scale))
        self.offset_x = x - ix * self.scale
        self.offset_y = y - iy * self.scale

    def pan(self, dx: float, dy: float) -> None:
        self.offset_x += dx
        self.offset_y += dy

    def fit(self, image_w: int, image_h: int, view_w: int, view_h: int, margin: int = 8) -> None:
        """Scale the whole image into the view (never above 100%) and centre it."""
        room_w, room_h = max(1, view_w - 2 * margin), max(1, view_h - 2 * margin)
        self.scale = max(MIN_SCALE, min(1.0, room_w / image_w, room_h / image_h))
        self.center(image_w, image_h, view_w, view_h)

    def center(self, image_w: int, image_h: int, view_w: int, view_h: int) -> None:
        """Centre the image in the view at the current scale (whole widget pixels, no blur)."""
        self.offset_x = round((view_w - image_w * self.scale) / 2)
        self.offset_y = round((view_h - image_h * self.scale) / 2)
