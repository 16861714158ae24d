"""Start the desktop app."""

from __future__ import annotations

import gc
import sys
from collections.abc import Sequence

from PySide6.QtCore import QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from app.compat import guard_none_refcount
from app.settings import APPLICATION, ORGANIZATION
from app.theme import apply_dark_theme


def run(argv: Sequence[str] | None = None) -> int:
    """Create the QApplication and the window, open ``argv[1]`` if given, run the event loop."""
    import qtawesome as qta

    from app.main_window import MainWindow

    guard_none_refcount()
    args = list(sys.argv if argv is None else argv)
    app = QApplication.instance() or QApplication(args)
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName(APPLICATION)
    apply_dark_theme(app)
    app.setWindowIcon(QIcon(qta.icon("mdi6.auto-fix", color="#e0457b").pixmap(64, 64)))
    window = MainWindow()
    window.show()
    # Everything created so far lives as long as the app: keep it out of the
    # garbage collector's full passes, which would otherwise pause a brush
    # stroke for ~25 ms now and then.
    gc.freeze()
    paths = [a for a in args[1:] if not a.startswith("-")]
    if paths:
        QTimer.singleShot(0, lambda: window.open_path(paths[0]))
    return app.exec()
