"""The prepared GPU run (scripts/gpu_adversarial.sh) works before a GPU is lent: its configs
train from the shipped weights, its data travels packed, its results come back small."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from training.data import list_split, read_rgb
from training.fetch import pack_data
from training.smoke import synthetic_images
from training.trainer import load_config

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ("hifill-gpu", "deepfill-gpu", "pluralistic-gpu")
sys.path.insert(0, str(ROOT / "scripts"))
from gpu_collect import collect  # noqa: E402


@pytest.fixture(scope="module")
def packed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = synthetic_images(tmp_path_factory.mktemp("src"), count=12, size=160)
    dest = tmp_path_factory.mktemp("packed")
    pack_data(src, dest, ("train",), max_side=128)
    return dest


def test_packed_data_keeps_the_train_split_downscaled(packed: Path, tmp_path: Path) -> None:
    files = list_split(packed, "train")
    assert len(files) >= 8 and all(f.suffix == ".jpg" for f in files)
    assert list_split(packed, "val") == []  # only the asked splits travel
    assert max(read_rgb(files[0]).shape[:2]) == 128


def test_gpu_script_trains_every_config_and_collects_the_runs(packed: Path, tmp_path: Path) -> None:
    configs = tmp_path / "configs"
    configs.mkdir()
    for name in CONFIGS:
        config = load_config(path=ROOT / "training" / "configs" / f"{name}.json")
        assert config["train"]["init_weights"].startswith("resources/weights/")
        # The shipped networks at tiny crops; prefetch on, as it will be on the GPU.
        config["train"].update(batch=2, crop=64, bf16=False, threads=1, prefetch=True)
        (configs / f"{name}.json").write_text(json.dumps(config))
    out = tmp_path / "out"
    env = dict(
        os.environ, PYTHON=sys.executable, RUNS=str(tmp_path / "runs"), CONFIG_DIR=str(configs),
        TRAIN_ARGS="--steps 2 --device cpu --threads 1",
    )  # fmt: skip
    done = subprocess.run(
        ["bash", "scripts/gpu_adversarial.sh", str(packed), str(out), "5"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "torch" in (out / "machine.txt").read_text()
    for name in CONFIGS:
        ckpt = torch.load(out / name / "checkpoints" / "last.pt", weights_only=True)
        assert ckpt["step"] == 2 and ckpt["critic"] is not None, name
        assert json.loads((out / name / "config.json").read_text())["data"]["root"] == str(packed)
        assert (out / name / "log.csv").is_file()


def test_collect_drops_optimiser_states_only_when_too_big(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    big = {"step": 7, "elapsed": 1.0, "generator": {"w": torch.zeros(1000)},
           "g_opt": {"m": torch.zeros(300_000)}, "c_opt": None}  # fmt: skip
    torch.save(big, run / "checkpoints" / "last.pt")
    collect(run, tmp_path / "roomy", max_mib=5)
    assert torch.load(tmp_path / "roomy/checkpoints/last.pt", weights_only=True)["g_opt"]
    collect(run, tmp_path / "tight", max_mib=0.5)
    slim = torch.load(tmp_path / "tight/checkpoints/last.pt", weights_only=True)
    assert slim["g_opt"] is None and slim["step"] == 7 and "slim" in slim
    with pytest.raises(ValueError, match="even without"):
        collect(run, tmp_path / "none", max_mib=0.001)
