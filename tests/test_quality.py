"""The measures of what a user sees (training/quality.py) and the PatchMatch peer."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from engine import Engine, InpaintRequest
from training.quality import DeepFeatureDistance, detail_ratio


def textured(h: int = 128, w: int = 128) -> np.ndarray:
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 / w, y * 255 / h, np.full((h, w), 128)], -1)
    return np.clip(0.6 * base + 0.4 * cv2.GaussianBlur(noise, (0, 0), 1.0), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def judge() -> DeepFeatureDistance:
    return DeepFeatureDistance()


def test_deep_distance_is_zero_for_identical_images_and_grows_with_blur(judge):
    image = textured()
    assert judge(image, image) == pytest.approx(0.0, abs=1e-6)
    soft = judge(image, cv2.GaussianBlur(image, (0, 0), 1.0))
    softer = judge(image, cv2.GaussianBlur(image, (0, 0), 3.0))
    assert 0 < soft < softer


def test_detail_ratio_is_one_for_the_photo_and_falls_with_blur():
    image = textured()
    mask = np.zeros(image.shape[:2], bool)
    mask[32:96, 40:100] = True
    assert detail_ratio(image, image, mask) == pytest.approx(1.0)
    blurred = np.where(mask[..., None], cv2.GaussianBlur(image, (0, 0), 3.0), image)
    assert detail_ratio(blurred, image, mask) < 0.3


def test_patchmatch_copies_texture_where_telea_smudges():
    image = textured(96, 96)
    mask = np.zeros(image.shape[:2], bool)
    mask[30:66, 30:66] = True
    engine = Engine()
    telea = engine.run(InpaintRequest(image, mask, "telea")).images[0]
    patchmatch = engine.run(InpaintRequest(image, mask, "patchmatch", seed=0)).images[0]
    again = engine.run(InpaintRequest(image, mask, "patchmatch", seed=0)).images[0]
    assert np.array_equal(patchmatch, again)
    assert np.array_equal(patchmatch[~mask], image[~mask])
    assert detail_ratio(patchmatch, image, mask) > 0.5 > detail_ratio(telea, image, mask)
