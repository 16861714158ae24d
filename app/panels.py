"""The side panel: model picker, inpaint controls, results and mask operations."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QSizePolicy,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.results import ResultsStrip
from engine.highres import describe, strategies_for
from engine.registry import ModelSpec, get_spec, list_models, quality_gap, unavailable_reason


def action_button(action: QAction, text: bool = False) -> QToolButton:
    button = QToolButton()
    button.setDefaultAction(action)
    button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    if text:
        button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    return button


class ModelPicker(QComboBox):
    """Models from :func:`engine.list_models`; those that cannot run are shown disabled with why."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.reload()

    def reload(self) -> None:
        current = self.model_id()
        model = QStandardItemModel(self)
        for spec in list_models():
            reason = unavailable_reason(spec)
            gap = quality_gap(spec) if reason is None else None
            label = spec.label
            if reason is not None:
                label += " (unavailable)"
            elif gap is not None:
                label += " (below the bar)"
            item = QStandardItem(label)
            item.setData(spec.id, Qt.ItemDataRole.UserRole)
            tip = spec.description if reason is None else f"{spec.description}\n{reason}"
            if gap is not None:
                tip += f"\nBelow the project's quality bar: {gap}."
            item.setToolTip(tip)
            item.setEnabled(reason is None)
            model.appendRow(item)
        self.setModel(model)
        if current:
            self.select(current)

    def model_id(self) -> str:
        value = self.currentData(Qt.ItemDataRole.UserRole)
        return str(value) if value else ""

    def select(self, model_id: str) -> bool:
        """Select ``model_id`` if it is listed and can run."""
        index = self.findData(model_id, Qt.ItemDataRole.UserRole)
        if index < 0:
            return False
        item = self.model().item(index)
        if not item.isEnabled():
            return False
        self.setCurrentIndex(index)
        return True

    def spec(self) -> ModelSpec | None:
        model_id = self.model_id()
        return get_spec(model_id) if model_id else None


class InpaintPanel(QWidget):
    """Model, samples and strategy; the Inpaint button, progress with Cancel, the results strip."""

    modelChanged = Signal(str)

    def __init__(self, inpaint: QAction, cancel: QAction, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.models = ModelPicker()
        self.description = QLabel()
        self.description.setWordWrap(True)
        self.description.setStyleSheet("color: palette(placeholder-text);")
        self.samples = QSpinBox()
        self.samples.setRange(1, 16)
        self.samples.setToolTip("How many different fills to draw (multi-sample models only)")
        self.strategy = QComboBox()
        self.strategy.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.texture = QCheckBox("Photo texture")
        self.texture.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.inpaint_button = action_button(inpaint, text=True)
        self.inpaint_button.setMinimumHeight(34)
        self.inpaint_button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setRange(0, 100)
        self.progress.setValue(0)
        self.cancel_button = action_button(cancel)
        self.status = QLabel("Ready")
        self.status.setWordWrap(True)
        self.results = ResultsStrip()

        form = QFormLayout()
        form.addRow("Model", self.models)
        form.addRow(self.description)
        form.addRow("Samples", self.samples)
        form.addRow("Strategy", self.strategy)
        form.addRow(self.texture)
        progress_row = QHBoxLayout()
        progress_row.addWidget(self.progress, 1)
        progress_row.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.inpaint_button)
        layout.addLayout(progress_row)
        layout.addWidget(self.status)
        results_box = QGroupBox("Results")
        results_layout = QVBoxLayout(results_box)
        results_layout.addWidget(self.results)
        layout.addWidget(results_box)
        self.models.currentIndexChanged.connect(self._model_changed)
        self._model_changed()

    def _model_changed(self, *_: object) -> None:
        spec = self.models.spec()
        self.description.setText(spec.description if spec else "No model can run.")
        multi = bool(spec and spec.multi_sample)
        self.samples.setEnabled(multi)
        self.samples.setToolTip(
            "How many different fills to draw"
            if multi
            else "This model gives one fill per run (it is not multi-sample)"
        )
        learned = bool(spec and spec.native_size is not None)
        self.texture.setEnabled(learned)
        self.texture.setToolTip(
            "Rebuild the model's fill from the photo's own patches: texture instead of a "
            "smooth fill, at some cost in time"
            if learned
            else "This method already works on the photo's own pixels at full resolution"
        )
        current = self.strategy.currentText() or "auto"
        names = list(strategies_for(spec)) if spec else ["auto"]
        self.strategy.blockSignals(True)
        self.strategy.clear()
        for i, name in enumerate(names):
            self.strategy.addItem(name)
            self.strategy.setItemData(
                i,
                describe(name),
                Qt.ItemDataRole.ToolTipRole,
            )
        self.strategy.setCurrentText(current if current in names else "auto")
        self.strategy.blockSignals(False)
        if spec:
            self.modelChanged.emit(spec.id)

    def sample_count(self) -> int:
        return self.samples.value() if self.samples.isEnabled() else 1

    def set_progress(self, percent: int, message: str) -> None:
        """``percent`` < 0 shows a busy bar (unknown amount of work)."""
        if percent < 0:
            self.progress.setRange(0, 0)
        else:
            self.progress.setRange(0, 100)
            self.progress.setValue(percent)
        if message:
            self.status.setText(message)


class MaskPanel(QGroupBox):
    """Grow, shrink, feather (by an amount), invert and clear the mask."""

    def __init__(self, actions: list[QAction], parent: QWidget | None = None) -> None:
        super().__init__("Mask", parent)
        self.amount = QSpinBox()
        self.amount.setRange(1, 500)
        self.amount.setValue(8)
        self.amount.setSuffix(" px")
        self.amount.setToolTip("How far grow, shrink and feather reach")
        grid = QGridLayout()
        for i, action in enumerate(actions):
            button = action_button(action, text=True)
            button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            grid.addWidget(button, i // 2, i % 2)
        layout = QVBoxLayout(self)
        amount_row = QHBoxLayout()
        amount_row.addWidget(QLabel("Amount"))
        amount_row.addWidget(self.amount)
        amount_row.addStretch(1)
        layout.addLayout(amount_row)
        layout.addLayout(grid)
