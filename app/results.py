"""The result side: the samples of the last job, shown as a strip the user flips through.

Samples arrive one at a time while the job runs (``add_sample``); choosing one
(click, previous/next, the arrow keys) emits ``sampleChosen``. For a single sample the
window has applied it already; for a gallery of several (a multi-sample model) the window
shows the chosen one on the canvas and "Use this one" (``useRequested``) applies it, "More"
(``moreRequested``) draws more. Each sample's seed is shown and can be copied, so the CLI
can recreate it (``--seed S --samples 1``).
"""

from __future__ import annotations

import numpy as np
import qtawesome as qta
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QGuiApplication, QIcon, QPixmap
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.qimage import thumbnail

THUMB = 96


class ResultsStrip(QWidget):
    """Thumbnails of a job's samples with previous/next buttons."""

    sampleChosen = Signal(int)
    useRequested = Signal(int)
    moreRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._expected = 0
        self._seeds: list[int | None] = []
        self._gallery = False
        self.list = QListWidget()
        self.list.setViewMode(QListWidget.ViewMode.IconMode)
        self.list.setFlow(QListWidget.Flow.LeftToRight)
        self.list.setWrapping(False)
        self.list.setMovement(QListWidget.Movement.Static)
        self.list.setHorizontalScrollMode(QListWidget.ScrollMode.ScrollPerPixel)
        self.list.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.list.currentRowChanged.connect(self._row_changed)
        self._fit_height(QSize(THUMB, THUMB))
        self.prev_button = QToolButton()
        self.prev_button.setIcon(qta.icon("mdi6.chevron-left"))
        self.prev_button.setToolTip("Previous sample (,)")
        self.prev_button.clicked.connect(self.previous)
        self.next_button = QToolButton()
        self.next_button.setIcon(qta.icon("mdi6.chevron-right"))
        self.next_button.setToolTip("Next sample (.)")
        self.next_button.clicked.connect(self.next)
        self.label = QLabel("No results yet")
        self.label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        row = QHBoxLayout()
        row.addWidget(self.prev_button)
        row.addWidget(self.label, 1)
        row.addWidget(self.next_button)
        self.use_button = QPushButton(qta.icon("mdi6.check"), "Use this one")
        self.use_button.setToolTip("Apply the sample shown on the canvas (undoable)")
        self.use_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.use_button.clicked.connect(lambda: self.useRequested.emit(self.current))
        self.more_button = QPushButton(qta.icon("mdi6.plus"), "More")
        self.more_button.setToolTip("Draw more samples of the same hole, keeping these")
        self.more_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.more_button.clicked.connect(self.moreRequested)
        self.seed_button = QToolButton()
        self.seed_button.setIcon(qta.icon("mdi6.content-copy"))
        self.seed_button.setToolTip("Copy the seed (main.py inpaint --seed S --samples 1)")
        self.seed_button.clicked.connect(self.copy_seed)
        buttons = QHBoxLayout()
        buttons.addWidget(self.use_button, 1)
        buttons.addWidget(self.more_button)
        buttons.addWidget(self.seed_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.list)
        layout.addLayout(row)
        layout.addLayout(buttons)
        self._refresh()

    @property
    def count(self) -> int:
        return self.list.count()

    @property
    def current(self) -> int:
        return self.list.currentRow()

    @property
    def gallery(self) -> bool:
        """Whether the samples are a gallery to choose from (none applied yet)."""
        return self._gallery

    def seed(self, index: int) -> int | None:
        return self._seeds[index] if 0 <= index < len(self._seeds) else None

    def begin(self, expected: int, gallery: bool = False, keep: bool = False) -> None:
        """``expected`` samples are on their way: a gallery to choose from when ``gallery``;
        with ``keep`` they join the ones shown, else those are forgotten."""
        if keep:
            self._expected = self.count + expected
        else:
            self.list.blockSignals(True)
            self.list.clear()
            self.list.blockSignals(False)
            self._seeds = []
            self._expected = expected
        self._gallery = gallery
        self._refresh()

    def clear(self) -> None:
        self.begin(0)

    def stop_waiting(self) -> None:
        """The job ended early (cancelled or failed): no more samples are coming."""
        self._expected = self.count
        self._refresh()

    def copy_seed(self) -> None:
        seed = self.seed(self.current)
        if seed is not None:
            QGuiApplication.clipboard().setText(str(seed))

    def add_sample(self, index: int, image: np.ndarray, seed: int | None = None) -> None:
        """Show sample ``index`` (RGB uint8) drawn with ``seed``; the first one becomes the
        current one."""
        pixmap = QPixmap.fromImage(thumbnail(image, THUMB))
        if self.count == 0:
            self._fit_height(pixmap.size())
        icon = QIcon(pixmap)
        icon.addPixmap(pixmap, QIcon.Mode.Selected)  # no selection tint over the photo
        text = f"#{index + 1}" if seed is None else f"#{index + 1} · seed {seed}"
        item = QListWidgetItem(icon, text)
        action = "show it" if self._gallery else "use it"
        seed_text = "" if seed is None else f", seed {seed}"
        item.setToolTip(f"Sample {index + 1}{seed_text}: click to {action}")
        self._seeds.append(seed)
        self.list.blockSignals(True)
        self.list.addItem(item)
        first = self.list.currentRow() < 0
        if first:
            self.list.setCurrentRow(0)
        self.list.blockSignals(False)
        self._refresh()
        if first and self._gallery:
            self.sampleChosen.emit(0)

    def _fit_height(self, icon: QSize) -> None:
        """Thumbnails of ``icon``'s size, the strip as tall as they and their captions need
        (a landscape photo's thumbnails are lower than square ones)."""
        self.list.setIconSize(icon)
        bar = self.list.horizontalScrollBar().sizeHint().height()
        caption = self.list.fontMetrics().height()
        self.list.setFixedHeight(icon.height() + caption + bar + 2 * self.list.frameWidth() + 12)

    def select(self, index: int) -> None:
        """Make sample ``index`` current (emits ``sampleChosen`` when it changes)."""
        if 0 <= index < self.count:
            self.list.setCurrentRow(index)

    def previous(self) -> None:
        self.select(self.current - 1)

    def next(self) -> None:
        self.select(self.current + 1)

    def _row_changed(self, row: int) -> None:
        self._refresh()
        if row >= 0:
            self.sampleChosen.emit(row)

    def _refresh(self) -> None:
        count, current = self.count, self.current
        total = max(self._expected, count)
        if total == 0:
            self.label.setText("No results yet")
        elif count < total:
            self.label.setText(f"Sample {current + 1} of {total} ({total - count} coming)")
        else:
            self.label.setText(f"Sample {current + 1} of {total}")
        seed = self.seed(current)
        if seed is not None and count:
            self.label.setText(f"{self.label.text()} · seed {seed}")
        self.prev_button.setEnabled(current > 0)
        self.next_button.setEnabled(0 <= current < count - 1)
        self.use_button.setVisible(self._gallery)
        self.more_button.setVisible(self._gallery)
        self.use_button.setEnabled(self._gallery and current >= 0)
        self.seed_button.setEnabled(seed is not None)
