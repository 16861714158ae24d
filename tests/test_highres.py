"""Photos up to 8K through the classical model with the ``crop`` strategy."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from engine import Engine, InpaintRequest
from engine.highres import run_strategy
from engine.imageio import load_image, load_mask, save_image, save_mask
from engine.models.base import InpaintModel
from engine.registry import ModelSpec
from engine.synthetic import hole_mask, photo_like

# Telea on holes hundreds of pixels wide drifts from the true colour (up to
# ~30 levels measured on these images); a hole left unfilled is off by ~100.
HOLE_MEAN_TOLERANCE = 40


def holed_photo(height: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(truth, image with zeroed holes, mask) with holes over about 12% of the area."""
    truth = photo_like(height, width, seed=3)
    mask = hole_mask(height, width, ratio=0.12, regions=6, seed=3)
    image = truth.copy()
    image[mask] = 0
    return truth, image, mask


def assert_filled(out: np.ndarray, image: np.ndarray, truth: np.ndarray, mask: np.ndarray):
    assert out.shape == image.shape and out.dtype == np.uint8
    changed = (out != image).any(axis=2)
    assert not (changed & ~mask).any(), "known pixels changed"  # bit-identical
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.view(np.uint8))
    assert count > 2  # several holes
    for label in range(1, count):
        x, y, w, h, _ = stats[label]
        box = np.s_[y : y + h, x : x + w]
        hole = labels[box] == label
        filled = out[box][hole].astype(np.float64).mean(axis=0)
        expected = truth[box][hole].astype(np.float64).mean(axis=0)
        np.testing.assert_allclose(filled, expected, atol=HOLE_MEAN_TOLERANCE)


def test_2k_photo_with_several_holes():
    truth, image, mask = holed_photo(1080, 1920)
    assert 0.10 < mask.mean() < 0.14
    result = Engine().run(InpaintRequest(image, mask, "telea", strategy="crop", device="cpu"))
    assert_filled(result.images[0], image, truth, mask)


def test_8k_photo_with_several_holes():
    truth, image, mask = holed_photo(4320, 7680)
    assert 0.10 < mask.mean() < 0.14
    result = Engine().run(InpaintRequest(image, mask, "telea", strategy="crop", device="cpu"))
    assert result.strategy == "crop"
    assert_filled(result.images[0], image, truth, mask)


@pytest.mark.slow
def test_8k_photo_through_files(tmp_path):
    """The command line's path: photo and mask files in, a lossless file out."""
    truth, image, mask = holed_photo(4320, 7680)
    photo_path = save_image(tmp_path / "photo.png", image)
    mask_path = save_mask(tmp_path / "mask.png", mask)

    photo = load_image(photo_path)
    loaded_mask = load_mask(mask_path, photo.pixels.shape)
    np.testing.assert_array_equal(loaded_mask, mask)
    result = Engine().run(InpaintRequest(photo.pixels, loaded_mask, "telea", device="cpu"))
    out_path = save_image(tmp_path / "photo.inpainted.png", result.images[0], like=photo)

    assert_filled(load_image(out_path).pixels, image, truth, mask)


class _BestOfThree(InpaintModel):
    """A multi-sample test double: draws three flat fills per seed and keeps the brightest.

    Records every ``generate`` call's seeds, so a test sees whether a strategy asked for all
    of a view's samples at once (where a real model ranks its draws) or one at a time.
    """

    def __init__(self, spec: ModelSpec, device: str = "cpu") -> None:
        super().__init__(spec, device)
        self.calls: list[list[int]] = []

    def predict(self, image: np.ndarray, mask: np.ndarray, seed: int) -> np.ndarray:
        raise AssertionError("a strategy bypassed generate")

    def predict_with_attention(self, image, mask, seed):
        raise AssertionError("a strategy bypassed generate")

    def generate(self, image, mask, seeds, cancel=None, attention=False):
        self.calls.append(list(seeds))
        for seed in seeds:
            draws = [(seed * 3 + k) * 20 % 200 for k in range(3)]
            fill = np.full(image.shape, max(draws), np.uint8)
            yield (fill, None) if attention else fill


BEST_SPEC = ModelSpec(
    id="best-of-three", label="Best of three", description="test double",
    entry=f"{__name__}:_BestOfThree", native_size=64, size_multiple=16, multi_sample=True,
)  # fmt: skip


@pytest.mark.parametrize("strategy", ["crop", "cra", "resize"])
def test_every_strategy_asks_a_multi_sample_model_for_all_seeds_at_once(strategy):
    image = np.full((200, 300, 3), 90, np.uint8)
    mask = np.zeros((200, 300), bool)
    mask[20:50, 30:70] = True  # two holes far apart: two crops
    mask[140:180, 220:280] = True
    model = _BestOfThree(BEST_SPEC)
    outs = list(run_strategy(strategy, model, image, mask, [1, 2], None, lambda _: None))
    assert len(outs) == 2
    assert all(call == [1, 2] for call in model.calls), model.calls
    assert len(model.calls) == (2 if strategy == "crop" else 1)  # one call per view
    for seed, out in zip((1, 2), outs, strict=True):
        assert np.array_equal(out[~mask], image[~mask])
        if strategy != "cra":  # (cra matches a flat fill's colour to the photo at the edge)
            # Each sample is the kept (brightest) draw of its seed, in every hole.
            kept = max((seed * 3 + k) * 20 % 200 for k in range(3))
            assert abs(float(out[mask].mean()) - kept) < 3


def test_every_registered_strategy_runs_and_is_described():
    import importlib

    from engine.highres import STRATEGIES, describe, strategies_for

    model = _BestOfThree(BEST_SPEC)
    image = np.full((120, 160, 3), 90, np.uint8)
    mask = np.zeros((120, 160), bool)
    mask[30:60, 40:90] = True
    for name, (module, _) in STRATEGIES.items():
        assert callable(importlib.import_module(module).run)
        assert describe(name) and name in strategies_for(BEST_SPEC)
        (out,) = run_strategy(name, model, image, mask, [0], None, lambda _: None)
        assert out.shape == image.shape and np.array_equal(out[~mask], image[~mask])
