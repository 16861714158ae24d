"""The Qt-free canvas model: brush geometry, mask operations, undo and results."""

from __future__ import annotations

import numpy as np
import pytest

from app.document import Document
from app.geometry import Rect
from app.pyramid import Pyramid
from app.view import View


def reference_capsule(shape, a, b, radius):
    """Pixels whose centre is within ``radius`` of segment ab, in float64, pixel by pixel."""
    h, w = shape
    out = np.zeros(shape, bool)
    ax, ay = a
    bx, by = b
    for y in range(h):
        for x in range(w):
            px, py = x + 0.5, y + 0.5
            dx, dy = bx - ax, by - ay
            length2 = dx * dx + dy * dy
            t = (
                0.0
                if length2 == 0
                else min(1.0, max(0.0, ((px - ax) * dx + (py - ay) * dy) / length2))
            )
            cx, cy = ax + t * dx, ay + t * dy
            out[y, x] = (px - cx) ** 2 + (py - cy) ** 2 <= radius * radius
    return out


def test_stroke_covers_exactly_the_capsule_and_is_continuous(make_photo) -> None:
    doc = Document(make_photo(64, 48))
    stroke = doc.begin_stroke(radius=3.0)
    stroke.add_point(5, 10)
    stroke.add_point(55, 30)  # one fast movement: no gaps between the ends
    stroke.finish()
    expected = reference_capsule((48, 64), (5, 10), (55, 30), 3.0)
    np.testing.assert_array_equal(doc.mask, expected)
    # Continuity: every column between the ends has painted pixels.
    assert doc.mask[:, 5:55].any(axis=0).all()


def test_eraser_removes_and_undo_redo_restore_exact_masks(make_photo) -> None:
    doc = Document(make_photo(64, 48))
    doc.fill_rect(Rect(10, 10, 50, 40))
    painted = doc.mask.copy()
    stroke = doc.begin_stroke(radius=4.0, erase=True)
    stroke.add_point(0, 25)
    stroke.add_point(64, 25)
    stroke.finish()
    erased = doc.mask.copy()
    assert erased.sum() < painted.sum()
    assert not erased[23:27].any()  # a 8 px wide band is gone
    assert doc.history.undo_label == "Eraser stroke"
    doc.undo()
    np.testing.assert_array_equal(doc.mask, painted)
    doc.undo()
    assert not doc.mask.any()
    doc.redo()
    doc.redo()
    np.testing.assert_array_equal(doc.mask, erased)


def test_stroke_undo_data_is_proportional_to_the_touched_area() -> None:
    doc = Document(np.zeros((2000, 3000, 3), np.uint8))
    stroke = doc.begin_stroke(radius=10)
    stroke.add_point(100, 100)
    stroke.add_point(150, 120)
    edit = stroke.finish()
    assert edit is not None
    assert edit.nbytes < 2 * 256 * 256 // 8 * 2  # at most a couple of packed tiles


def test_lasso_and_mask_operations(make_photo) -> None:
    doc = Document(make_photo(100, 100))
    assert doc.fill_polygon([(20, 20), (80, 20), (80, 80), (20, 80)])
    assert doc.mask.sum() == 60 * 60
    assert doc.mask[20:80, 20:80].all()
    assert doc.grow_mask(5)
    assert doc.mask[15, 50] and not doc.mask[14, 50]
    assert doc.shrink_mask(5)
    assert doc.mask.sum() == 60 * 60
    assert doc.invert_mask()
    assert doc.mask.sum() == 100 * 100 - 60 * 60
    assert doc.invert_mask()
    assert doc.feather_mask(6)
    assert not doc.mask[20, 20]  # corners rounded
    assert doc.mask[50, 21]  # straight edges kept
    assert doc.clear_mask()
    assert not doc.mask.any()
    for _ in range(6):
        doc.undo()
    assert doc.mask.sum() == 60 * 60


def test_result_is_one_undoable_step_that_clears_the_filled_hole(make_photo) -> None:
    photo = make_photo(80, 60)
    doc = Document(photo)
    doc.fill_rect(Rect(10, 10, 30, 20))
    request_image, request_mask = doc.photo, doc.mask.copy()
    result = photo.copy()
    result[request_mask] = 7
    step = doc.apply_result(request_image, request_mask, result, "Inpaint")
    assert np.array_equal(doc.photo, result) and not doc.photo.flags.writeable
    assert not doc.mask.any()
    assert step.rect == Rect(10, 10, 30, 20)  # undo keeps only the hole's box
    assert doc.modified
    other = photo.copy()
    other[request_mask] = 200
    assert doc.replace_result(step, other)
    assert np.array_equal(doc.photo, other)
    doc.undo()
    assert np.array_equal(doc.photo, photo)
    assert np.array_equal(doc.mask, request_mask)
    assert not doc.modified
    doc.redo()
    assert np.array_equal(doc.photo, other)


def test_pyramid_updates_match_a_rebuild() -> None:
    rng = np.random.default_rng(1)
    mask = rng.random((700, 1100)) > 0.7
    pyramid = Pyramid(mask, gain=255)
    pyramid.level(pyramid.max_level)
    mask[100:333, 51:777] = ~mask[100:333, 51:777]
    pyramid.update(Rect(51, 100, 777, 333))
    rebuilt = Pyramid(mask, gain=255)
    for level in range(1, pyramid.max_level + 1):
        np.testing.assert_array_equal(pyramid.level(level), rebuilt.level(level))
    assert pyramid.level_for_scale(1.0) == 0
    assert pyramid.level_for_scale(0.3) == 1
    assert pyramid.level_for_scale(0.01) == pyramid.max_level


@pytest.mark.parametrize("factor", [1.25, 0.5, 7.0])
def test_view_zoom_keeps_the_point_under_the_cursor(factor: float) -> None:
    view = View(scale=0.37, offset_x=12.5, offset_y=-40)
    before = view.to_image(300, 200)
    view.zoom_at(view.scale * factor, 300, 200)
    assert view.to_image(300, 200) == pytest.approx(before)
