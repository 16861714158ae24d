"""A dark Fusion theme: photo editors use a neutral dark UI so it does not tint how colours look."""

from __future__ import annotations

import qtawesome as qta
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

ICON = "#dcdcdc"
ICON_DISABLED = "#6a6a6a"
ACCENT = QColor(224, 69, 123)


def apply_dark_theme(app: QApplication) -> None:
    """Fusion style, a dark neutral palette and light icons (call before creating widgets)."""
    app.setStyle("Fusion")
    palette = QPalette()
    role, group = QPalette.ColorRole, QPalette.ColorGroup
    base, window, text = QColor(37, 37, 40), QColor(50, 50, 54), QColor(220, 220, 220)
    for r, color in (
        (role.Window, window),
        (role.WindowText, text),
        (role.Base, base),
        (role.AlternateBase, window),
        (role.ToolTipBase, QColor(60, 60, 64)),
        (role.ToolTipText, text),
        (role.PlaceholderText, QColor(150, 150, 155)),
        (role.Text, text),
        (role.Button, window),
        (role.ButtonText, text),
        (role.BrightText, QColor(255, 90, 90)),
        (role.Highlight, ACCENT),
        (role.HighlightedText, QColor(255, 255, 255)),
        (role.Link, ACCENT.lighter(130)),
    ):
        palette.setColor(r, color)
    for r in (role.WindowText, role.Text, role.ButtonText):
        palette.setColor(group.Disabled, r, QColor(120, 120, 125))
    app.setPalette(palette)
    qta.set_defaults(color=ICON, color_disabled=ICON_DISABLED)
