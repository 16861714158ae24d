"""The result side: the samples of the last job, shown as a strip the user flips through.

Samples arrive one at a time while the job runs (``add_sample``); choosing one
(click, previous/next) emits ``sampleChosen`` and the window applies it.
"""

from __future__ import annotations

import numpy as np
import qtawesome as qta
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.qimage import thumbnail

THUMB = 96


class ResultsStrip(QWidget):
    """Thumbnails of a job's samples with previous/next buttons."""

    sampleChosen = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._expected = 0
        self.list = QListWidget()
        self.list.setViewMode(QListWidget.ViewMode.IconMode)
        self.list.setFlow(QListWidget.Flow.LeftToRight)
        self.list.setWrapping(False)
        self.list.setMovement(QListWidget.Movement.Static)
        self.list.setIconSize(QSize(THUMB, THUMB))
        self.list.setFixedHeight(THUMB + 34)
        self.list.setHorizontalScrollMode(QListWidget.ScrollMode.ScrollPerPixel)
        self.list.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.list.currentRowChanged.connect(self._row_changed)
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
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.list)
        layout.addLayout(row)
        self._refresh()

    @property
    def count(self) -> int:
        return self.list.count()

    @property
    def current(self) -> int:
        return self.list.currentRow()

    def begin(self, expected: int) -> None:
        """Forget the previous job's samples; ``expected`` more are on their way."""
        self.list.blockSignals(True)
        self.list.clear()
        self.list.blockSignals(False)
        self._expected = expected
        self._refresh()

    def clear(self) -> None:
        self.begin(0)

    def add_sample(self, index: int, image: np.ndarray) -> None:
        """Show sample ``index`` (RGB uint8); the first one becomes the current one."""
        pixmap = QPixmap.fromImage(thumbnail(image, THUMB))
        icon = QIcon(pixmap)
        icon.addPixmap(pixmap, QIcon.Mode.Selected)  # no selection tint over the photo
        item = QListWidgetItem(icon, f"#{index + 1}")
        item.setToolTip(f"Sample {index + 1}: click to use it")
        self.list.blockSignals(True)
        self.list.addItem(item)
        if self.list.currentRow() < 0:
            self.list.setCurrentRow(0)
        self.list.blockSignals(False)
        self._refresh()

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
        self.prev_button.setEnabled(current > 0)
        self.next_button.setEnabled(0 <= current < count - 1)
