"""Guards against known-bad Qt binding builds.

PySide6 6.12.0 on Python 3.11 drops a reference to ``None`` every time a
void C++ method returns (``widget.update()``, ``action.setEnabled()``, ...).
Python 3.12+ never frees ``None`` (it is immortal there), but on 3.11 the
interpreter aborts with "none_dealloc" after a few thousand such calls, i.e.
within a minute of painting. The project pins PySide6-Essentials 6.11.3; if
a leaking build is found anyway, :func:`guard_none_refcount` gives ``None`` a
reference count so large that it can never reach zero, which is exactly what
Python 3.12 does, and logs a warning.
"""

from __future__ import annotations

import ctypes
import logging
import sys

log = logging.getLogger(__name__)

# References added to None when the binding leaks: at one leaked reference per
# call this lasts for 2**60 calls.
_RESERVE = 1 << 60


def leaks_none_references() -> bool:
    """Whether void Qt calls of the installed PySide6 drop references to None."""
    from PySide6.QtCore import QObject

    probe = QObject()
    before = sys.getrefcount(None)
    for _ in range(100):
        probe.setObjectName("probe")  # a void method
    return sys.getrefcount(None) < before - 50


def guard_none_refcount() -> bool:
    """Make a leaking PySide6 harmless (see the module doc); True if it was needed."""
    if sys.version_info >= (3, 12) or not leaks_none_references():
        return False
    import PySide6

    log.warning(
        "PySide6 %s leaks references to None on Python %d.%d; protecting None. "
        "Install PySide6-Essentials==6.11.3 to fix this.",
        PySide6.__version__,
        *sys.version_info[:2],
    )
    refcount = ctypes.c_ssize_t.from_address(id(None))
    refcount.value += _RESERVE
    return True
