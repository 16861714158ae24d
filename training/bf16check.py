"""Is bf16 autocast safe for a config? Train the same steps in fp32 and bf16 and compare.

Both runs start from the same weights and see the same batches; the report gives the mean
loss of each and their relative difference over the last half of the steps (where the
trajectories have had time to drift apart), plus the seconds per step.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from training.data import CropSampler
from training.trainer import Trainer, load_config


def bf16_check(model_id: str, steps: int = 20, config_path: Path | None = None) -> str:
    """Run ``steps`` steps with and without bf16; returns a short markdown report."""
    results = {}
    for mode in (False, True):
        config = load_config(model_id, config_path)
        config["train"]["bf16"] = mode
        with tempfile.TemporaryDirectory() as tmp:
            trainer = Trainer(config, Path(tmp))
            sampler = CropSampler.from_config(
                config["data"], int(config["train"]["crop"]), config.get("masks", {})
            )
            losses, times = [], []
            for _ in range(steps):
                t0 = time.perf_counter()
                losses.append(trainer.train_step(sampler)["total"])
                times.append(time.perf_counter() - t0)
        results[mode] = (np.array(losses), float(np.median(times[1:])))
    fp32, bf16 = results[False][0], results[True][0]
    half = slice(steps // 2, None)
    rel = abs(bf16[half].mean() - fp32[half].mean()) / fp32[half].mean()
    step_rel = float(np.median(np.abs(bf16 - fp32) / fp32))
    return (
        f"| {model_id} | fp32 | bf16 |\n|---|---|---|\n"
        f"| mean loss, steps {steps // 2}-{steps} | {fp32[half].mean():.5f} | "
        f"{bf16[half].mean():.5f} |\n"
        f"| s/step (median) | {results[False][1]:.3f} | {results[True][1]:.3f} |\n\n"
        f"relative difference of the means: {rel:.2%}; median per-step difference: {step_rel:.2%}"
    )
