"""The contract every registered model must honour.

Parametrized over :func:`engine.list_models`, so a new model is covered as
soon as it is registered; a model that cannot run here (e.g. its weights are
not installed) is skipped with the registry's reason.
"""

from __future__ import annotations

import numpy as np
import pytest

from engine import (
    CancelToken,
    Engine,
    InpaintRequest,
    JobCancelled,
    ModelSpec,
    list_models,
    unavailable_reason,
)
from engine.highres import choose_strategy


def _model_params() -> list:
    params = []
    for spec in list_models():
        reason = unavailable_reason(spec)
        marks = [pytest.mark.skip(reason=f"{spec.id}: {reason}")] if reason else []
        params.append(pytest.param(spec, id=spec.id, marks=marks))
    return params


MODELS = _model_params()
# A mean colour this close to the true one counts as a plausible fill of a
# smooth gradient; an unfilled (zeroed) hole is off by more than 100.
MEAN_TOLERANCE = 32


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine()


def gradient(h: int, w: int) -> np.ndarray:
    """A smooth RGB uint8 gradient (each channel a different plane)."""
    y, x = np.meshgrid(np.linspace(0.0, 1.0, h), np.linspace(0.0, 1.0, w), indexing="ij")
    channels = (40 + 170 * x, 50 + 150 * y, 200 - 80 * x - 60 * y)
    return np.round(np.stack(channels, -1)).astype(np.uint8)


def box_mask(h: int, w: int, top: float, left: float, size: float) -> np.ndarray:
    mask = np.zeros((h, w), bool)
    y0, x0 = int(top * h), int(left * w)
    mask[y0 : y0 + max(1, int(size * h)), x0 : x0 + max(1, int(size * w))] = True
    return mask


def holed(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``image`` with its hole zeroed: what a model must fill without seeing."""
    out = image.copy()
    out[mask] = 0
    return out


def run(engine: Engine, spec: ModelSpec, image, mask, **kwargs):
    request = InpaintRequest(image, mask, spec.id, device="cpu", **kwargs)
    return engine.run(request)


def assert_contract(result_image: np.ndarray, image: np.ndarray, mask: np.ndarray, truth):
    assert result_image.dtype == np.uint8
    assert result_image.shape == image.shape
    np.testing.assert_array_equal(result_image[~mask], image[~mask])  # bit-identical
    filled = result_image[mask].astype(float).mean(axis=0)
    expected = truth[mask].astype(float).mean(axis=0)
    np.testing.assert_allclose(filled, expected, atol=MEAN_TOLERANCE)


@pytest.mark.parametrize("spec", MODELS)
def test_fills_hole_and_keeps_known_pixels(engine, spec):
    truth = gradient(128, 160)
    mask = box_mask(128, 160, 0.35, 0.4, 0.25)
    image = holed(truth, mask)
    result = run(engine, spec, image, mask)
    assert result.model_id == spec.id
    assert len(result.images) == 1 and result.seeds == (0,)
    assert not result.images[0].flags.writeable
    assert_contract(result.images[0], image, mask, truth)
    assert set(result.timings) == {"load", "inpaint", "total"}


@pytest.mark.parametrize("spec", MODELS)
def test_same_seed_same_output(engine, spec):
    truth = gradient(96, 128)
    mask = box_mask(96, 128, 0.3, 0.3, 0.3)
    image = holed(truth, mask)
    first = run(engine, spec, image, mask, seed=7).images[0]
    second = run(engine, spec, image, mask, seed=7).images[0]
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("spec", MODELS)
def test_samples_stream_in_order(engine, spec):
    truth = gradient(96, 128)
    mask = box_mask(96, 128, 0.3, 0.3, 0.3)
    image = holed(truth, mask)
    seen: list[tuple[int, np.ndarray]] = []
    ticks = []
    request = InpaintRequest(image, mask, spec.id, samples=3, seed=5, device="cpu")
    result = engine.run(
        request, on_progress=ticks.append, on_sample=lambda i, a: seen.append((i, a))
    )
    assert [i for i, _ in seen] == [0, 1, 2]
    assert result.seeds == (5, 6, 7)
    for (_, streamed), final in zip(seen, result.images, strict=True):
        assert streamed is final
        assert_contract(final, image, mask, truth)
    fractions = [t.fraction for t in ticks]
    assert fractions == sorted(fractions) and fractions[0] >= 0 and fractions[-1] == 1
    assert {t.job_id for t in ticks} == {request.job_id}
    if spec.multi_sample:
        assert not np.array_equal(result.images[0], result.images[1])


@pytest.mark.parametrize("spec", MODELS)
def test_cancelled_before_start(engine, spec):
    truth = gradient(64, 64)
    mask = box_mask(64, 64, 0.25, 0.25, 0.5)
    cancel = CancelToken()
    cancel.cancel()
    samples = []
    request = InpaintRequest(holed(truth, mask), mask, spec.id, samples=2, device="cpu")
    with pytest.raises(JobCancelled):
        engine.run(request, cancel=cancel, on_sample=lambda i, a: samples.append(i))
    assert samples == []


@pytest.mark.parametrize("spec", MODELS)
def test_cancelled_between_samples(engine, spec):
    truth = gradient(64, 64)
    mask = box_mask(64, 64, 0.25, 0.25, 0.5)
    cancel = CancelToken()
    samples = []

    def on_sample(index: int, image: np.ndarray) -> None:
        samples.append(index)
        cancel.cancel()

    request = InpaintRequest(holed(truth, mask), mask, spec.id, samples=3, device="cpu")
    with pytest.raises(JobCancelled):
        engine.run(request, cancel=cancel, on_sample=on_sample)
    assert samples == [0]


def _strategy_params() -> list:
    params = []
    for model in MODELS:
        spec = model.values[0]
        for strategy in ("auto", "original", "resize", "crop", *spec.strategies):
            params.append(
                pytest.param(spec, strategy, id=f"{spec.id}-{strategy}", marks=model.marks)
            )
    return params


@pytest.mark.parametrize(("spec", "strategy"), _strategy_params())
def test_every_strategy_runs(engine, spec, strategy):
    # Larger than 256 px would slow learned models down; 144x256 still makes
    # ``resize`` and ``crop`` shrink the view for models with a small native size.
    truth = gradient(144, 256)
    mask = box_mask(144, 256, 0.2, 0.15, 0.2) | box_mask(144, 256, 0.6, 0.7, 0.15)
    image = holed(truth, mask)
    result = run(engine, spec, image, mask, strategy=strategy)
    expected = choose_strategy(spec, image.shape) if strategy == "auto" else strategy
    assert result.strategy == expected
    assert_contract(result.images[0], image, mask, truth)


@pytest.mark.parametrize("spec", MODELS)
@pytest.mark.parametrize("strategy", ["auto", "original", "crop"])
def test_odd_sizes(engine, spec, strategy):
    truth = gradient(67, 131)
    mask = box_mask(67, 131, 0.3, 0.2, 0.3)
    mask[-3:, -5:] = True  # a hole in the corner, where padding happens
    image = holed(truth, mask)
    result = run(engine, spec, image, mask, strategy=strategy)
    assert_contract(result.images[0], image, mask, truth)
