"""Tiny configs and synthetic photos for smoke tests (seconds on a CPU, any recipe)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from training.trainer import load_config


def synthetic_images(folder: Path, count: int = 10, size: int = 96, seed: int = 0) -> Path:
    """Write ``count`` PNGs (gradients, stripes, checkerboards, discs) into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    for i in range(count):
        c0, c1 = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
        kind = i % 3
        if kind == 0:
            t = (xx * rng.uniform(0.5, 1) + yy * rng.uniform(0, 0.5))[..., None]
        elif kind == 1:
            period = rng.uniform(6, 20)
            t = (0.5 + 0.5 * np.sin(2 * np.pi * (xx + yy) * size / period))[..., None]
        else:
            cell = int(rng.integers(6, 16))
            t = (((np.arange(size)[:, None] // cell + np.arange(size) // cell) % 2) * 1.0)[
                ..., None
            ].astype(np.float32)
        image = (c0 * (1 - t) + c1 * t) * 255
        cv2.circle(image, tuple(int(v) for v in rng.integers(10, size - 10, 2)), 9,
                   tuple(float(v) for v in rng.uniform(0, 255, 3)), -1)  # fmt: skip
        cv2.imwrite(str(folder / f"synthetic_{i:02d}.png"), image.astype(np.uint8)[:, :, ::-1])
    return folder


def tiny_config(model_id: str, data_root: Path, **train: object) -> dict:
    """The model's config shrunk to 4 levels, 8-16 channels, 64 px crops, batch 4, no backbone,
    fp32 (bit-reproducible), 1 thread; ``train`` overrides entries of its ``train`` section."""
    config = load_config(model_id)
    mc = config["model_config"]
    if "kernels" in mc:  # the PConv-family U-Nets
        mc.update(width=0.03125, kernels=[7, 5, 5, 3], channels=[64, 128, 256, 512])
    elif "z_channels" in mc:  # Pluralistic
        mc.update(channels=4, max_channels=16, z_channels=4, ranker_channels=4)
    else:  # DeepFill
        mc.update(channels=4)
    if "fusion_scales" in mc:
        mc["fusion_scales"] = 2
    config["data"].update(root=str(data_root), max_side=128, min_scale=0.5)
    config["train"].update(
        batch=4, crop=64, steps=20, lr=1e-3, bf16=False, channels_last=False, threads=1,
        log_every=5, checkpoint_minutes=60,
    )  # fmt: skip
    config["train"].update(train)
    for k in ("perceptual", "style_out", "style_comp"):
        config["loss_weights"][k] = 0.0
    config["evaluate"] = {"size": 64, "cases_per_bin": 1}
    return config
