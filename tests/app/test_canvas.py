"""The canvas widget driven by real (synthetic) mouse and keyboard events."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from app.canvas import Tool
from app.document import Document


@pytest.fixture
def canvas(window, make_photo):
    """The window's canvas showing a 160x120 photo at 100%, its origin at widget (20, 30)."""
    window.set_document(Document(make_photo(160, 120)))
    c = window.canvas
    c.view.scale, c.view.offset_x, c.view.offset_y = 1.0, 20.0, 30.0
    c._fit_mode = False
    c.set_brush_size(10)
    c.setFocus()
    return c


def drag(qtbot, widget, points, button=Qt.MouseButton.LeftButton) -> None:
    qtbot.mousePress(widget, button, pos=QPoint(*points[0]))
    for p in points[1:]:
        qtbot.mouseMove(widget, QPoint(*p))
    qtbot.mouseRelease(widget, button, pos=QPoint(*points[-1]))


def disk_between(shape, a, b, radius):
    """Pixels whose centres lie within radius of segment ab (independent float64 reference)."""
    h, w = shape
    ys, xs = np.mgrid[0:h, 0:w] + 0.5
    a, b = np.asarray(a, float), np.asarray(b, float)
    d = b - a
    t = np.clip(((xs - a[0]) * d[0] + (ys - a[1]) * d[1]) / max(d @ d, 1e-12), 0, 1)
    return (xs - a[0] - t * d[0]) ** 2 + (ys - a[1] - t * d[1]) ** 2 <= radius**2


def test_brush_stroke_sets_exactly_the_pixels_under_the_brush(qtbot, canvas) -> None:
    drag(qtbot, canvas, [(40, 60), (120, 60)])
    # Widget (40, 60) is image (20, 30): the stroke covers a 10 px wide band with round ends.
    expected = disk_between((120, 160), (20, 30), (100, 30), 5)
    np.testing.assert_array_equal(canvas.document.mask, expected)
    assert canvas.document.mask.sum() == expected.sum() > 800


def test_eraser_undo_redo_with_shortcuts(qtbot, window, canvas) -> None:
    drag(qtbot, canvas, [(40, 60), (120, 60)])
    painted = canvas.document.mask.copy()
    window.act.eraser.trigger()
    assert canvas.tool is Tool.ERASER
    drag(qtbot, canvas, [(80, 40), (80, 80)])
    erased = canvas.document.mask.copy()
    removed = painted & ~erased
    np.testing.assert_array_equal(
        removed, painted & disk_between((120, 160), (60, 10), (60, 50), 5)
    )
    assert not (erased & ~painted).any()
    qtbot.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    np.testing.assert_array_equal(canvas.document.mask, painted)
    qtbot.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert not canvas.document.mask.any()
    mods = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    qtbot.keyClick(canvas, Qt.Key.Key_Z, mods)
    qtbot.keyClick(canvas, Qt.Key.Key_Z, mods)
    np.testing.assert_array_equal(canvas.document.mask, erased)


def test_right_button_erases_and_rectangle_tool_fills(qtbot, window, canvas) -> None:
    window.act.rectangle.trigger()
    drag(qtbot, canvas, [(30, 40), (70, 90)])
    mask = canvas.document.mask
    assert mask.sum() == 40 * 50 and mask[10:60, 10:50].all()
    window.act.brush.trigger()
    drag(qtbot, canvas, [(50, 65), (50, 65)], Qt.MouseButton.RightButton)
    assert mask.sum() == 40 * 50 - disk_between(mask.shape, (30, 35), (30, 35), 5).sum()


def test_brush_size_keys_and_slider(qtbot, window, canvas) -> None:
    qtbot.keyClick(canvas, Qt.Key.Key_BracketRight)
    assert canvas.brush_size == 12
    assert window.size_spin.value() == 12
    qtbot.keyClick(canvas, Qt.Key.Key_BracketLeft)
    assert canvas.brush_size == 10
    window.size_slider.setValue(33)
    assert canvas.brush_size == 33


def test_wheel_zoom_keeps_the_point_under_the_cursor(qtbot, canvas) -> None:
    pos = QPointF(97, 71)
    before = canvas.image_point(pos)
    for delta in (120, 120, -360, 240):
        event = QWheelEvent(
            pos,
            canvas.mapToGlobal(pos),
            QPoint(0, 0),
            QPoint(0, delta),
            Qt.MouseButton.NoButton,
            Qt.KeyboardModifier.NoModifier,
            Qt.ScrollPhase.NoScrollPhase,
            False,
        )
        QApplication.sendEvent(canvas, event)
        assert canvas.image_point(pos) == pytest.approx(before)
    assert canvas.view.scale == pytest.approx(1.25)  # +2 -3 +2 notches


def test_pan_with_space_drag_and_middle_button(qtbot, canvas) -> None:
    qtbot.keyPress(canvas, Qt.Key.Key_Space)
    drag(qtbot, canvas, [(50, 50), (80, 70)])
    qtbot.keyRelease(canvas, Qt.Key.Key_Space)
    assert (canvas.view.offset_x, canvas.view.offset_y) == (50.0, 50.0)
    drag(qtbot, canvas, [(50, 50), (40, 45)], Qt.MouseButton.MiddleButton)
    assert (canvas.view.offset_x, canvas.view.offset_y) == (40.0, 45.0)
    assert not canvas.document.mask.any()  # panning never paints


def test_displayed_pixels_follow_the_mask_and_tab_shows_the_original(qtbot, canvas) -> None:
    photo = canvas.document.photo
    shown = canvas.grab().toImage()
    assert shown.pixelColor(20 + 50, 30 + 40).getRgb()[:3] == tuple(photo[40, 50])
    drag(qtbot, canvas, [(70, 70), (70, 70)])
    tinted = canvas.grab().toImage().pixelColor(70, 70).getRgb()[:3]
    assert tinted != tuple(photo[40, 50])  # the mask overlay is drawn over the hole
    qtbot.keyPress(canvas, Qt.Key.Key_Tab)
    assert canvas.comparing
    assert canvas.grab().toImage().pixelColor(70, 70).getRgb()[:3] == tuple(photo[40, 50])
    qtbot.keyRelease(canvas, Qt.Key.Key_Tab)
    assert not canvas.comparing


def test_fit_and_actual_size(qtbot, window, make_photo) -> None:
    window.set_document(Document(make_photo(3000, 2000)))
    c = window.canvas
    assert c.view.scale < 0.5
    x0, y0 = c.view.to_widget(0, 0)
    x1, y1 = c.view.to_widget(3000, 2000)
    assert x0 >= 0 and y0 >= 0 and x1 <= c.width() and y1 <= c.height()
    window.act.actual.trigger()
    assert c.view.scale == 1.0
    window.act.fit.trigger()
    assert c.view.to_widget(3000, 2000)[0] <= c.width()


def test_large_changes_reach_the_zoomed_out_view_in_bands(qtbot, window, make_photo) -> None:
    from app.pyramid import Pyramid

    window.set_document(Document(make_photo(3000, 2000)))
    c = window.canvas
    c.fit()
    c.grab()  # builds the coarse levels the fit view draws
    level = c.layers.level_for_scale(c.view.scale)
    assert level >= 2
    window.act.invert.trigger()  # 6 Mpx changed: too much to redo in one go
    assert c.layers.pending
    qtbot.waitUntil(lambda: not c.layers.pending, timeout=5000)
    rebuilt = Pyramid(c.document.mask, gain=255)
    np.testing.assert_array_equal(c.layers._mask.level(level), rebuilt.level(level))
    x, y = c.view.to_widget(1500, 1000)
    shown = c.grab().toImage().pixelColor(int(x), int(y)).getRgb()[:3]
    photo = tuple(int(v) for v in c.document.photo[1000, 1500])
    assert shown != photo  # tinted by the (now full) mask overlay


def test_brush_ring_follows_the_pointer(qtbot, canvas) -> None:
    canvas.set_brush_size(40)
    qtbot.mouseMove(canvas, QPoint(100, 90))
    image = canvas.grab().toImage()
    photo = canvas.document.photo
    on_ring = image.pixelColor(100 + 20, 90).getRgb()[:3]
    inside = image.pixelColor(100 + 5, 90).getRgb()[:3]
    assert on_ring != tuple(photo[60, 100])  # widget (120, 90) is image (100, 60)
    assert inside == tuple(photo[60, 85])
    assert not canvas.document.mask.any()  # hovering never paints
