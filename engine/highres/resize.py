"""Strategy ``resize``: the whole photo scaled down to the model's native size and the
fill scaled back up (blurry at high resolution; the baseline ``cra`` is measured against)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from engine.highres.common import View, fill_whole


def run(view: View) -> Iterator[np.ndarray]:
    return fill_whole(view, view.model.spec.native_size)
