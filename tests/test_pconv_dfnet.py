"""PConv and DFNet in the engine: the networks, export -> load round trip, tampered files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from engine.errors import WeightsError
from engine.models.dfnet import DFNet, DFNetConfig, DFNetModel
from engine.models.pconv import PConvConfig, PConvModel, PConvUNet
from engine.models.torch_base import hole_distance, two_scale_fill
from engine.registry import WEIGHTS_DIR_ENV, get_spec, verified_weights_path
from training.evaluate import evaluate, evaluation_cases, markdown_table, model_from_checkpoint
from training.export import export, train_stages, write_weights
from training.smoke import synthetic_images, tiny_config
from training.trainer import Trainer


def _count(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def test_full_width_pconv_builds_and_runs() -> None:
    net = PConvUNet(PConvConfig()).eval()
    assert 32.5e6 < _count(net) < 33.5e6  # the paper's network, ~33M parameters
    assert len(net.encoder) == 8 and [b.conv.kernel_size[0] for b in net.encoder] == [
        7, 5, 5, 3, 3, 3, 3, 3,
    ]  # fmt: skip
    image, mask = torch.rand(1, 3, 256, 256), torch.zeros(1, 1, 256, 256)
    mask[..., 60:140, 90:200] = 1
    with torch.no_grad():
        out = net(image, mask)
    assert out.shape == (1, 3, 256, 256) and torch.isfinite(out).all()


def test_full_width_dfnet_builds() -> None:
    net = DFNet(DFNetConfig())
    assert 30e6 < _count(net) < 36e6 and len(net.fusion) == 6


@pytest.mark.parametrize("cls", [PConvModel, DFNetModel])
def test_engine_models_fill_only_the_hole(cls) -> None:
    spec = get_spec("pconv" if cls is PConvModel else "dfnet")
    model = cls(spec)
    small = {"width": 0.0625, "kernels": (7, 5, 5, 3), "channels": (64, 128, 256, 512)}
    if cls is DFNetModel:
        small["fusion_scales"] = 3
    config = cls.config_class(**small)
    model.config = config
    torch.manual_seed(0)
    model.net = model.build(config).eval()
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (64, 48, 3), dtype=np.uint8)
    mask = np.zeros((64, 48), bool)
    mask[10:40, 5:30] = True
    out = model.predict(image, mask, seed=0)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert np.array_equal(out[~mask], image[~mask])
    other = image.copy()
    other[mask] = 255 - other[mask]  # hole content must not matter
    assert np.array_equal(model.predict(other, mask, seed=0), out)


def test_two_scale_fill_takes_the_border_from_the_2x_pass() -> None:
    image = torch.rand(1, 3, 64, 64)
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 10:50, 20:60] = 1  # 40x40: the centre is 20 px from the known pixels
    calls: list[tuple[int, float]] = []

    def fill(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        # Record what each pass sees of the hole, and answer by scale: 0.2 at 1x, 0.8 at 2x.
        calls.append((x.shape[-1], float((x * m).abs().max())))
        return torch.full_like(x, 0.2 if x.shape[-1] == 64 else 0.8)

    out = two_scale_fill(fill, image * (1 - mask), mask)
    assert calls == [(64, 0.0), (128, 0.0)]  # both passes see a zeroed hole
    assert torch.equal(out * (1 - mask), image * (1 - mask))
    dist = hole_distance(mask)
    assert float(dist[0, 0, 30, 40]) == pytest.approx(20, abs=1)
    hole = mask > 0

    def where(selected: torch.Tensor) -> torch.Tensor:
        return out[selected.expand_as(out)]

    assert torch.allclose(where(hole & (dist <= 3)), torch.tensor(0.8))  # the border: 2x pass
    assert torch.allclose(where(hole & (dist >= 6)), torch.tensor(0.2))  # the interior: 1x pass
    ramp = where(hole & (dist > 3) & (dist < 6))
    assert ramp.numel() and bool(((ramp > 0.2) & (ramp < 0.8)).all())


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny PConv trained 3 steps on synthetic photos, evaluated: (run dir, data dir)."""
    base = tmp_path_factory.mktemp("export")
    data = synthetic_images(base / "photos", count=12)
    run = base / "run"
    trainer = Trainer(tiny_config("pconv", data, steps=3), run)
    trainer.fit(progress=False)
    model = model_from_checkpoint("pconv", run / "checkpoints" / "last.pt")
    from engine.models.classical import ClassicalModel

    cases = evaluation_cases(data, size=64, cases=1)
    assert cases, "synthetic set has no validation image"
    results = evaluate({"pconv": model, "telea": ClassicalModel(get_spec("telea"))}, cases)
    info = {
        "step": 3, "checkpoint": str(run / "checkpoints" / "last.pt"), "size": 64,
        "cases_per_bin": 1, "images": 1, "results": results, "table": markdown_table(results),
        "beats_telea": {"(0.01, 0.1]": False},
    }  # fmt: skip
    (run / "eval.json").write_text(json.dumps(info))
    return run, data


def test_export_then_engine_load_round_trip(trained, tmp_path, monkeypatch) -> None:
    run, _ = trained
    entry = export("pconv", run / "eval.json", tmp_path)
    assert entry["size"] == (tmp_path / "pconv.safetensors").stat().st_size < 30 * 2**20
    assert entry["config"]["train"]["steps"] == 3 and entry["training"]["steps"] == 3
    assert entry["metrics"]["table"].startswith("| hole ratio |")
    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(tmp_path))
    spec = get_spec("pconv")
    model = PConvModel(spec)
    model.load(verified_weights_path(spec))
    reference = model_from_checkpoint("pconv", run / "checkpoints" / "last.pt")
    assert model.config == reference.config
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    mask = np.zeros((64, 64), bool)
    mask[20:50, 10:40] = True
    a, b = model.predict(image, mask, 0), reference.predict(image, mask, 0)
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 2  # float16 storage


def test_a_fine_tune_of_the_shipped_file_reproduces_from_its_base(trained, tmp_path) -> None:
    # Exporting a fine-tune replaces the file it started from: the manifest keeps that file's
    # recipe as the base, and reproduce trains the base first, then the fine-tune on it.
    run, data = trained
    shipped = tmp_path / "weights"
    base_entry = export("pconv", run / "eval.json", shipped)
    first = load_file(str(shipped / "pconv.safetensors"))
    config = tiny_config("pconv", data, steps=2, init_weights=str(shipped / "pconv.safetensors"))
    tuned = Trainer(config, tmp_path / "tune")
    tuned.fit(progress=False)
    info = json.loads((run / "eval.json").read_text())
    info.update(step=2, checkpoint=str(tmp_path / "tune" / "checkpoints" / "last.pt"))
    (tmp_path / "tune" / "eval.json").write_text(json.dumps(info))
    entry = export("pconv", tmp_path / "tune" / "eval.json", shipped)
    assert entry["config"]["base"] == base_entry["config"]
    assert entry["config"]["base"]["train"]["steps"] == 3
    assert entry["config"]["base_sha256"] == base_entry["sha256"]
    # Exported again (the init file is now the fine-tune itself): the same base.
    assert export("pconv", tmp_path / "tune" / "eval.json", shipped)["config"] == entry["config"]
    # Resumed after that, the run still names the file it started from.
    resumed = Trainer(config, tmp_path / "tune")
    assert resumed.resume() and resumed.config["train"]["init_sha256"] == base_entry["sha256"]
    # From scratch: the base stage gives the first file again, the fine-tune the same weights.
    assert train_stages(entry["config"], tmp_path / "again", data, None) == (2, 2)
    again = load_file(str(tmp_path / "again" / "base" / "weights.safetensors"))
    assert again.keys() == first.keys()
    assert all(torch.equal(again[k], first[k]) for k in first)
    redone = torch.load(tmp_path / "again" / "checkpoints" / "last.pt", weights_only=True)
    for k, v in tuned.generator.state_dict().items():
        assert torch.equal(redone["generator"][k], v), k
    # The reproduced run exports (as reproduce does) with the same base recipe.
    info.update(step=2, checkpoint=str(tmp_path / "again" / "checkpoints" / "last.pt"))
    (tmp_path / "again" / "eval.json").write_text(json.dumps(info))
    again_entry = export("pconv", tmp_path / "again" / "eval.json", tmp_path / "redone")
    assert again_entry["config"]["base"] == base_entry["config"]
    assert again_entry["config"]["base_sha256"] == base_entry["sha256"]
    # A start from weights whose recipe is not known cannot be exported.
    other = tmp_path / "other.safetensors"
    write_weights(other, tuned.generator.state_dict(), redone["model_config"], fp16=False)
    config = tiny_config("pconv", data, steps=1, init_weights=str(other))
    Trainer(config, tmp_path / "stray").fit(progress=False)
    info.update(step=1, checkpoint=str(tmp_path / "stray" / "checkpoints" / "last.pt"))
    (tmp_path / "stray" / "eval.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match="not the shipped pconv file"):
        export("pconv", tmp_path / "stray" / "eval.json", shipped)


def test_tampered_weights_are_refused(trained, tmp_path, monkeypatch) -> None:
    run, _ = trained
    export("pconv", run / "eval.json", tmp_path)
    path = tmp_path / "pconv.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(tmp_path))
    with pytest.raises(WeightsError, match="does not match the manifest"):
        verified_weights_path(get_spec("pconv"))


def test_export_keeps_other_manifest_entries(trained, tmp_path) -> None:
    run, _ = trained
    (tmp_path / "manifest.json").write_text(json.dumps({"hifill": {"file": "hifill.safetensors"}}))
    export("pconv", run / "eval.json", tmp_path, note="first run")
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert set(manifest) == {"hifill", "pconv"} and manifest["pconv"]["notes"] == "first run"
    export("pconv", run / "eval.json", tmp_path)  # a new file does not inherit the old notes
    assert "notes" not in json.loads((tmp_path / "manifest.json").read_text())["pconv"]


def test_reproduce_chain_with_a_tiny_recipe(tmp_path, monkeypatch) -> None:
    """reproduce = (fetch skipped: data present) + train + evaluate + export, from the manifest
    (with a weight average, as HiFill's recipe has)."""
    from training.export import reproduce
    from training.fetch import write_manifest

    data = tmp_path / "data"
    synthetic_images(data / "images" / "synthetic", count=12, size=128)
    write_manifest(data)
    weights = tmp_path / "weights"
    weights.mkdir()
    config = tiny_config("dfnet", data, steps=2, average={"start": 1, "every": 1})
    (weights / "manifest.json").write_text(json.dumps({"dfnet": {"config": config}}))
    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(weights))
    monkeypatch.chdir(tmp_path)
    assert reproduce("dfnet", data, str(tmp_path / "run"), "cpu") == 0
    entry = json.loads((weights / "manifest.json").read_text())["dfnet"]
    assert entry["training"]["steps"] == 2 and entry["config"]["model_config"]["width"] == 0.03125
    assert entry["training"]["average"]["text"] == "mean of the weights at 2 steps from 1 to 2"
    model = DFNetModel(get_spec("dfnet"))
    model.load(verified_weights_path(get_spec("dfnet")))
    table = (tmp_path / "run" / "eval.md").read_text()
    # Six bins in the metrics table and six in the border / interior split.
    # Three tables of the validation split (pixels, deep / detail, border / interior).
    assert table.count("| (0.") == 18 and "dfnet border / interior" in table
    assert "dfnet deep / detail" in table and "patchmatch deep / detail" in table
    assert table.startswith("# Evaluation of dfnet (step-2, mean of the weights at 2 steps")


def test_an_interrupted_reproduce_exports_nothing(tmp_path, monkeypatch) -> None:
    from training import trainer as trainer_module
    from training.export import reproduce
    from training.fetch import write_manifest

    data = tmp_path / "data"
    synthetic_images(data / "images" / "synthetic", count=12, size=128)
    write_manifest(data)
    weights = tmp_path / "weights"
    weights.mkdir()
    manifest = json.dumps({"dfnet": {"config": tiny_config("dfnet", data, steps=4)}})
    (weights / "manifest.json").write_text(manifest)
    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(weights))
    monkeypatch.chdir(tmp_path)
    fit = trainer_module.Trainer.fit

    def stopped_after_two(self, steps=None, max_minutes=None, progress=True):  # as on SIGTERM
        return fit(self, 2, max_minutes, progress)

    monkeypatch.setattr(trainer_module.Trainer, "fit", stopped_after_two)
    assert reproduce("dfnet", data, str(tmp_path / "run"), "cpu") == 1
    assert not (weights / "dfnet.safetensors").exists()
    assert (weights / "manifest.json").read_text() == manifest
    assert (tmp_path / "run" / "checkpoints" / "last.pt").is_file()  # resumable


def test_a_learned_default_model_meets_the_quality_bar() -> None:
    from engine.registry import default_model_id, manifest

    spec = get_spec(default_model_id())
    if spec.needs_weights:  # the classical fallback needs no evaluation
        assert manifest()[spec.id]["metrics"]["meets_quality_bar"], spec.id
