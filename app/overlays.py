"""Drawing the tool feedback over the canvas: brush ring, rectangle, lasso (GUI thread)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from PySide6.QtCore import QPointF, QRect, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPen, QPolygonF, QRegion

# A light solid line under a dark dashed one stays visible on any photo.
_LIGHT = QPen(QColor(255, 255, 255, 230), 1.0)
_DARK = QPen(QColor(0, 0, 0, 200), 1.0, Qt.PenStyle.DashLine)


def draw_outline(
    painter: QPainter,
    rect: QRectF | None = None,
    polyline: Sequence[QPointF] = (),
    ring: tuple[QPointF, float] | None = None,
) -> None:
    """Draw a rubber-band rectangle, a lasso polyline and/or a brush ring (widget coordinates)."""
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    for pen in (_LIGHT, _DARK):
        painter.setPen(pen)
        if rect is not None:
            painter.drawRect(rect)
        if len(polyline) > 1:
            painter.drawPolyline(QPolygonF(list(polyline)))
        if ring is not None:
            painter.drawEllipse(ring[0], ring[1], ring[1])


def ring_region(center: QPointF, radius: float) -> QRegion:
    """The widget pixels a brush ring covers: its bounding square minus the inscribed square.

    Moving a large brush then repaints a thin frame instead of the whole disk.
    """
    outer = QRect(
        math.floor(center.x() - radius) - 2,
        math.floor(center.y() - radius) - 2,
        math.ceil(2 * radius) + 5,
        math.ceil(2 * radius) + 5,
    )
    region = QRegion(outer)
    inner = radius / math.sqrt(2) - 2
    if inner > 4:
        side = math.floor(2 * inner)
        x, y = math.ceil(center.x() - inner), math.ceil(center.y() - inner)
        region -= QRegion(QRect(x, y, side, side))
    return region
