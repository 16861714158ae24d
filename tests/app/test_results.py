"""The results strip on its own: thumbnails sized to the photo, captions with seeds."""

from __future__ import annotations

import numpy as np

from app.results import THUMB, ResultsStrip


def _strip(qtbot, width: int, height: int) -> ResultsStrip:
    strip = ResultsStrip()
    qtbot.addWidget(strip)
    strip.begin(2, gallery=True)
    for i in range(2):
        strip.add_sample(i, np.full((height, width, 3), 40 * i, np.uint8), seed=7 + i)
    return strip


def test_a_landscape_gallery_is_no_taller_than_its_thumbnails(qtbot) -> None:
    wide, square = _strip(qtbot, 200, 100), _strip(qtbot, 100, 100)
    assert wide.list.iconSize().width() == THUMB
    assert wide.list.iconSize().height() == THUMB // 2
    assert square.list.iconSize().height() == THUMB
    # The strip loses the height its thumbnails do not use.
    assert square.list.height() - wide.list.height() == THUMB // 2
    item = wide.list.item(0)
    assert wide.list.visualItemRect(item).bottom() < wide.list.viewport().height()


def test_each_thumbnail_is_captioned_with_its_seed(qtbot) -> None:
    strip = _strip(qtbot, 120, 90)
    assert [strip.list.item(i).text() for i in range(2)] == ["#1 · seed 7", "#2 · seed 8"]
    assert strip.label.text() == "Sample 1 of 2 · seed 7"
