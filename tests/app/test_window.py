"""The main window: open, inpaint through the worker, results, errors, save, settings."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QTimer, QUrl
from PySide6.QtGui import QDropEvent, QGuiApplication, QImage

from app.geometry import Rect
from engine import imageio
from engine.models import catalog
from engine.registry import ModelSpec, default_model_id


def read_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def paint_hole(window) -> Rect:
    rect = Rect(60, 40, 100, 80)
    window.document.fill_rect(rect)
    window._update_actions()
    return rect


def shown_pixel(window, x: int, y: int) -> tuple[int, int, int]:
    """The colour the canvas shows at image pixel (x, y), with the mask hidden."""
    c = window.canvas
    wx, wy = c.view.to_widget(x + 0.5, y + 0.5)
    return c.grab().toImage().pixelColor(int(wx), int(wy)).getRgb()[:3]


def test_open_a_real_file(window, photo_file) -> None:
    assert window.open_path(photo_file)
    doc = window.document
    np.testing.assert_array_equal(doc.photo, read_rgb(photo_file))
    assert window.windowTitle().startswith("photo.png")
    assert window.settings.recent_files == [str(photo_file)]
    assert window.recent_menu.actions()[0].toolTip() == str(photo_file)
    window.canvas.actual_size()
    assert shown_pixel(window, 10, 20) == tuple(doc.photo[20, 10])


def test_inpaint_with_telea_through_the_worker_shows_the_result(qtbot, window, photo_file) -> None:
    window.open_path(photo_file)
    assert window.panel.models.select("telea")
    original = window.document.photo
    rect = paint_hole(window)
    with qtbot.waitSignal(window.controller.jobFinished, timeout=20_000):
        window.act.inpaint.trigger()
        assert not window.act.inpaint.isEnabled() and window.act.cancel.isEnabled()
    doc = window.document
    hole = np.zeros(original.shape[:2], bool)
    hole[rect.slices] = True
    np.testing.assert_array_equal(doc.photo[~hole], original[~hole])
    assert np.abs(doc.photo[hole].astype(int) - original[hole].astype(int)).mean() > 1
    assert not doc.mask.any()  # the filled hole is cleared for the next one
    assert "Last run: 160×120" in window.run_label.text()
    assert window.act.inpaint.isEnabled() and not window.act.cancel.isEnabled()
    window.canvas.actual_size()
    assert shown_pixel(window, 80, 60) == tuple(doc.photo[60, 80])
    # Undo brings back the photo and the hole: a new step, inpaint again on the result.
    qtbot.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    np.testing.assert_array_equal(window.document.photo, original)
    assert window.document.mask[rect.slices].all()
    assert shown_pixel(window, 80, 60) != tuple(doc.photo[60, 80])


def test_cancel_leaves_the_photo_unchanged(qtbot, window, photo_file, monkeypatch) -> None:
    window.open_path(photo_file)
    paint_hole(window)
    before = window.document.photo
    # Make the job wait for the cancellation: the model blocks until cancelled.
    from engine.models.classical import ClassicalModel

    def slow_predict(self, image, mask, seed):
        import time

        for _ in range(500):
            time.sleep(0.01)
            if token_holder and token_holder[0].cancelled:
                break
        return image.copy()

    token_holder: list = []
    monkeypatch.setattr(ClassicalModel, "predict", slow_predict)
    with qtbot.waitSignal(window.controller.jobCancelled, timeout=20_000):
        window.act.inpaint.trigger()
        token_holder.append(window.controller.engine._tokens[window.controller.job_id])
        qtbot.keyClick(window.canvas, Qt.Key.Key_Escape)
    assert window.document.photo is before
    assert "Cancelled" in window.panel.status.text()
    assert window.act.inpaint.isEnabled()


def test_the_window_keeps_running_while_a_photo_loads_and_saves(
    window, photo_file, tmp_path, monkeypatch
) -> None:
    def slowly(work):
        def run(*args, **kwargs):
            time.sleep(0.4)  # an 8K decode or encode takes about this long
            return work(*args, **kwargs)

        return run

    monkeypatch.setattr(imageio, "load_image", slowly(imageio.load_image))
    monkeypatch.setattr(imageio, "save_image", slowly(imageio.save_image))
    ticks: list[int] = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(20)
    assert window.open_path(photo_file)
    assert len(ticks) >= 5  # the event loop went on while the file was read
    np.testing.assert_array_equal(window.document.photo, read_rgb(photo_file))
    ticks.clear()
    assert window.save_as(tmp_path / "copy.png")
    assert len(ticks) >= 5
    timer.stop()
    np.testing.assert_array_equal(read_rgb(tmp_path / "copy.png"), read_rgb(photo_file))


def test_corrupt_file_shows_an_error_and_the_app_stays_usable(window, tmp_path, photo_file) -> None:
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG")
    assert not window.open_path(bad)
    assert window.error_box is not None and window.error_box.isVisible()
    assert "broken.jpg" in window.error_box.text()
    assert window.document is None
    window.error_box.close()
    assert window.open_path(photo_file)
    assert window.document is not None


def test_failed_job_shows_its_message(qtbot, window, photo_file, monkeypatch) -> None:
    from engine.errors import OutOfMemoryError
    from engine.models.classical import ClassicalModel

    def boom(self, image, mask, seed):
        raise OutOfMemoryError("Ran out of memory inpainting; nothing was changed.")

    monkeypatch.setattr(ClassicalModel, "predict", boom)
    window.open_path(photo_file)
    assert window.panel.models.select("telea")
    paint_hole(window)
    with qtbot.waitSignal(window.controller.jobFailed, timeout=20_000):
        window.act.inpaint.trigger()
    assert "Ran out of memory" in window.error_box.text()
    assert window.act.inpaint.isEnabled()


def test_save_as_and_read_back_and_confirm_before_overwriting(window, photo_file, tmp_path) -> None:
    window.open_path(photo_file)
    doc = window.document
    doc.apply_result(doc.photo, np.ones(doc.mask.shape, bool), np.zeros_like(doc.photo), "Black")
    assert doc.modified
    target = tmp_path / "out.png"
    assert window.save_as(target)
    np.testing.assert_array_equal(read_rgb(target), np.zeros_like(doc.photo))
    assert not doc.modified
    questions: list[str] = []
    window.ask = lambda title, q: questions.append(q) or False
    assert not window.save_as(photo_file)  # the original: asks, and the answer is no
    assert questions and "original" in questions[0]
    np.testing.assert_array_equal(read_rgb(photo_file), window.document.original)


def test_save_keeps_alpha(window, tmp_path, make_photo) -> None:
    rgba = np.dstack([make_photo(64, 48), np.full((48, 64), 128, np.uint8)])
    src = tmp_path / "alpha.png"
    imageio.save_image(src, rgba[..., :3], alpha=rgba[..., 3])
    window.open_path(src)
    out = tmp_path / "alpha-out.png"
    assert window.save_as(out)
    assert imageio.load_image(out).alpha is not None
    assert (imageio.load_image(out).alpha == 128).all()


def test_mask_export_and_import(window, photo_file, tmp_path) -> None:
    window.open_path(photo_file)
    rect = paint_hole(window)
    saved = window.document.mask.copy()
    assert window.export_mask(tmp_path / "mask.png")
    window.act.clear.trigger()
    assert not window.document.mask.any()
    assert window.import_mask(tmp_path / "mask.png")
    np.testing.assert_array_equal(window.document.mask, saved)
    assert window.document.mask[rect.slices].all()


def test_drop_and_paste_open_photos(qtbot, window, photo_file, make_photo) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(photo_file))])
    drop = QDropEvent(
        QPointF(50, 50),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
    )
    # Qt delivers drop events only during a real drag, so call the handler directly.
    window.dropEvent(drop)
    assert window.document is not None and window.document.path == photo_file
    photo = np.ascontiguousarray(make_photo(40, 30))
    QGuiApplication.clipboard().setImage(
        QImage(photo.data, 40, 30, 120, QImage.Format.Format_RGB888).copy()
    )
    assert window.paste()
    np.testing.assert_array_equal(window.document.photo, photo)
    assert window.document.path is None


@pytest.fixture
def extra_models(monkeypatch):
    """A multi-sample test model and a model whose weights are missing."""
    multi = ModelSpec(
        id="test-multi",
        label="Seeded colours",
        description="Test multi-sample model.",
        entry="fake_models:SeededFill",
        multi_sample=True,
    )
    missing = dataclasses.replace(
        multi,
        id="test-missing",
        label="Missing",
        needs_weights=True,
        weights_file="missing.safetensors",
        multi_sample=False,
    )
    slow = dataclasses.replace(
        multi, id="test-slow-multi", label="Slow colours", entry="fake_models:SlowSeededFill"
    )
    monkeypatch.setattr(catalog, "SPECS", (*catalog.SPECS, multi, missing, slow))
    return multi, missing


def test_the_model_shown_at_start_is_loaded_before_the_first_click(
    qtbot, isolated_settings
) -> None:
    from app.main_window import MainWindow

    win = MainWindow(settings=isolated_settings)
    qtbot.addWidget(win)
    # The load was asked for in the constructor; its signal arrives once the loop runs.
    with qtbot.waitSignal(win.controller.modelLoaded, timeout=30_000) as loaded:
        win.show()
    assert loaded.args == [win.panel.models.model_id()] == [default_model_id()]
    win.close()


def test_model_picker_lists_models_and_disables_those_without_weights(qtbot, extra_models) -> None:
    from app.panels import ModelPicker

    picker = ModelPicker()
    qtbot.addWidget(picker)
    ids = [picker.itemData(i, Qt.ItemDataRole.UserRole) for i in range(picker.count())]
    assert {"telea", "navier-stokes", "test-multi", "test-missing"} <= set(ids)
    item = picker.model().item(ids.index("test-missing"))
    assert not item.isEnabled()
    assert "missing.safetensors" in item.toolTip()
    assert not picker.select("test-missing")
    assert picker.select("test-multi")


def _colour(seed: int) -> tuple[int, int, int]:
    """What fake_models.SeededFill paints with ``seed``."""
    return (seed * 40 % 256, 255 - seed * 40 % 256, 128)


def test_a_gallery_fills_as_samples_arrive_and_previews_the_chosen_one(
    qtbot, window, photo_file, extra_models
) -> None:
    window.panel.models.reload()
    window.open_path(photo_file)
    assert window.panel.models.select("test-multi")
    assert window.panel.samples.isEnabled()
    window.panel.samples.setValue(3)
    rect = paint_hole(window)
    y, x = rect.y0 + 5, rect.x0 + 5
    before = window.document.photo.copy()
    arrivals: list[int] = []
    window.controller.sampleArrived.connect(lambda i, img: arrivals.append(i))
    with qtbot.waitSignal(window.controller.jobFinished, timeout=20_000):
        window.act.inpaint.trigger()
    qtbot.waitUntil(lambda: window.panel.results.count == 3)
    assert arrivals == [0, 1, 2]
    strip = window.panel.results
    assert strip.gallery and strip.current == 0
    assert [strip.seed(i) for i in range(3)] == [0, 1, 2]
    assert "Sample 1 of 3 · seed 0" in strip.label.text()
    # Nothing is applied yet: the canvas shows the chosen sample over the photo.
    assert np.array_equal(window.document.photo, before)
    assert not window.document.history.photo_edits()
    assert window.canvas.previewing
    assert tuple(window.canvas.layers.preview[y, x]) == _colour(0)
    assert shown_pixel(window, x, y) == _colour(0)
    # The arrow keys cycle (focus on the canvas, as after painting).
    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, Qt.Key.Key_Right)
    assert strip.current == 1
    assert tuple(window.canvas.layers.preview[y, x]) == _colour(1)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Right)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Left)
    assert strip.current == 1
    # Hold-to-compare shows the photo itself.
    window.canvas.set_compare(True)
    assert shown_pixel(window, x, y) != _colour(1)
    window.canvas.set_compare(False)
    # Clicking a thumbnail shows that one.
    item = strip.list.item(2)
    qtbot.mouseClick(
        strip.list.viewport(),
        Qt.MouseButton.LeftButton,
        pos=strip.list.visualItemRect(item).center(),
    )
    assert strip.current == 2
    assert tuple(window.canvas.layers.preview[y, x]) == _colour(2)
    strip.copy_seed()
    assert QGuiApplication.clipboard().text() == "2"


def test_use_this_one_is_an_undoable_step_and_more_adds_samples(
    qtbot, window, photo_file, extra_models
) -> None:
    window.panel.models.reload()
    window.open_path(photo_file)
    window.panel.models.select("test-multi")
    window.panel.samples.setValue(2)
    rect = paint_hole(window)
    y, x = rect.y0 + 5, rect.x0 + 5
    before = window.document.photo.copy()
    with qtbot.waitSignal(window.controller.jobFinished, timeout=20_000):
        window.act.inpaint.trigger()
    strip = window.panel.results
    qtbot.waitUntil(lambda: strip.count == 2)
    strip.select(1)
    qtbot.mouseClick(strip.use_button, Qt.MouseButton.LeftButton)
    assert tuple(window.document.photo[y, x]) == _colour(1)
    assert not window.document.mask[rect.slices].any()  # the hole is filled
    assert not window.canvas.previewing
    assert len(window.document.history.photo_edits()) == 1
    assert "seed 1" in window.document.history.undo_label
    # Known pixels are the photo's.
    outside = np.ones(before.shape[:2], bool)
    outside[rect.slices] = False
    assert np.array_equal(window.document.photo[outside], before[outside])
    # "More" draws new seeds and keeps the old samples.
    with qtbot.waitSignal(window.controller.jobFinished, timeout=20_000):
        qtbot.mouseClick(strip.more_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: strip.count == 4)
    assert [strip.seed(i) for i in range(4)] == [0, 1, 2, 3]
    strip.select(3)
    assert tuple(window.canvas.layers.preview[y, x]) == _colour(3)
    window.undo()
    assert np.array_equal(window.document.photo, before)
    assert window.document.mask[rect.slices].all()


def test_cancelling_a_gallery_keeps_the_samples_already_drawn(
    qtbot, window, photo_file, extra_models
) -> None:
    window.panel.models.reload()
    window.open_path(photo_file)
    window.panel.models.select("test-slow-multi")
    window.panel.samples.setValue(8)
    paint_hole(window)
    strip = window.panel.results
    with qtbot.waitSignal(window.controller.jobCancelled, timeout=20_000):
        window.act.inpaint.trigger()
        qtbot.waitUntil(lambda: strip.count >= 2, timeout=10_000)
        window.act.cancel.trigger()
    kept = strip.count
    assert 2 <= kept < 8
    assert "kept" in window.panel.status.text()
    assert "coming" not in strip.label.text()
    strip.select(kept - 1)
    qtbot.mouseClick(strip.use_button, Qt.MouseButton.LeftButton)
    assert len(window.document.history.photo_edits()) == 1


def test_a_single_sample_is_applied_as_it_arrives(qtbot, window, photo_file) -> None:
    window.open_path(photo_file)
    window.panel.models.select("telea")
    paint_hole(window)
    with qtbot.waitSignal(window.controller.jobFinished, timeout=20_000):
        window.act.inpaint.trigger()
    assert not window.panel.results.gallery
    assert not window.panel.results.use_button.isVisible()
    assert len(window.document.history.photo_edits()) == 1


def test_settings_persist_between_windows(qtbot, isolated_settings) -> None:
    from app.main_window import MainWindow

    first = MainWindow(settings=isolated_settings)
    qtbot.addWidget(first)
    first.canvas.set_brush_size(77)
    first.panel.models.select("navier-stokes")
    first.resize(700, 520)  # the offscreen screen is 800x600
    first.show()
    qtbot.waitExposed(first)
    first.close()
    second = MainWindow(settings=isolated_settings)
    qtbot.addWidget(second)
    second.show()
    assert second.canvas.brush_size == 77
    assert second.panel.models.model_id() == "navier-stokes"
    assert second.size().width() == 700
    second.close()


def test_compare_button_shows_the_original_while_pressed(qtbot, window, photo_file) -> None:
    window.open_path(photo_file)
    button = window.toolbar.widgetForAction(window.act.compare)
    qtbot.mousePress(button, Qt.MouseButton.LeftButton, pos=QPoint(5, 5))
    assert window.canvas.comparing
    qtbot.mouseRelease(button, Qt.MouseButton.LeftButton, pos=QPoint(5, 5))
    assert not window.canvas.comparing


def test_the_qt_binding_does_not_leak_references_to_none(qapp) -> None:
    """PySide6 6.12.0 on Python 3.11 does, and the app then aborts within a minute of use."""
    from app.compat import leaks_none_references

    assert not leaks_none_references()


def test_photo_texture_runs_the_texture_stage_for_learned_models_only(
    qtbot, window, photo_file
) -> None:
    window.open_path(photo_file)
    assert window.panel.models.select("telea")
    assert not window.panel.texture.isEnabled()
    if not window.panel.models.select("hifill"):
        pytest.skip("HiFill's weights are not installed")
    assert window.panel.texture.isEnabled()
    window.panel.texture.click()
    assert window.panel.texture.isChecked()
    original = window.document.photo
    rect = paint_hole(window)
    with qtbot.waitSignal(window.controller.jobFinished, timeout=60_000) as finished:
        window.act.inpaint.trigger()
    assert finished.args[0].texture
    assert window.panel.status.text().startswith("HiFill + texture:")
    hole = np.zeros(original.shape[:2], bool)
    hole[rect.slices] = True
    np.testing.assert_array_equal(window.document.photo[~hole], original[~hole])


def _press(window, key: Qt.Key, times: int = 1) -> None:
    """Key presses as the window system delivers them: to the window, then the focus widget."""
    from PySide6.QtTest import QTest

    for _ in range(times):
        QTest.keyClick(window.windowHandle(), key)


@pytest.mark.parametrize("with_photo", [False, True])
def test_single_key_shortcuts_work_right_after_start_up(qtbot, window, photo_file, with_photo):
    window.show()
    qtbot.waitExposed(window)
    if with_photo:
        window.open_path(photo_file)
    size = window.size_spin.value()
    _press(window, Qt.Key.Key_BracketRight, 3)
    assert window.size_spin.value() > size
    _press(window, Qt.Key.Key_E)
    assert window.act.eraser.isChecked()
    _press(window, Qt.Key.Key_B)
    assert window.act.brush.isChecked()


def test_typing_in_the_size_box_keeps_the_keys_and_enter_gives_them_back(qtbot, window) -> None:
    window.show()
    qtbot.waitExposed(window)
    qtbot.mouseClick(window.size_spin, Qt.MouseButton.LeftButton)
    assert QGuiApplication.focusObject() is not None
    window.size_spin.lineEdit().selectAll()
    _press(window, Qt.Key.Key_6)
    _press(window, Qt.Key.Key_0)
    _press(window, Qt.Key.Key_Return)
    assert window.size_spin.value() == 60
    _press(window, Qt.Key.Key_BracketRight)  # back on the canvas: the shortcut works again
    assert window.size_spin.value() > 60
