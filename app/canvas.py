"""The canvas widget: shows the photo with its mask and turns mouse input into mask edits.

Drawing costs what is on screen, not what is in the photo: the widget paints
only the exposed rectangle, draws the pyramid level nearest above screen
resolution (a cached 1920x1080 level for an 8K photo at zoom-to-fit), and the
mask overlay is an 8-bit indexed QImage that reads the mask's memory in place.
A brush movement updates the mask inside the segment's rectangle, refreshes
the pyramid blocks under it and schedules a repaint of just that rectangle.
"""

from __future__ import annotations

import enum
import math

import numpy as np
from PySide6.QtCore import QEvent, QPointF, QRect, QRectF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QRegion,
    QResizeEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import QWidget

from app.document import Change, Document, Stroke
from app.geometry import Rect
from app.layers import LayerImages
from app.overlays import draw_outline, ring_region
from app.view import View

MIN_BRUSH = 1
MAX_BRUSH = 1500
BACKGROUND = QColor(46, 46, 50)
# One wheel notch zooms by this factor.
WHEEL_ZOOM = 1.25


class Tool(enum.Enum):
    BRUSH = "brush"
    ERASER = "eraser"
    RECTANGLE = "rectangle"
    LASSO = "lasso"


class Canvas(QWidget):
    """Photo view and mask editor.

    Left button paints with the current tool, the right button erases with it.
    Wheel zooms around the cursor; Space+drag or the middle button pans; Tab
    held shows the original photo.
    """

    brushSizeChanged = Signal(int)
    zoomChanged = Signal(float)
    cursorMoved = Signal(int, int)
    maskEdited = Signal()
    compareChanged = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setMinimumSize(200, 150)
        self.view = View()
        self._doc: Document | None = None
        self._layers: LayerImages | None = None
        self._tool = Tool.BRUSH
        self._brush_size = 40
        self._fit_mode = True
        self._compare = False
        self._mask_visible = True
        self._space = False
        self._pan_from: QPointF | None = None
        self._stroke: Stroke | None = None
        self._drag_from: tuple[float, float] | None = None
        self._drag_erase = False
        self._lasso: list[tuple[float, float]] = []
        self._rubber: Rect | None = None
        self._pointer: QPointF | None = None

    # -- state ---------------------------------------------------------------------------

    @property
    def document(self) -> Document | None:
        return self._doc

    def set_document(self, doc: Document | None) -> None:
        """Show ``doc`` (or nothing) fitted to the window."""
        if self._doc is not None:
            self._doc.unsubscribe(self._on_change)
        self._cancel_gesture()
        if self._layers is not None:
            self._layers.stop()
        self._doc = doc
        self._layers = LayerImages(doc, self._layers_ready) if doc is not None else None
        if doc is not None:
            doc.subscribe(self._on_change)
            self.fit()
        self.update()

    @property
    def tool(self) -> Tool:
        return self._tool

    def set_tool(self, tool: Tool) -> None:
        self._cancel_gesture()
        self._tool = tool
        self._update_pointer()

    @property
    def brush_size(self) -> int:
        """Brush diameter in image pixels."""
        return self._brush_size

    def set_brush_size(self, size: int) -> None:
        size = max(MIN_BRUSH, min(MAX_BRUSH, int(size)))
        if size == self._brush_size:
            return
        self._update_pointer()
        self._brush_size = size
        self._update_pointer()
        self.brushSizeChanged.emit(size)

    def set_mask_visible(self, visible: bool) -> None:
        self._mask_visible = visible
        self.update()

    def set_preview(self, image: np.ndarray | None) -> None:
        """Show a gallery sample (RGB uint8, the photo's size) in place of the photo, without
        the mask over it; None shows the photo again. Comparing then shows the photo."""
        if self._layers is None:
            return
        self._layers.set_preview(image)
        self.update()

    @property
    def previewing(self) -> bool:
        return self._layers is not None and self._layers.previewing

    def set_compare(self, on: bool) -> None:
        """Show the photo as it was opened (True) or as it is now."""
        if on != self._compare:
            self._compare = on
            self.update()
            self.compareChanged.emit(on)

    @property
    def comparing(self) -> bool:
        return self._compare

    # -- zoom and pan --------------------------------------------------------------------

    def fit(self) -> None:
        """Zoom so the whole photo fits the window (and keep fitting when it is resized)."""
        self._fit_mode = True
        if self._doc is not None:
            self.view.fit(self._doc.width, self._doc.height, self.width(), self.height())
        self._view_changed()

    def actual_size(self) -> None:
        """100%: one image pixel per screen pixel, around the window's centre."""
        self.zoom_to(1.0, QPointF(self.width() / 2, self.height() / 2))

    def zoom_to(self, scale: float, anchor: QPointF | None = None) -> None:
        """Set the zoom keeping the image point under ``anchor`` (default: centre) in place."""
        if anchor is None:
            anchor = QPointF(self.width() / 2, self.height() / 2)
        self._fit_mode = False
        self.view.zoom_at(scale, anchor.x(), anchor.y())
        if abs(self.view.scale - 1.0) < 1e-9:
            # Whole-pixel offsets at 100% keep the photo sharp.
            self.view.offset_x, self.view.offset_y = (
                round(self.view.offset_x),
                round(self.view.offset_y),
            )
        self._view_changed()

    def zoom_by(self, factor: float, anchor: QPointF | None = None) -> None:
        self.zoom_to(self.view.scale * factor, anchor)

    def _view_changed(self) -> None:
        self.update()
        self.zoomChanged.emit(self.view.scale)

    # -- coordinates ---------------------------------------------------------------------

    def image_point(self, pos: QPointF) -> tuple[float, float]:
        return self.view.to_image(pos.x(), pos.y())

    def widget_rect(self, rect: Rect, margin: int = 2) -> QRect:
        """The widget pixels showing image rectangle ``rect`` (plus a margin for filtering)."""
        x0, y0 = self.view.to_widget(rect.x0, rect.y0)
        x1, y1 = self.view.to_widget(rect.x1, rect.y1)
        return QRect(
            math.floor(x0) - margin,
            math.floor(y0) - margin,
            math.ceil(x1 - x0) + 2 * margin + 1,
            math.ceil(y1 - y0) + 2 * margin + 1,
        )

    # -- document changes ----------------------------------------------------------------

    def _on_change(self, change: Change) -> None:
        layers = self._layers
        deferred = layers is not None and not layers.changed(change)
        if deferred and layers.level_for_scale(self.view.scale) > 0:
            return  # a zoomed-out view repaints band by band as the levels catch up
        self.update(self.widget_rect(change.rect))

    def _layers_ready(self, rect: Rect) -> None:
        # A band of a coarse level caught up: only zoomed-out views show it.
        if self._layers is not None and self._layers.level_for_scale(self.view.scale) > 0:
            self.update(self.widget_rect(rect))

    @property
    def layers(self) -> LayerImages | None:
        """The images the canvas draws (pyramids of photo and mask)."""
        return self._layers

    # -- painting ------------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(event.rect(), BACKGROUND)
        if self._doc is None or self._layers is None:
            painter.setPen(QColor(170, 170, 175))
            painter.drawText(
                self.rect(),
                Qt.AlignmentFlag.AlignCenter,
                "Open a photo (Ctrl+O), drop one here or paste one (Ctrl+V)",
            )
            return
        scale = self.view.scale
        level = self._layers.level_for_scale(scale)
        factor = 2**level
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, scale * factor < 1.0)
        photo = self._layers.photo(level, original=self._compare)
        painter.drawImage(self._target(photo.width(), photo.height(), factor), photo)
        if self._mask_visible and not self._compare and not self._layers.previewing:
            mask = self._layers.mask(level)
            painter.drawImage(self._target(mask.width(), mask.height(), factor), mask)
        self._paint_tool(painter)

    def _target(self, width: int, height: int, factor: int) -> QRectF:
        s = self.view.scale * factor
        return QRectF(self.view.offset_x, self.view.offset_y, width * s, height * s)

    def _paint_tool(self, painter: QPainter) -> None:
        view = self.view
        rect = None
        if self._rubber is not None:
            x0, y0 = view.to_widget(self._rubber.x0, self._rubber.y0)
            x1, y1 = view.to_widget(self._rubber.x1, self._rubber.y1)
            rect = QRectF(x0, y0, x1 - x0, y1 - y0)
        lasso = [QPointF(*view.to_widget(x, y)) for x, y in self._lasso]
        ring = None
        if self._pointer is not None and self._shows_brush():
            ring = (self._pointer, self._brush_size / 2 * view.scale)
        draw_outline(painter, rect, lasso, ring)

    def _shows_brush(self) -> bool:
        return self._tool in (Tool.BRUSH, Tool.ERASER) and not self._panning_mode()

    def _pointer_region(self) -> QRegion:
        if self._pointer is None:
            return QRegion()
        return ring_region(self._pointer, self._brush_size / 2 * self.view.scale)

    def _update_pointer(self) -> None:
        if self._pointer is not None:
            self.update(self._pointer_region())

    def _move_pointer(self, pos: QPointF | None) -> None:
        if self._shows_brush():
            self._update_pointer()
        self._pointer = pos
        if self._shows_brush():
            self._update_pointer()

    # -- input ---------------------------------------------------------------------------

    def _panning_mode(self) -> bool:
        return self._space or self._pan_from is not None

    def mousePressEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        button = event.button()
        if button == Qt.MouseButton.MiddleButton or (
            self._space and button == Qt.MouseButton.LeftButton
        ):
            self._pan_from = pos
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
            return
        if self._doc is None or button not in (
            Qt.MouseButton.LeftButton,
            Qt.MouseButton.RightButton,
        ):
            return
        erase = button == Qt.MouseButton.RightButton
        x, y = self.image_point(pos)
        if self._tool in (Tool.BRUSH, Tool.ERASER):
            erase = erase != (self._tool == Tool.ERASER)
            self._stroke = self._doc.begin_stroke(self._brush_size / 2, erase)
            self._stroke.add_point(x, y)
        elif self._tool == Tool.RECTANGLE:
            self._drag_from, self._drag_erase = (x, y), erase
            self._rubber = Rect.around((x,), (y,))
        elif self._tool == Tool.LASSO:
            self._drag_erase = erase
            self._lasso = [(x, y)]

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        if self._pan_from is not None:
            delta = pos - self._pan_from
            self._pan_from = pos
            self._fit_mode = False
            self.view.pan(delta.x(), delta.y())
            self.update()
            return
        self._move_pointer(pos)
        x, y = self.image_point(pos)
        if self._doc is not None and 0 <= x < self._doc.width and 0 <= y < self._doc.height:
            self.cursorMoved.emit(int(x), int(y))
        if self._stroke is not None:
            self._stroke.add_point(x, y)
        elif self._drag_from is not None and self._rubber is not None:
            old = self._rubber
            self._rubber = Rect.around((self._drag_from[0], x), (self._drag_from[1], y))
            self.update(self.widget_rect(old.union(self._rubber), margin=3))
        elif self._lasso:
            last = self._lasso[-1]
            self._lasso.append((x, y))
            self.update(self.widget_rect(Rect.around((last[0], x), (last[1], y)), margin=3))

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._pan_from is not None and event.button() in (
            Qt.MouseButton.MiddleButton,
            Qt.MouseButton.LeftButton,
        ):
            self._pan_from = None
            self._restore_cursor()
            return
        doc = self._doc
        if doc is None:
            return
        if self._stroke is not None:
            self._stroke.finish()
            self._stroke = None
            self.maskEdited.emit()
        elif self._rubber is not None:
            rect, erase = self._rubber, self._drag_erase
            self._rubber = self._drag_from = None
            self.update(self.widget_rect(rect, margin=3))
            if doc.fill_rect(rect, erase):
                self.maskEdited.emit()
        elif self._lasso:
            points, self._lasso = self._lasso, []
            xs, ys = zip(*points, strict=True)
            self.update(self.widget_rect(Rect.around(xs, ys), margin=3))
            if doc.fill_polygon(points, self._drag_erase):
                self.maskEdited.emit()

    def _cancel_gesture(self) -> None:
        if self._stroke is not None:
            self._stroke.finish()
            self._stroke = None
            self.maskEdited.emit()
        self._rubber = self._drag_from = None
        self._lasso = []
        self.update()

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120
        if steps and self._doc is not None:
            self.zoom_by(WHEEL_ZOOM**steps, event.position())
        event.accept()

    def leaveEvent(self, event: QEvent) -> None:
        self._move_pointer(None)
        super().leaveEvent(event)

    def event(self, event: QEvent) -> bool:
        # Tab normally moves the focus; here holding it shows the original photo.
        if event.type() in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease):
            key_event: QKeyEvent = event  # type: ignore[assignment]
            if key_event.key() == Qt.Key.Key_Tab and not key_event.modifiers():
                if not key_event.isAutoRepeat():
                    self.set_compare(event.type() == QEvent.Type.KeyPress)
                return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._update_pointer()
            self._space = True
            self.setCursor(Qt.CursorShape.OpenHandCursor)
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = False
            self._restore_cursor()
            self._update_pointer()
            return
        super().keyReleaseEvent(event)

    def focusOutEvent(self, event) -> None:
        self._space = False
        self.set_compare(False)
        self._restore_cursor()
        super().focusOutEvent(event)

    def _restore_cursor(self) -> None:
        self.setCursor(Qt.CursorShape.OpenHandCursor if self._space else Qt.CursorShape.CrossCursor)

    def resizeEvent(self, event: QResizeEvent) -> None:
        if self._fit_mode:
            self.fit()
        super().resizeEvent(event)
