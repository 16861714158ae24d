"""Opening, pasting and saving photos and masks (part of the main window).

Reading and writing go through :mod:`engine.imageio`, which keeps alpha, ICC
profile and EXIF and writes atomically, on a worker thread (:func:`in_background`) so the
window keeps repainting. Dialog hooks (:meth:`FileOps.ask`,
:meth:`FileOps.show_error`, the ``*_dialog`` methods) are small methods so
tests can replace them.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from PySide6.QtCore import QEventLoop, Qt
from PySide6.QtGui import QAction, QGuiApplication
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox

from app.document import Document
from app.qimage import to_rgb_array
from engine import imageio
from engine.errors import EngineError

if TYPE_CHECKING:
    from app.main_window import MainWindow

OPEN_FILTER = "Photos (*.jpg *.jpeg *.png *.tif *.tiff *.webp *.bmp);;All files (*)"
SAVE_FILTER = "JPEG (*.jpg *.jpeg);;PNG (*.png);;TIFF (*.tif *.tiff);;WebP (*.webp);;BMP (*.bmp)"
MASK_FILTER = "PNG mask (*.png)"


T = TypeVar("T")


def in_background(work: Callable[[], T]) -> T:
    """Run ``work`` (decoding or encoding a photo) on a worker thread and return its result,
    or raise its error, while the window keeps repainting.

    An 8K decode or encode takes about half a second, too long to freeze the window for, but
    callers want the answer before they go on. User input waits until the work is done (Qt
    queues it, nothing is lost), so nothing can change the photo meanwhile.
    """
    QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
    try:
        with ThreadPoolExecutor(1, thread_name_prefix="file-io") as pool:
            future = pool.submit(work)
            while not future.done():
                QApplication.processEvents(QEventLoop.ProcessEventsFlag.ExcludeUserInputEvents, 20)
                wait([future], timeout=0.02)
            return future.result()
    finally:
        QApplication.restoreOverrideCursor()


class FileOps:
    """File handling of :class:`~app.main_window.MainWindow`."""

    # -- hooks (replaced in tests) ------------------------------------------------------------

    def ask(self: MainWindow, title: str, question: str) -> bool:
        """A yes/no question; True = yes."""
        answer = QMessageBox.question(self, title, question)
        return answer == QMessageBox.StandardButton.Yes

    def show_error(self: MainWindow, title: str, text: str) -> None:
        """Show an error without blocking (the app stays usable behind it)."""
        if self.error_box is not None:
            self.error_box.close()
        box = QMessageBox(
            QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok, self
        )
        box.setWindowModality(Qt.WindowModality.WindowModal)
        box.open()
        self.error_box = box
        self.statusBar().showMessage(text, 10000)

    def open_file_dialog(self: MainWindow, title: str, filters: str) -> str:
        path, _ = QFileDialog.getOpenFileName(self, title, self.settings.last_folder, filters)
        return path

    def save_file_dialog(self: MainWindow, title: str, start: str, filters: str) -> str:
        path, _ = QFileDialog.getSaveFileName(self, title, start, filters)
        return path

    # -- photos ---------------------------------------------------------------------------

    def maybe_keep_changes(self: MainWindow) -> bool:
        """Before the photo is replaced or closed: False if the user wants to keep it open."""
        doc = self.document
        if doc is None or not doc.modified:
            return True
        return self.ask(
            "Discard changes?",
            f"{doc.path.name if doc.path else 'The pasted image'} has inpainted changes that "
            "are not saved. Discard them?",
        )

    def open_dialog(self: MainWindow) -> bool:
        path = self.open_file_dialog("Open photo", OPEN_FILTER)
        return bool(path) and self.open_path(path)

    def open_path(self: MainWindow, path: str | Path) -> bool:
        """Open a photo file; on failure show why and keep the current photo."""
        if not self.maybe_keep_changes():
            return False
        path = Path(path)
        try:
            photo = in_background(lambda: imageio.load_image(path))
        except EngineError as exc:
            self.show_error("Cannot open photo", str(exc))
            if str(path) in self.settings.recent_files and not path.exists():
                self.settings.remove_recent(str(path))
                self._rebuild_recent_menu()
            return False
        self.set_document(Document(photo.pixels, source=photo, path=path))
        self.settings.last_folder = str(path.parent)
        self.settings.add_recent(str(path))
        self._rebuild_recent_menu()
        self.statusBar().showMessage(f"Opened {path.name}", 5000)
        return True

    def paste(self: MainWindow) -> bool:
        """Open the clipboard's image (or the first image file it holds) as a new photo."""
        clipboard = QGuiApplication.clipboard()
        mime = clipboard.mimeData()
        if mime is not None and mime.hasImage():
            image = clipboard.image()
            if not image.isNull():
                if not self.maybe_keep_changes():
                    return False
                self.set_document(Document(to_rgb_array(image)))
                self.statusBar().showMessage("Pasted an image from the clipboard", 5000)
                return True
        if mime is not None:
            files = [u.toLocalFile() for u in mime.urls() if u.isLocalFile()]
            if files:
                return self.open_path(files[0])
        self.statusBar().showMessage("The clipboard holds no image.", 5000)
        return False

    def _rebuild_recent_menu(self: MainWindow) -> None:
        menu = self.recent_menu
        menu.clear()
        recent = self.settings.recent_files
        for i, path in enumerate(recent):
            action = QAction(f"&{i + 1} {Path(path).name}" if i < 9 else Path(path).name, menu)
            action.setToolTip(path)
            action.setStatusTip(path)
            action.triggered.connect(lambda _=False, p=path: self.open_path(p))
            menu.addAction(action)
        menu.setEnabled(bool(recent))

    def save(self: MainWindow) -> bool:
        """Save over the photo's file (asking once before replacing the original)."""
        doc = self.document
        if doc is None:
            return False
        if doc.path is None or doc.source is None:
            return self.save_as()
        return self._write(doc.path)

    def save_as(self: MainWindow, path: str | Path | None = None) -> bool:
        doc = self.document
        if doc is None:
            return False
        if path is None:
            if doc.path is not None:
                start = doc.path.with_name(f"{doc.path.stem}-inpainted{doc.path.suffix}")
            else:
                start = Path(self.settings.last_folder) / "inpainted.png"
            path = self.save_file_dialog("Save photo as", str(start), SAVE_FILTER)
            if not path:
                return False
        return self._write(Path(path))

    def _write(self: MainWindow, path: Path) -> bool:
        doc = self.document
        assert doc is not None
        original = doc.source.path if doc.source is not None else None
        if (
            original is not None
            and path.exists()
            and path.resolve() == Path(original).resolve()
            and path not in self._confirmed
        ):
            if not self.ask(
                "Replace the original?",
                f"Save over the original file {path.name}? The photo as it was opened is lost.",
            ):
                return False
            self._confirmed.add(path)
        try:
            in_background(
                lambda: imageio.save_image(path, doc.photo, like=doc.source, overwrite=True)
            )
        except EngineError as exc:
            self.show_error("Cannot save photo", str(exc))
            return False
        doc.mark_saved(path)
        self.settings.last_folder = str(path.parent)
        self.settings.add_recent(str(path))
        self._rebuild_recent_menu()
        self._update_actions()
        self.statusBar().showMessage(f"Saved {path.name}", 5000)
        return True

    @property
    def _confirmed(self: MainWindow) -> set[Path]:
        """Original files the user agreed to replace in this session."""
        if not hasattr(self, "_confirmed_paths"):
            self._confirmed_paths: set[Path] = set()
        return self._confirmed_paths

    # -- masks ----------------------------------------------------------------------------

    def import_mask(self: MainWindow, path: str | Path | None = None) -> bool:
        doc = self.document
        if doc is None:
            return False
        path = path or self.open_file_dialog("Import mask", MASK_FILTER)
        if not path:
            return False
        try:
            mask = in_background(lambda: imageio.load_mask(path, doc.photo.shape))
        except EngineError as exc:
            self.show_error("Cannot import mask", str(exc))
            return False
        doc.replace_mask(mask)
        self._update_actions()
        return True

    def export_mask(self: MainWindow, path: str | Path | None = None) -> bool:
        doc = self.document
        if doc is None:
            return False
        if path is None:
            stem = doc.path.stem if doc.path else "photo"
            start = Path(self.settings.last_folder) / f"{stem}-mask.png"
            path = self.save_file_dialog("Export mask", str(start), MASK_FILTER)
            if not path:
                return False
        try:
            in_background(lambda: imageio.save_mask(path, doc.mask, overwrite=True))
        except EngineError as exc:
            self.show_error("Cannot export mask", str(exc))
            return False
        self.statusBar().showMessage(f"Mask saved to {Path(path).name}", 5000)
        return True
