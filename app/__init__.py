"""Inpaint Studio's desktop app (PySide6).

Layout: Qt-free canvas model (:mod:`app.document`, :mod:`app.history`,
:mod:`app.mask_ops`, :mod:`app.pyramid`, :mod:`app.view`) and the widgets
that show and drive it (:mod:`app.canvas`, :mod:`app.main_window`, ...).
The engine runs in a worker thread (:mod:`app.worker`).
"""

from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Run the app: ``argv`` as ``sys.argv`` (an optional photo path after the program name).

    Returns the exit status of the Qt event loop.
    """
    from app.application import run

    return run(argv)


__all__ = ["main"]
