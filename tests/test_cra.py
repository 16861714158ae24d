"""Contextual residual aggregation (engine.highres.cra): texture recovery, sizes, memory bound."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from engine.highres import STRATEGIES, run_strategy
from engine.highres.common import View
from engine.highres.cra import (
    BorderShift,
    Grid,
    aggregate_residuals,
    cell_weights,
    completion_scores,
    copy_gain,
    copy_residuals,
    plan_grid,
    run,
)
from engine.models.base import AttentionScores, InpaintModel
from engine.registry import ModelSpec

LOW_SPEC = ModelSpec(
    id="low-telea",
    label="Telea at low resolution",
    description="test double: a model that only works at 64 px",
    entry="tests.test_cra:LowResTelea",
    native_size=64,
    size_multiple=16,
)


class LowResTelea(InpaintModel):
    """A smooth low-resolution filler without attention (counts its calls and sizes)."""

    def __init__(self, spec: ModelSpec = LOW_SPEC, device: str = "cpu") -> None:
        super().__init__(spec, device)
        self.sizes: list[tuple[int, int]] = []

    def predict(self, image: np.ndarray, mask: np.ndarray, seed: int) -> np.ndarray:
        assert max(mask.shape) <= self.spec.native_size
        self.sizes.append(mask.shape)
        return cv2.inpaint(image, mask.astype(np.uint8), 3, cv2.INPAINT_TELEA)


def _run(model: InpaintModel, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return next(iter(run(View(model, image, mask, [0], None, lambda _: None))))


def _striped(h: int, w: int) -> np.ndarray:
    """A smooth gradient plus a strong period-4 stripe texture (pure high frequency)."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    smooth = 60 + 100 * xs / w + 40 * ys / h
    stripes = 40 * np.sin(2 * np.pi * xs / 4 + np.pi / 4) * np.sqrt(2)  # +-40 at integer x
    base = np.stack([smooth, smooth * 0.8 + 20, 200 - smooth * 0.5], -1)
    return np.clip(base + stripes[..., None], 0, 255).round().astype(np.uint8)


def _high_pass(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float32)
    return x - cv2.blur(x, (4, 1))


def test_cra_is_a_shared_strategy():
    assert "cra" in STRATEGIES
    image, mask = _striped(128, 192), np.zeros((128, 192), bool)
    mask[40:80, 60:120] = True
    out = next(iter(run_strategy("cra", LowResTelea(), image, mask, [0], None, lambda _: None)))
    assert out.shape == image.shape


def test_aggregation_restores_periodic_texture_in_the_hole():
    # 256 x 384 photo, 64 px model: 4 cells on the long side, cells of 96 px, 3 x 4 grid
    # (the photo is reflect-padded to 288 rows). The stripes' period (4 px)
    # divides the cell, so every context cell's residual is the texture in phase: whatever
    # the weights, the hole's aggregated residual must be the texture itself.
    truth = _striped(256, 384)
    mask = np.zeros(truth.shape[:2], bool)
    mask[70:190, 130:250] = True
    image = truth.copy()
    image[mask] = 0  # hole content is undefined
    model = LowResTelea()
    out = _run(model, image, mask)
    assert model.sizes == [(48, 64)]  # aspect ratio kept: 3 x 4 cells of 16 px
    assert np.array_equal(out[~mask], truth[~mask])
    blurry = next(iter(run_strategy("resize", model, image, mask, [0], None, lambda _: None)))
    hp_truth, hp_cra, hp_resize = (_high_pass(x)[mask] for x in (truth, out, blurry))
    # The stripes come back in the hole (energy and phase) and resize loses them.
    assert np.abs(hp_cra - hp_truth).mean() < 0.2 * np.abs(hp_truth).mean()
    assert np.abs(hp_resize - hp_truth).mean() > 0.6 * np.abs(hp_truth).mean()
    err_cra = np.abs(out.astype(int) - truth)[mask].mean()
    err_resize = np.abs(blurry.astype(int) - truth)[mask].mean()
    assert err_cra < 0.5 * err_resize


def test_model_scores_pick_the_context_cell():
    # All weight on one context cell: the hole cell's residual is exactly that cell's.
    rng = np.random.default_rng(0)
    grid = Grid(rows=2, cols=3, cell=8)
    image = rng.integers(0, 256, (16, 24, 3), dtype=np.uint8)
    base = np.full_like(image, 128)
    mask = np.zeros((16, 24), bool)
    mask[0:8, 8:16] = True  # cell 1 entirely hole
    holes = torch.zeros(6, dtype=torch.bool)
    holes[1] = True
    scores = torch.zeros(6, 6)
    scores[1, 5] = 1.0
    weights, hole_idx, ctx_idx = cell_weights(
        AttentionScores(scores, 16), np.zeros((32, 48, 3), np.uint8), holes, "cpu"
    )
    assert hole_idx.tolist() == [1] and ctx_idx.tolist() == [0, 2, 3, 4, 5]
    assert torch.equal(weights, torch.tensor([[0.0, 0.0, 0.0, 0.0, 1.0]]))
    out = image.copy()
    aggregate_residuals(
        torch.from_numpy(out), torch.from_numpy(image), torch.from_numpy(base),
        torch.from_numpy(mask), grid, weights, hole_idx, ctx_idx,
    )  # fmt: skip
    assert np.array_equal(out[0:8, 8:16], image[8:16, 16:24])
    assert np.array_equal(out[~mask], image[~mask])


def test_completion_scores_prefer_similar_cells():
    fill = torch.zeros(1, 3, 32, 48)
    fill[..., :16, :16] = 1.0  # cell 0 bright like cell 1 (the hole)
    fill[..., :16, 16:32] = 1.0
    holes = torch.tensor([False, True, False, False, False, False])
    scores = completion_scores(fill, holes, 16)
    assert scores[1, 1] == 0 and torch.allclose(scores[1].sum(), torch.tensor(1.0))
    assert scores[1].argmax().item() == 0


@pytest.mark.parametrize(("h", "w"), [(1000, 4000), (513, 2049), (2049, 513)])
def test_odd_sizes_and_aspect_ratios(h, w):
    rng = np.random.default_rng(h)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    mask = np.zeros((h, w), bool)
    mask[h // 3 : h // 2, w // 4 : w // 3] = True
    mask[-5:, -7:] = True  # a hole touching the padded corner
    model = LowResTelea()
    out = _run(model, image, mask)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert np.array_equal(out[~mask], image[~mask])
    grid = plan_grid(h, w, 64)
    assert model.sizes == [grid.low_shape]
    low_h, low_w = grid.low_shape
    # Long side at the native size; aspect ratio within one cell of the photo's.
    assert max(low_h, low_w) == 64
    assert abs(low_w / low_h - w / h) <= (w / h) * 16 / min(low_h, low_w) + 1e-9


def test_known_pixels_unchanged_at_8k():
    h, w = 4320, 7680
    rng = np.random.default_rng(1)
    image = np.empty((h, w, 3), np.uint8)
    image[:] = rng.integers(0, 256, (1, w, 3), dtype=np.uint8)  # cheap but not constant
    mask = np.zeros((h, w), bool)
    mask[1000:2200, 3000:4500] = True
    mask[4000:4300, 100:7000] = True
    image.flags.writeable = False  # as the engine hands it over
    spec = ModelSpec(**{**LOW_SPEC.__dict__, "native_size": 512})
    out = _run(LowResTelea(spec), image, mask)
    assert np.array_equal(out[~mask], image[~mask])
    assert not np.array_equal(out[mask], image[mask])


class Brighter(LowResTelea):
    """Fills its hole 12 levels brighter than the photo around it (a colour error)."""

    def predict(self, image: np.ndarray, mask: np.ndarray, seed: int) -> np.ndarray:
        fill = super().predict(image, mask, seed).astype(int)
        return np.clip(fill + 12 * mask[..., None], 0, 255).astype(np.uint8)


def _border_step(out: np.ndarray, mask: np.ndarray) -> float:
    """Mean |difference| between the hole's outermost pixels and the known pixels beside them."""
    inner = mask & ~cv2.erode(mask.view(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    outer = cv2.dilate(mask.view(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & ~mask
    img = out.astype(np.float32)

    def side_mean(side: np.ndarray) -> np.ndarray:  # over a 7 px window: the step, not texture
        total = cv2.blur(np.where(side[..., None], img, 0), (7, 7))
        return total / np.maximum(cv2.blur(side * 1.0, (7, 7)), 1e-6)[..., None]

    a, b = side_mean(inner), side_mean(outer)
    return float(np.abs(a - b)[inner].mean())


def test_the_fill_meets_the_photo_without_a_step_at_the_hole_border(monkeypatch):
    # A smooth photo at 4x the model's size and a model whose fill is 12 levels too bright:
    # the border of the hole must not show that step (it would trace the hole as a line).
    ys, xs = np.mgrid[0:256, 0:384].astype(np.float32)
    image = np.stack([80 + 60 * xs / 384, 120 + 40 * ys / 256, 100 + 0 * xs], -1).astype(np.uint8)
    mask = np.zeros(image.shape[:2], np.uint8)
    cv2.ellipse(mask, (190, 130), (90, 60), 20, 0, 360, 1, -1)
    mask = mask.astype(bool)
    out = _run(Brighter(), image, mask)
    assert np.array_equal(out[~mask], image[~mask])
    assert _border_step(out, mask) < 2.0
    # Without the matching the step is there (the test can tell).
    monkeypatch.setattr("engine.highres.cra.border_shift", lambda *args: None)
    assert _border_step(_run(Brighter(), image, mask), mask) > 8.0


def test_aggregation_is_each_hole_cells_weighted_sum_of_context_residuals():
    # A grid that is not square, holes partly covering their cells, chunks of a few rows:
    # every hole pixel is base + sum_j w_j * (photo - base) of context cell j at the same
    # place in the cell, rounded; every other pixel is the photo's.
    rng = np.random.default_rng(5)
    grid = Grid(rows=3, cols=5, cell=8)
    image = rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)
    base = rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)
    mask = np.zeros((24, 40), bool)
    mask[2:14, 9:30] = True
    cells = mask.reshape(3, 8, 5, 8).any(axis=(1, 3)).reshape(-1)
    hole_idx = torch.from_numpy(np.flatnonzero(cells))
    ctx_idx = torch.from_numpy(np.flatnonzero(~cells))
    gen = torch.Generator().manual_seed(1)
    weights = torch.softmax(torch.randn(len(hole_idx), len(ctx_idx), generator=gen), dim=1)
    out = image.copy()
    aggregate_residuals(
        torch.from_numpy(out), torch.from_numpy(image), torch.from_numpy(base),
        torch.from_numpy(mask), grid, weights, hole_idx, ctx_idx, chunk_bytes=6000,
    )  # fmt: skip

    def cell(a: np.ndarray, k: int) -> np.ndarray:
        r, c = divmod(int(k), 5)
        return a[r * 8 : (r + 1) * 8, c * 8 : (c + 1) * 8].astype(np.float64)

    expected = image.copy()
    for i, k in enumerate(hole_idx):
        residual = sum(
            float(weights[i, j]) * (cell(image, m) - cell(base, m)) for j, m in enumerate(ctx_idx)
        )
        filled = np.clip(np.round(cell(base, k) + residual), 0, 255).astype(np.uint8)
        r, c = divmod(int(k), 5)
        box = np.s_[r * 8 : (r + 1) * 8, c * 8 : (c + 1) * 8]
        expected[box] = np.where(mask[box][..., None], filled, image[box])
    assert np.abs(out.astype(int) - expected).max() <= 1  # float32 against float64 sums
    assert np.array_equal(out[~mask], image[~mask])


def test_border_shift_changes_only_hole_pixels_by_the_interpolated_shift():
    # Two holes in the same rows far apart: each hole pixel gets the bilinear shift at its
    # place (rounded, saturated), every other pixel of the box, between the holes too, stays.
    rng = np.random.default_rng(2)
    out = rng.integers(0, 256, (60, 90, 3), dtype=np.uint8)
    photo = out.copy()
    mask = np.zeros((60, 90), bool)
    mask[10:30, 6:14] = True
    mask[12:50, 70:80] = True
    spread = rng.normal(0, 30, (16, 23, 3)).astype(np.float32)
    box = (slice(4, 60), slice(2, 88))
    BorderShift(spread, box, 4).apply(out, mask)
    h, w = mask[box].shape
    xs = np.broadcast_to(((np.arange(w, dtype=np.float32) + 0.5) / 4 - 0.5)[None], (h, w))
    ys = np.broadcast_to(((np.arange(h, dtype=np.float32) + 0.5) / 4 - 0.5)[:, None], (h, w))
    shift = cv2.remap(
        spread, np.ascontiguousarray(xs), np.ascontiguousarray(ys), cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )  # fmt: skip
    expected = photo.copy()
    added = cv2.add(photo[box], shift, dtype=cv2.CV_8U)
    expected[box] = np.where(mask[box][..., None], added, photo[box])
    assert np.array_equal(out, expected)
    assert (out[mask] != photo[mask]).any()


def _aggregate_case(hole_cells: int, chunk_bytes: int) -> tuple[np.ndarray, list[int]]:
    rng = np.random.default_rng(3)
    grid = Grid(rows=8, cols=8, cell=32)
    image = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    base = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    holes = torch.zeros(64, dtype=torch.bool)
    holes[:hole_cells] = True
    mask = holes.view(8, 8).repeat_interleave(32, 0).repeat_interleave(32, 1).numpy()
    hole_idx, ctx_idx = holes.nonzero().squeeze(1), (~holes).nonzero().squeeze(1)
    gen = torch.Generator().manual_seed(0)
    weights = torch.softmax(torch.randn(len(hole_idx), len(ctx_idx), generator=gen), dim=1)
    out = image.copy()
    chunks: list[int] = []
    aggregate_residuals(
        torch.from_numpy(out), torch.from_numpy(image), torch.from_numpy(base),
        torch.from_numpy(mask), grid, weights, hole_idx, ctx_idx,
        chunk_bytes=chunk_bytes, on_chunk=chunks.append,
    )  # fmt: skip
    return out, chunks


@pytest.mark.parametrize("hole_cells", [4, 40])
def test_chunked_aggregation_bounds_memory_and_matches_one_pass(hole_cells):
    budget = 256 * 2**10
    chunked, chunks = _aggregate_case(hole_cells, budget)
    whole, one = _aggregate_case(hole_cells, 2**40)
    assert len(one) == 1 and len(chunks) > 1
    assert max(chunks) <= budget  # whatever the hole size
    assert np.array_equal(chunked, whole)


def test_copied_residuals_are_the_photos_own_at_the_offset():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (160, 320, 3), dtype=np.uint8)
    base = cv2.GaussianBlur(image, (0, 0), 3)
    mask = np.zeros((160, 320), bool)
    mask[40:100, 200:280] = True
    # Every hole cell of a 4 x 8 grid (40 px cells) copies from 4 cells to its left.
    copies = torch.zeros(4, 8, 2, dtype=torch.long)
    copies[1:3, 5:7] = torch.tensor([0, -4])
    out = torch.from_numpy(image.copy())
    tensors = [torch.from_numpy(a) for a in (image, base, mask)]
    copy_residuals(out, *tensors, copies, Grid(4, 8, 40))
    src = np.roll(mask, -160, axis=1)
    want = np.clip(base[mask].astype(int) + image[src].astype(int) - base[src], 0, 255)
    assert np.array_equal(out.numpy()[mask], want)
    assert np.array_equal(out.numpy()[~mask], image[~mask])


def test_copies_that_cross_fade_keep_the_photos_contrast():
    # Two neighbouring hole cells copy unrelated noise from different places: where their
    # copies cross-fade (the cells' shared edge) a plain weighted mean of the two would have
    # about 1 / sqrt(2) of the noise's contrast; the blend keeps all of it.
    rng = np.random.default_rng(2)
    image = rng.integers(28, 229, (160, 320, 3), dtype=np.uint8)
    base = np.full_like(image, 128)
    mask = np.zeros((160, 320), bool)
    mask[40:120, 200:280] = True
    copies = torch.zeros(4, 8, 2, dtype=torch.long)
    copies[1:3, 5] = torch.tensor([0, -4])
    copies[1:3, 6] = torch.tensor([0, -3])
    out = torch.from_numpy(image.copy())
    tensors = [torch.from_numpy(a) for a in (image, base, mask)]
    copy_residuals(out, *tensors, copies, Grid(4, 8, 40))
    residual = out.numpy().astype(np.float32) - 128
    edge = residual[60:100, 239:241].std()
    inside = residual[60:100, 215:225].std()
    assert edge > 0.9 * inside
    assert abs(edge - image.astype(np.float32).std()) < 0.1 * image.std()


def test_a_copy_is_no_more_contrasted_than_the_cells_around_its_hole():
    # Textured cells on the left, smooth ones on the right: a hole in the smooth part that
    # copies a textured cell gets that copy toned down to its surroundings' contrast
    # (no streaks in a clear sky); a hole in the textured part keeps its copy as it is.
    energy = torch.ones(4, 12)
    energy[:, :6] = 100.0
    holes = torch.zeros(4, 12, dtype=torch.bool)
    holes[1:3, 8:10] = True  # smooth surroundings
    holes[1:3, 2:4] = True  # textured surroundings
    energy[holes] = 0.0  # hole cells hold no residual of their own
    copies = torch.zeros(4, 12, 2, dtype=torch.long)
    copies[1:3, 8:10] = torch.tensor([0, -8])  # from textured cells
    copies[1:3, 2:4] = torch.tensor([0, -2])
    gain = copy_gain(energy, holes, copies)
    assert torch.all(gain[1:3, 8:10] < 0.2)
    assert torch.all(gain[1:3, 2:4] > 0.9)
    assert torch.all(gain <= 1.0)


class TexturedLowResTelea(LowResTelea):
    texture = True


def test_texture_option_copies_cells_and_keeps_the_photos_detail():
    # A texture that does not repeat exactly: averaging many cells' residuals cancels it,
    # copying one cell's keeps it; where neighbouring cells copy from different places the
    # copies cross-fade (no step at the cells' edges, a bounded error everywhere).
    rng = np.random.default_rng(1)
    noise = cv2.GaussianBlur(rng.normal(0, 25, (384, 576)).astype(np.float32), (0, 0), 1.0)
    ys, xs = np.mgrid[0:384, 0:576].astype(np.float32)
    smooth = np.stack([60 + 100 * xs / 576, 80 + 60 * ys / 384, 150 - 50 * xs / 576], -1)
    truth = np.clip(smooth + noise[..., None], 0, 255)
    truth = truth.astype(np.uint8)
    mask = np.zeros(truth.shape[:2], bool)
    mask[100:260, 180:420] = True
    image = truth.copy()
    image[mask] = 0
    soft = _run(LowResTelea(), image, mask)
    sharp = _run(TexturedLowResTelea(), image, mask)
    assert np.array_equal(sharp[~mask], truth[~mask])

    def detail(x: np.ndarray) -> float:
        g = cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).astype(np.float32)
        return float(((g - cv2.GaussianBlur(g, (0, 0), 2)) ** 2)[mask].mean())

    assert detail(sharp) > 0.6 * detail(truth) > detail(soft)
