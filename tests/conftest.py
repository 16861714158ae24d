"""Shared test set-up: Qt runs headless (set before any test imports Qt)."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
