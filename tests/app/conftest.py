"""Fixtures of the app tests: isolated settings, no thread left behind, a window, photos."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QCoreApplication, QSettings, QThread

from app.settings import Settings


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path: Path, qapp) -> Settings:
    """Every test gets its own empty QSettings (INI files under tmp_path)."""
    QCoreApplication.setOrganizationName("InpaintStudioTests")
    QCoreApplication.setApplicationName("inpaint-studio-tests")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "cfg"))
    settings = QSettings(str(tmp_path / "cfg" / "settings.ini"), QSettings.Format.IniFormat)
    return Settings(settings)


@pytest.fixture(autouse=True)
def no_dangling_qthreads(monkeypatch: pytest.MonkeyPatch):
    """Fail a test that leaves a QThread running (as napari does)."""
    started: list[QThread] = []
    original_start = QThread.start

    def start(self: QThread, *args: object) -> None:
        started.append(self)
        original_start(self, *args)

    monkeypatch.setattr(QThread, "start", start)
    yield
    running = [t for t in started if _running(t)]
    for thread in running:  # leave the process in a sane state for the next test
        thread.quit()
        thread.wait(10_000)
    assert not running, f"test left {len(running)} QThread(s) running: {running}"


def _running(thread: QThread) -> bool:
    try:
        return thread.isRunning()
    except RuntimeError:  # the C++ object is gone, so is the thread
        return False


@pytest.fixture
def window(qtbot, isolated_settings: Settings):
    """A shown main window; closed (worker joined) at the end of the test."""
    from app.main_window import MainWindow

    win = MainWindow(settings=isolated_settings)
    win.ask = lambda title, question: True  # confirm every question
    qtbot.addWidget(win)
    win.resize(1000, 700)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.close()
    assert not win.controller.engine.is_running()


@pytest.fixture
def make_photo():
    """``make_photo(width, height)``: see :func:`gradient_photo`."""
    return gradient_photo


def gradient_photo(width: int = 160, height: int = 120) -> np.ndarray:
    """A smooth synthetic RGB uint8 photo (known colours everywhere)."""
    ys, xs = np.mgrid[0:height, 0:width]
    photo = np.stack(
        [xs * 255 // max(1, width - 1), ys * 255 // max(1, height - 1), (xs + ys) % 256], axis=-1
    )
    return photo.astype(np.uint8)


@pytest.fixture
def photo_file(tmp_path: Path) -> Path:
    """A 160x120 PNG photo on disk."""
    path = tmp_path / "photo.png"
    cv2.imwrite(str(path), cv2.cvtColor(gradient_photo(), cv2.COLOR_RGB2BGR))
    return path
