"""The main window: canvas in the middle, tools on top, the inpaint panel on the right."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QDockWidget,
    QLabel,
    QMainWindow,
    QMessageBox,
    QScrollArea,
    QSlider,
    QSpinBox,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from app.actions import create_actions
from app.canvas import MAX_BRUSH, MIN_BRUSH, Canvas, Tool
from app.controller import InpaintController
from app.document import Change, Document
from app.files import FileOps
from app.panels import InpaintPanel, MaskPanel
from app.settings import Settings
from app.worker import EngineThread
from engine.errors import EngineError
from engine.jobs import InpaintResult
from engine.registry import default_model_id, get_spec

TITLE = "Inpaint Studio"


class MainWindow(FileOps, QMainWindow):
    """Inpaint Studio's window.

    Args:
        settings: where preferences live (tests pass an isolated one).
        engine_thread: the engine worker (a new one by default).
    """

    def __init__(
        self, settings: Settings | None = None, engine_thread: EngineThread | None = None
    ) -> None:
        super().__init__()
        self.settings = settings or Settings()
        self.setWindowTitle(TITLE)
        self.setAcceptDrops(True)
        self.error_box: QMessageBox | None = None
        self._doc: Document | None = None
        self._actions_pending = False

        self.canvas = Canvas()
        self.setCentralWidget(self.canvas)
        self.act = create_actions(self)
        self.controller = InpaintController(engine_thread, self)
        self.panel = InpaintPanel(self.act.inpaint, self.act.cancel)
        a = self.act
        self.mask_panel = MaskPanel([a.grow, a.shrink, a.feather, a.invert, a.clear])
        self._build_dock()
        self._build_toolbars()
        self._build_menus()
        self._build_status_bar()
        self._connect()
        self._restore_settings()
        self._update_actions()
        # The model shown at start is loaded now, not on the first click: loading imports
        # torch, which holds the interpreter lock for a few hundred ms (a stall of the window
        # right after Inpaint otherwise). Changing the model loads it the same way.
        if self.panel.models.model_id():
            self.controller.preload(self.panel.models.model_id())

    # -- construction ---------------------------------------------------------------------

    def _build_dock(self) -> None:
        side = QWidget()
        layout = QVBoxLayout(side)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.panel)
        layout.addWidget(self.mask_panel)
        layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(side)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.dock = QDockWidget("Inpaint", self)
        self.dock.setObjectName("inpaint-dock")
        self.dock.setWidget(scroll)
        self.dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
        self.dock.setMinimumWidth(300)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)

    def _build_toolbars(self) -> None:
        a = self.act
        bar = QToolBar("Main")
        bar.setObjectName("main-toolbar")
        bar.setMovable(False)
        bar.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        for action in (
            a.open,
            a.save,
            None,
            a.undo,
            a.redo,
            None,
            a.brush,
            a.eraser,
            a.rectangle,
            a.lasso,
        ):
            bar.addAction(action) if action else bar.addSeparator()
        bar.addSeparator()
        bar.addWidget(QLabel(" Size "))
        self.size_slider = QSlider(Qt.Orientation.Horizontal)
        self.size_slider.setRange(MIN_BRUSH, 400)
        self.size_slider.setFixedWidth(140)
        self.size_slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.size_slider.setToolTip("Brush diameter in photo pixels ([ and ] change it)")
        self.size_spin = QSpinBox()
        self.size_spin.setRange(MIN_BRUSH, MAX_BRUSH)
        self.size_spin.setSuffix(" px")
        self.size_spin.setToolTip(self.size_slider.toolTip())
        # Number boxes take the keyboard only when clicked (single-key shortcuts work
        # everywhere else) and hand it back to the canvas when the number is entered.
        for box in (self.size_spin, self.panel.samples, self.mask_panel.amount):
            box.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
            box.editingFinished.connect(self.canvas.setFocus)
        bar.addWidget(self.size_slider)
        bar.addWidget(self.size_spin)
        bar.addSeparator()
        for action in (a.fit, a.actual, a.show_mask, a.compare, None, a.inpaint):
            bar.addAction(action) if action else bar.addSeparator()
        self.addToolBar(bar)
        self.toolbar = bar

    def _build_menus(self) -> None:
        a = self.act
        menus = self.menuBar()
        file = menus.addMenu("&File")
        file.addActions([a.open, a.paste])
        self.recent_menu = file.addMenu("Open &Recent")
        file.addSeparator()
        file.addActions([a.save, a.save_as])
        file.addSeparator()
        file.addActions([a.import_mask, a.export_mask])
        file.addSeparator()
        file.addAction(a.quit)
        edit = menus.addMenu("&Edit")
        edit.addActions([a.undo, a.redo])
        mask = menus.addMenu("&Mask")
        mask.addActions([a.brush, a.eraser, a.rectangle, a.lasso])
        mask.addSeparator()
        mask.addActions([a.smaller, a.bigger])
        mask.addSeparator()
        mask.addActions([a.grow, a.shrink, a.feather, a.invert, a.clear])
        view = menus.addMenu("&View")
        view.addActions([a.fit, a.actual, a.zoom_in, a.zoom_out])
        view.addSeparator()
        view.addActions([a.show_mask, a.compare])
        run = menus.addMenu("&Inpaint")
        run.addActions([a.inpaint, a.cancel])
        run.addSeparator()
        run.addActions([a.previous_sample, a.next_sample])
        self._rebuild_recent_menu()

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.run_label = QLabel()
        self.size_label = QLabel()
        self.zoom_label = QLabel()
        self.pos_label = QLabel()
        for label in (self.run_label, self.pos_label, self.size_label, self.zoom_label):
            label.setContentsMargins(10, 0, 10, 0)
            bar.addPermanentWidget(label)

    def _connect(self) -> None:
        a, c = self.act, self.canvas
        a.open.triggered.connect(lambda: self.open_dialog())
        a.paste.triggered.connect(self.paste)
        a.save.triggered.connect(lambda: self.save())
        a.save_as.triggered.connect(lambda: self.save_as())
        a.import_mask.triggered.connect(lambda: self.import_mask())
        a.export_mask.triggered.connect(lambda: self.export_mask())
        a.quit.triggered.connect(self.close)
        a.undo.triggered.connect(self.undo)
        a.redo.triggered.connect(self.redo)
        tools = {
            a.brush: Tool.BRUSH,
            a.eraser: Tool.ERASER,
            a.rectangle: Tool.RECTANGLE,
            a.lasso: Tool.LASSO,
        }
        for action, tool in tools.items():
            action.triggered.connect(lambda _=False, t=tool: c.set_tool(t))
        a.smaller.triggered.connect(lambda: c.set_brush_size(round(c.brush_size / 1.2)))
        a.bigger.triggered.connect(
            lambda: c.set_brush_size(max(c.brush_size + 1, round(c.brush_size * 1.2)))
        )
        amount = self.mask_panel.amount
        a.grow.triggered.connect(lambda: self._mask_op(lambda d: d.grow_mask(amount.value())))
        a.shrink.triggered.connect(lambda: self._mask_op(lambda d: d.shrink_mask(amount.value())))
        a.feather.triggered.connect(lambda: self._mask_op(lambda d: d.feather_mask(amount.value())))
        a.invert.triggered.connect(lambda: self._mask_op(Document.invert_mask))
        a.clear.triggered.connect(lambda: self._mask_op(Document.clear_mask))
        a.show_mask.setChecked(True)
        a.show_mask.toggled.connect(c.set_mask_visible)
        a.fit.triggered.connect(c.fit)
        a.actual.triggered.connect(c.actual_size)
        a.zoom_in.triggered.connect(lambda: c.zoom_by(1.25))
        a.zoom_out.triggered.connect(lambda: c.zoom_by(0.8))
        a.inpaint.triggered.connect(self.inpaint)
        a.cancel.triggered.connect(self.controller.cancel)
        a.previous_sample.triggered.connect(self.panel.results.previous)
        a.next_sample.triggered.connect(self.panel.results.next)
        # The compare button shows the original while it is held down.
        for widget in self.toolbar.findChildren(QWidget):
            if a.compare in widget.actions() and widget is not self.toolbar:
                widget.installEventFilter(self)
        c.brushSizeChanged.connect(self._brush_size_changed)
        c.zoomChanged.connect(lambda s: self.zoom_label.setText(f"{s * 100:.0f}%"))
        c.cursorMoved.connect(lambda x, y: self.pos_label.setText(f"x {x}  y {y}"))
        c.maskEdited.connect(self._update_actions)
        c.maskEdited.connect(lambda: c.set_preview(None))
        self.size_slider.valueChanged.connect(c.set_brush_size)
        self.size_spin.valueChanged.connect(c.set_brush_size)
        ctl = self.controller
        ctl.busyChanged.connect(self._busy_changed)
        ctl.progressChanged.connect(self.panel.set_progress)
        ctl.sampleArrived.connect(self._sample_arrived)
        ctl.jobFinished.connect(self._job_finished)
        ctl.jobFailed.connect(self._job_failed)
        ctl.jobCancelled.connect(self._job_cancelled)
        ctl.loadFailed.connect(lambda msg: self.panel.set_progress(0, msg))
        ctl.modelLoaded.connect(lambda m: self.panel.set_progress(0, f"{get_spec(m).label} ready"))
        self.panel.results.sampleChosen.connect(self._sample_chosen)
        self.panel.results.useRequested.connect(self.use_sample)
        self.panel.results.moreRequested.connect(self.more_samples)
        self.panel.modelChanged.connect(self._model_changed)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.MouseButtonPress:
            self.canvas.set_compare(True)
        elif event.type() == QEvent.Type.MouseButtonRelease:
            self.canvas.set_compare(False)
        return super().eventFilter(watched, event)

    # -- settings -------------------------------------------------------------------------

    def _restore_settings(self) -> None:
        s = self.settings
        self.canvas.set_brush_size(s.brush_size)
        self._brush_size_changed(self.canvas.brush_size)
        self.panel.samples.setValue(s.samples)
        if not (s.model_id and self.panel.models.select(s.model_id)):
            self.panel.models.select(default_model_id())
        if s.geometry is not None:
            self.restoreGeometry(s.geometry)
        else:
            self.resize(1400, 900)
        if s.window_state is not None:
            self.restoreState(s.window_state)

    def _save_settings(self) -> None:
        s = self.settings
        s.brush_size = self.canvas.brush_size
        s.samples = self.panel.samples.value()
        s.model_id = self.panel.models.model_id()
        s.geometry = self.saveGeometry()
        s.window_state = self.saveState()
        s.sync()

    # -- document -------------------------------------------------------------------------

    @property
    def document(self) -> Document | None:
        return self._doc

    def set_document(self, doc: Document | None) -> None:
        if self.controller.busy:
            self.controller.cancel()
        if self._doc is not None:
            self._doc.unsubscribe(self._doc_changed)
        self._doc = doc
        if doc is not None:
            doc.subscribe(self._doc_changed)
        self.canvas.set_document(doc)
        self.canvas.setFocus()
        self.panel.results.clear()
        self.controller.gallery = None
        self.size_label.setText(f"{doc.width} × {doc.height}" if doc else "")
        self._update_title()
        self._update_actions()

    def _doc_changed(self, change: Change) -> None:
        # Many changes arrive per second while painting: refresh the actions once.
        if not self._actions_pending:
            self._actions_pending = True
            QTimer.singleShot(0, self, self._update_actions)

    def _update_title(self) -> None:
        doc = self._doc
        if doc is None:
            self.setWindowTitle(TITLE)
            return
        name = doc.path.name if doc.path else "Pasted image"
        self.setWindowTitle(f"{name}{' *' if doc.modified else ''} — {TITLE}")

    def _update_actions(self) -> None:
        self._actions_pending = False
        a, doc, busy = self.act, self._doc, self.controller.busy
        has = doc is not None
        for action in (
            a.save,
            a.save_as,
            a.import_mask,
            a.export_mask,
            a.grow,
            a.shrink,
            a.feather,
            a.invert,
            a.clear,
            a.fit,
            a.actual,
            a.zoom_in,
            a.zoom_out,
            a.compare,
        ):
            action.setEnabled(has)
        a.undo.setEnabled(has and doc.history.can_undo)
        a.redo.setEnabled(has and doc.history.can_redo)
        a.undo.setText(
            f"&Undo {doc.history.undo_label}" if has and doc.history.can_undo else "&Undo"
        )
        a.redo.setText(
            f"&Redo {doc.history.redo_label}" if has and doc.history.can_redo else "&Redo"
        )
        a.inpaint.setEnabled(has and not busy and bool(self.panel.models.model_id()))
        a.cancel.setEnabled(busy)
        self._update_title()

    def _mask_op(self, op) -> None:
        if self._doc is not None:
            op(self._doc)
            self._update_actions()

    def undo(self) -> None:
        self.canvas.set_preview(None)
        if self._doc is not None and self._doc.undo() is not None:
            self._update_actions()

    def redo(self) -> None:
        self.canvas.set_preview(None)
        if self._doc is not None and self._doc.redo() is not None:
            self._update_actions()

    def _brush_size_changed(self, size: int) -> None:
        for widget in (self.size_slider, self.size_spin):
            widget.blockSignals(True)
            widget.setValue(size)
            widget.blockSignals(False)

    # -- inpainting -----------------------------------------------------------------------

    def inpaint(self) -> None:
        doc = self._doc
        if doc is None or self.controller.busy:
            return
        self.canvas.set_compare(False)
        try:
            self.controller.start(
                doc,
                self.panel.models.model_id(),
                self.panel.sample_count(),
                self.panel.strategy.currentText(),
                self.panel.texture.isChecked(),
            )
        except EngineError as exc:
            self.panel.set_progress(0, str(exc))
            self.statusBar().showMessage(str(exc), 5000)
            return
        count = self.panel.sample_count()
        self.canvas.set_preview(None)
        self.panel.results.begin(count, gallery=self.controller.gallery is not None)

    def more_samples(self) -> None:
        """Draw as many new samples of the gallery's hole as the Samples box says."""
        if self.controller.gallery is None or self.controller.busy:
            return
        count = max(2, self.panel.samples.value())
        self.controller.more(count)
        self.panel.results.begin(count, gallery=True, keep=True)

    def use_sample(self, index: int) -> None:
        """Apply gallery sample ``index`` as an undoable step."""
        if self.controller.use_sample(index) is None:
            return
        self.canvas.set_preview(None)
        seed = self.panel.results.seed(index)
        self.statusBar().showMessage(f"Used sample {index + 1} (seed {seed})", 5000)

    def _sample_arrived(self, index: int, image) -> None:
        gallery = self.controller.gallery
        seed = gallery.seeds[index] if gallery is not None else index
        self.panel.results.add_sample(index, image, seed)

    def _model_changed(self, model_id: str) -> None:
        self.controller.preload(model_id)
        self._update_actions()

    def _busy_changed(self, busy: bool) -> None:
        if not busy:
            self.panel.set_progress(
                0 if self.panel.progress.maximum() == 0 else self.panel.progress.value(), ""
            )
        self._update_actions()

    def _job_finished(self, result: InpaintResult) -> None:
        h, w = result.images[0].shape[:2]
        total = result.timings.get("total", 0.0)
        label = get_spec(result.model_id).label
        texture = " + texture" if result.texture else ""
        text = f"{label}{texture}: {w}×{h} in {total:.2f} s ({result.strategy}, {result.device})"
        self.run_label.setText(f"Last run: {w}×{h}, {total:.2f} s")
        self.panel.set_progress(100, text)
        self.statusBar().showMessage(text, 10000)

    def _job_failed(self, message: str) -> None:
        self.panel.results.stop_waiting()
        self.panel.set_progress(0, "Failed")
        self.show_error("Inpainting failed", message)

    def _job_cancelled(self) -> None:
        kept = self.panel.results.count if self.panel.results.gallery else 0
        self.panel.results.stop_waiting()
        self.panel.set_progress(
            0,
            f"Cancelled; the {kept} sample(s) already drawn are kept"
            if kept
            else "Cancelled; the photo is unchanged",
        )

    def _sample_chosen(self, index: int) -> None:
        gallery = self.controller.gallery
        if self.panel.results.gallery and gallery is not None:
            if 0 <= index < len(gallery.samples) and gallery.doc is self._doc:
                self.canvas.set_preview(gallery.over_photo(index))
            return
        if not self.controller.choose_sample(index):
            self.statusBar().showMessage(
                "That result is no longer the latest change; undo to it first.", 5000
            )

    # -- window events --------------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        files = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if files:
            event.acceptProposedAction()
            self.open_path(files[0])

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.maybe_keep_changes():
            event.ignore()
            return
        self._save_settings()
        self.controller.shutdown()
        event.accept()
