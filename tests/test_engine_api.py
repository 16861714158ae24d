"""The engine's public API: request validation, registry and weights, strategies, devices."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import numpy as np
import pytest

from engine import (
    DeviceError,
    Engine,
    InpaintRequest,
    InvalidInputError,
    MaskMismatchError,
    OutOfMemoryError,
    UnknownModelError,
    WeightsError,
    default_model_id,
    get_spec,
    list_models,
    unavailable_reason,
)
from engine.device import resolve_device
from engine.highres import choose_strategy
from engine.highres.common import Box
from engine.highres.crop import _CrossFade, hole_boxes
from engine.models import catalog
from engine.models.base import InpaintModel
from engine.registry import WEIGHTS_DIR_ENV, ModelSpec, verified_weights_path
from engine.synthetic import hole_mask, photo_like


class MeanFill(InpaintModel):
    """Test double: fills the hole with the mean colour of the known pixels it is shown."""

    def predict(self, image: np.ndarray, mask: np.ndarray, seed: int) -> np.ndarray:
        out = image.copy()
        out[mask] = np.round(image[~mask].mean(axis=0)).astype(np.uint8)
        return out


class Exhausting(InpaintModel):
    """Test double: runs out of memory the way torch does on a GPU."""

    def predict(self, image: np.ndarray, mask: np.ndarray, seed: int) -> np.ndarray:
        raise RuntimeError("CUDA out of memory. Tried to allocate 20.00 GiB")


FAKE = ModelSpec(
    id="fake",
    label="Fake net",
    description="test double with a weights file",
    entry=f"{__name__}:MeanFill",
    native_size=64,
    needs_weights=True,
    weights_file="fake.safetensors",
)


@pytest.fixture
def register(monkeypatch):
    """Add specs to the registry for one test."""

    def add(*specs: ModelSpec) -> None:
        monkeypatch.setattr(catalog, "SPECS", (*catalog.SPECS, *specs))

    return add


@pytest.fixture
def weights_dir(tmp_path, monkeypatch):
    folder = tmp_path / "weights"
    folder.mkdir()
    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(folder))
    return folder


def install(folder, spec: ModelSpec, data: bytes = b"not really a network") -> None:
    (folder / spec.weights_file).write_bytes(data)
    entry = {"file": spec.weights_file, "sha256": hashlib.sha256(data).hexdigest()}
    (folder / "manifest.json").write_text(json.dumps({spec.id: entry}))


def ramp(h: int, w: int) -> np.ndarray:
    """RGB uint8 with red rising left to right, green top to bottom."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // (w - 1), y * 255 // (h - 1), np.full_like(x, 90)], -1).astype(
        np.uint8
    )


# ------------------------------------------------------------------ requests


def test_mask_of_wrong_size_names_both_sizes():
    with pytest.raises(MaskMismatchError, match=r"mask is 40x30 but the image is 60x20"):
        InpaintRequest(np.zeros((20, 60, 3), np.uint8), np.zeros((30, 40), bool), "telea")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"device": "tpu"}, "Unknown device 'tpu'"),
        ({"samples": 0}, "at least 1"),
        ({"image": np.zeros((8, 8, 3), np.float32)}, "uint8"),
        ({"image": np.zeros((8, 8, 4), np.uint8)}, r"RGB \(H, W, 3\)"),
        ({"mask": np.zeros((8, 8, 1), bool)}, "2-D"),
    ],
)
def test_malformed_requests(changes, message):
    args = {"image": np.zeros((8, 8, 3), np.uint8), "mask": np.zeros((8, 8), bool)}
    args.update(changes)
    with pytest.raises(InvalidInputError, match=message):
        InpaintRequest(model_id="telea", **args)


def test_request_freezes_copies_and_makes_mask_bool():
    image = ramp(8, 8)
    mask = np.zeros((8, 8), np.uint8)
    mask[2, 3] = 255
    request = InpaintRequest(image, mask, "telea")
    assert request.mask.dtype == np.bool_ and request.mask.sum() == 1
    assert not request.image.flags.writeable and not request.mask.flags.writeable
    assert image.flags.writeable  # the caller's arrays are untouched
    assert InpaintRequest(image, mask, "telea").job_id != request.job_id


def test_a_read_only_view_of_a_larger_photo_fills_like_its_copy():
    # A caller may hand over a frozen crop of a bigger array (not contiguous): the request
    # keeps a contiguous copy, so HiFill's `cra` at 2K fills it exactly like the copy.
    big, holes = photo_like(1200, 2100), hole_mask(1200, 2100, seed=3)
    image, mask = big[50:1130, 100:2020], holes[50:1130, 100:2020]
    image.flags.writeable = mask.flags.writeable = False
    request = InpaintRequest(image, mask, "hifill")
    assert request.image.flags.c_contiguous and request.mask.flags.c_contiguous
    engine = Engine()
    result = engine.run(request)
    copy = engine.run(InpaintRequest(image.copy(), mask.copy(), "hifill"))
    assert result.strategy == "cra" and np.array_equal(result.images[0], copy.images[0])


# ------------------------------------------------------------------ registry and weights


def test_unknown_model_lists_the_known_ids():
    with pytest.raises(UnknownModelError) as info:
        get_spec("lama")
    message = str(info.value)
    assert "'lama'" in message
    for spec in list_models():
        assert spec.id in message


def test_classical_models_are_always_available():
    for model_id in ("telea", "navier-stokes"):
        assert unavailable_reason(get_spec(model_id)) is None


def test_missing_weights_make_a_model_unavailable(register, weights_dir):
    register(FAKE)
    reason = unavailable_reason(get_spec("fake"))
    assert reason is not None and "fake.safetensors" in reason and "not installed" in reason
    with pytest.raises(WeightsError, match=r"fake\.safetensors"):
        Engine().run(InpaintRequest(ramp(16, 16), np.ones((16, 16), bool), "fake"))


def test_weights_not_in_manifest_are_refused(register, weights_dir):
    register(FAKE)
    (weights_dir / "fake.safetensors").write_bytes(b"unlisted")
    assert "not listed" in unavailable_reason(FAKE)
    with pytest.raises(WeightsError, match="not listed"):
        verified_weights_path(FAKE)


def test_verified_weights_load_and_tampered_ones_are_refused(register, weights_dir):
    register(FAKE)
    install(weights_dir, FAKE)
    assert unavailable_reason(FAKE) is None
    assert verified_weights_path(FAKE) == weights_dir / "fake.safetensors"
    mask = np.zeros((16, 16), bool)
    mask[4:8, 4:8] = True
    assert Engine().run(InpaintRequest(ramp(16, 16), mask, "fake")).model_id == "fake"

    with open(weights_dir / "fake.safetensors", "ab") as f:
        f.write(b"!")
    assert unavailable_reason(FAKE) is None  # cheap check: the file is there and listed
    with pytest.raises(WeightsError, match="does not match the manifest"):
        verified_weights_path(FAKE)
    with pytest.raises(WeightsError, match="does not match the manifest"):
        Engine().run(InpaintRequest(ramp(16, 16), mask, "fake"))


def test_default_model_falls_back_to_one_that_can_run(register, weights_dir, monkeypatch):
    # The fake model is the only default; in this weights folder it has no weights.
    monkeypatch.setattr(catalog, "SPECS", tuple(replace(s, default=False) for s in catalog.SPECS))
    register(replace(FAKE, default=True))
    assert list_models()[0].id == "fake"
    fallback = default_model_id()
    assert fallback != "fake" and unavailable_reason(get_spec(fallback)) is None
    install(weights_dir, FAKE)
    assert default_model_id() == "fake"


# ------------------------------------------------------------------ running


def test_empty_mask_returns_the_input():
    image = ramp(32, 48)
    result = Engine().run(InpaintRequest(image, np.zeros((32, 48), bool), "telea", samples=2))
    assert len(result.images) == 2
    for out in result.images:
        np.testing.assert_array_equal(out, image)


def test_crop_with_two_far_apart_holes():
    truth = ramp(256, 256)
    mask = np.zeros((256, 256), bool)
    mask[20:40, 24:44] = True
    mask[200:230, 190:220] = True
    image = truth.copy()
    image[mask] = 0
    assert len(hole_boxes(mask, get_spec("telea"))) == 2  # filled as two separate crops
    out = Engine().run(InpaintRequest(image, mask, "telea", strategy="crop")).images[0]
    np.testing.assert_array_equal(out[~mask], image[~mask])
    for hole in (np.s_[20:40, 24:44], np.s_[200:230, 190:220]):
        filled = out[hole].reshape(-1, 3).astype(float).mean(axis=0)
        np.testing.assert_allclose(filled, truth[hole].reshape(-1, 3).mean(axis=0), atol=8)


def test_crop_with_overlapping_crops_cross_fades(register):
    spec = replace(FAKE, needs_weights=False, weights_file=None)
    register(spec)
    image = ramp(64, 256)
    mask = np.zeros((64, 256), bool)
    mask[20:40, 40:50] = True  # its crop (x 13-77) and the next one (x 40-104) overlap
    mask[28:32, 70:74] = True
    boxes = hole_boxes(mask, spec)
    assert len(boxes) == 2 and boxes[0].overlaps(boxes[1])  # too wide to merge into one

    out = Engine().run(InpaintRequest(image, mask, "fake", strategy="crop")).images[0]

    np.testing.assert_array_equal(out[~mask], image[~mask])
    fills = []
    for box in boxes:
        crop, hole = image[box.slices], mask[box.slices]
        fills.append(np.round(crop[~hole].mean(axis=0)))
    low, high = np.minimum(*fills), np.maximum(*fills)
    assert np.all(out[mask] >= low - 1) and np.all(out[mask] <= high + 1)
    # Across the first hole the second crop's share grows: a blend, not a hard seam.
    red = out[30, 40:50, 0].astype(int)
    assert np.all(np.diff(red) >= 0) and red[-1] > red[0]


def test_crop_paste_keeps_every_crops_fill_where_crop_groups_share_a_bounding_box():
    # Crops A and B overlap and are blended as one group whose bounding box also covers the
    # corner where crop C (its own group, pasted first) filled a hole: C's fill must stay.
    image = np.full((20, 20, 3), 100, np.uint8)
    mask = np.zeros((20, 20), bool)
    mask[2:5, 15:18] = True  # C's hole
    mask[6:10, 6:10] = True  # under A, partly under B too
    a, b, c = Box(0, 10, 0, 10), Box(8, 20, 8, 20), Box(0, 6, 14, 20)
    paste = _CrossFade((20, 20))
    for box, level in ((c, 200), (a, 50), (b, 60)):
        paste.add(box, np.full((box.height, box.width, 3), level, np.uint8))
    out = image.copy()
    paste.paste(out, mask)
    assert np.all(out[2:5, 15:18] == 200)
    assert np.all((out[6:10, 6:10] >= 50) & (out[6:10, 6:10] <= 60))
    assert np.array_equal(out[~mask], image[~mask])


def test_unknown_strategy_lists_the_choices():
    image, mask = ramp(16, 16), np.ones((16, 16), bool)
    with pytest.raises(InvalidInputError, match=r"'tiles'.*auto, original, resize, crop"):
        Engine().run(InpaintRequest(image, mask, "telea", strategy="tiles"))


def test_running_out_of_memory_becomes_a_readable_error(register):
    register(replace(FAKE, id="hungry", entry=f"{__name__}:Exhausting", needs_weights=False))
    mask = np.ones((16, 24), bool)
    mask[0, 0] = False  # a whole-photo mask is refused before the model runs
    request = InpaintRequest(ramp(16, 24), mask, "hungry")
    with pytest.raises(OutOfMemoryError, match=r"24x16 image with hungry; nothing was changed"):
        Engine().run(request)


def test_engine_keeps_a_bounded_number_of_models():
    engine = Engine(max_models=1)
    engine.load("telea", "cpu")
    assert engine.is_loaded("telea", "cpu")
    engine.load("navier-stokes", "cpu")
    assert engine.is_loaded("navier-stokes", "cpu")
    assert not engine.is_loaded("telea", "cpu")


# ------------------------------------------------------------------ strategies and devices


@pytest.mark.parametrize(
    ("spec", "shape", "expected"),
    [
        (catalog.TELEA, (64, 64, 3), "crop"),
        (catalog.TELEA, (4320, 7680, 3), "crop"),
        (replace(FAKE, native_size=256), (256, 200, 3), "original"),
        (replace(FAKE, native_size=256), (257, 200, 3), "crop"),
        (replace(FAKE, native_size=256, strategies=("cra",)), (4320, 7680, 3), "cra"),
        (replace(FAKE, native_size=256, strategies=("cra",)), (100, 200, 3), "original"),
    ],
)
def test_choose_strategy(spec, shape, expected):
    assert choose_strategy(spec, shape) == expected


def _torch_devices() -> tuple[bool, bool]:
    import torch

    mps = bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
    return torch.cuda.is_available(), mps


def test_auto_device_prefers_cuda_then_mps_then_cpu():
    cuda, mps = _torch_devices()
    assert resolve_device("auto") == ("cuda" if cuda else "mps" if mps else "cpu")
    assert resolve_device("cpu") == "cpu"


@pytest.mark.skipif(_torch_devices()[0], reason="this machine has a CUDA GPU")
def test_missing_cuda_is_an_error_not_a_silent_fallback(register):
    with pytest.raises(DeviceError, match="CUDA was requested"):
        resolve_device("cuda")
    register(replace(FAKE, id="gpu-net", needs_weights=False, uses_torch=True))
    request = InpaintRequest(ramp(16, 16), np.ones((16, 16), bool), "gpu-net", device="cuda")
    with pytest.raises(DeviceError):
        Engine().run(request)


def test_unknown_device_name():
    with pytest.raises(DeviceError, match="Unknown device 'tpu'"):
        resolve_device("tpu")


@pytest.mark.parametrize(
    "fields",
    [{"seed": 1.5}, {"seed": "7"}, {"samples": 2.5}, {"seed": True}, {"seed": 2**32}, {"seed": -1}],
)
def test_bad_seed_and_samples_fields_raise_the_engines_own_error(fields):
    mask = np.zeros((16, 16), bool)
    mask[4:8, 4:8] = True
    with pytest.raises(InvalidInputError):
        Engine().run(InpaintRequest(ramp(16, 16), mask, "telea", **fields))
