"""The texture stage (engine/texture.py): the hole rebuilt from the photo's own patches."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from engine import CancelToken, Engine, InpaintRequest, JobCancelled
from engine.errors import InvalidInputError
from engine.registry import get_spec, unavailable_reason
from engine.texture import refine_texture

PERIOD = 8


def stripes(h: int = 96, w: int = 96) -> np.ndarray:
    """Vertical bars of period PERIOD px (3 px dark, 5 px light), slightly tinted."""
    x = np.arange(w)
    row = np.where(x % PERIOD < 3, 40, 210).astype(np.uint8)
    grey = np.repeat(row[None, :], h, axis=0)
    return np.stack([grey, grey, (grey * 0.8).astype(np.uint8)], -1)


def hole(h: int = 96, w: int = 96, side: int = 28) -> np.ndarray:
    mask = np.zeros((h, w), bool)
    y0, x0 = (h - side) // 2, (w - side) // 2 + 3  # not aligned with the period
    mask[y0 : y0 + side, x0 : x0 + side] = True
    return mask


def smooth_fill(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """What a blurry model gives: Telea's fill (no stripes inside the hole)."""
    return cv2.inpaint(image, mask.astype(np.uint8), 5, cv2.INPAINT_TELEA)


def dominant_period(profile: np.ndarray) -> int:
    """The lag (2 px up to half the profile) at which the profile best matches itself."""
    p = profile - profile.mean()
    lags = range(2, len(p) // 2 + 1)
    return max(lags, key=lambda k: float(np.dot(p[:-k], p[k:]) / (len(p) - k)))


def test_reproduces_a_periodic_texture_inside_the_hole():
    image, mask = stripes(), hole()
    fill = smooth_fill(image, mask)
    out = refine_texture(image, mask, fill, seed=0)
    ys, xs = np.nonzero(mask)
    inner = out[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1, 0].astype(float)
    truth = image[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1, 0].astype(float)
    # The bars come back at their period, with their contrast, and mostly in phase.
    assert dominant_period(inner.mean(0)) == PERIOD
    assert inner.std() > 0.8 * truth.std()
    smudge = np.abs(fill[mask].astype(float) - image[mask]).mean()
    assert np.abs(out[mask].astype(float) - image[mask]).mean() < 0.5 * smudge


def test_known_pixels_untouched_and_deterministic_per_seed():
    rng = np.random.default_rng(3)
    image = cv2.GaussianBlur(rng.integers(0, 256, (80, 72, 3), dtype=np.uint8), (0, 0), 1.5)
    mask = hole(80, 72, 20)
    fill = smooth_fill(image, mask)
    a = refine_texture(image, mask, fill, seed=5)
    b = refine_texture(image, mask, fill, seed=5)
    assert np.array_equal(a, b)
    assert np.array_equal(a[~mask], image[~mask])


class _CancelAfter(CancelToken):
    """Asks to stop at the n-th check: proves the stage checks between its levels."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n, self.checks = n, 0

    def check(self) -> None:
        self.checks += 1
        if self.checks >= self.n:
            self.cancel()
        super().check()


def test_cancel_is_honoured_between_pyramid_levels():
    image, mask = stripes(256, 256), hole(256, 256, 60)
    fill = smooth_fill(image, mask)
    token = _CancelAfter(2)
    with pytest.raises(JobCancelled):
        refine_texture(image, mask, fill, seed=0, cancel=token)
    assert token.checks == 2  # the first level ran, the second was never started


HIFILL = get_spec("hifill")
needs_hifill = pytest.mark.skipif(
    unavailable_reason(HIFILL) is not None, reason=str(unavailable_reason(HIFILL))
)


@needs_hifill
def test_engine_texture_option_keeps_known_pixels_bit_identical():
    image, mask = stripes(160, 200), hole(160, 200, 40)
    result = Engine().run(InpaintRequest(image, mask, "hifill", texture=True, device="cpu"))
    out = result.images[0]
    assert result.texture
    assert np.array_equal(out[~mask], image[~mask])
    # The stripes come back inside the hole; HiFill alone leaves a softer patch.
    plain = Engine().run(InpaintRequest(image, mask, "hifill", device="cpu")).images[0]
    err = np.abs(out[mask].astype(float) - image[mask]).mean()
    assert err < np.abs(plain[mask].astype(float) - image[mask]).mean()


def test_texture_with_a_classical_model_is_refused():
    image, mask = stripes(64, 64), hole(64, 64, 16)
    with pytest.raises(InvalidInputError, match="learned models"):
        Engine().run(InpaintRequest(image, mask, "telea", texture=True))
