"""Strategy ``original``: the whole photo as it is, padded to the model's size multiple."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from engine.highres.common import View, fill_whole


def run(view: View) -> Iterator[np.ndarray]:
    return fill_whole(view, None)
