"""Photos up to 8K through the classical model with the ``crop`` strategy."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from engine import Engine, InpaintRequest
from engine.imageio import load_image, load_mask, save_image, save_mask
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
