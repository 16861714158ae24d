"""The model-agnostic trainer: one loop for every recipe.

Run directory layout (``runs/<name>/``)::

    config.json            the exact config of the run (also inside every checkpoint)
    checkpoints/last.pt    generator, critic, optimisers, RNG states, step, elapsed time, and
                           the weight average of ``train.average`` (see ``Trainer._update_average``)
    log.csv                one row per logging interval
    loss.png               loss curves drawn from log.csv

Distributed: under ``torchrun`` (``WORLD_SIZE`` > 1) the generator and critic are wrapped in
DDP (gloo on the CPU, nccl on GPUs); each rank draws its own crops (seed + rank), rank 0
writes logs and checkpoints. The batch size in the config is per process.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from engine.registry import sha256_file
from training import logs
from training.data import Batch, BatchPrefetcher, CropSampler
from training.losses import feature_backbone
from training.recipes import LossContext, Recipe, get_recipe
from training.schedule import crop_at, ever_weighted, loss_weights_at, lr_at, model_config_at

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


def load_config(model_id: str | None = None, path: Path | None = None) -> dict:
    """A training config: ``path`` if given, else ``training/configs/<model_id>.json``."""
    path = Path(path) if path else CONFIG_DIR / f"{model_id}.json"
    return json.loads(Path(path).read_text())


def bf16_supported(device: torch.device) -> bool:
    """Whether bf16 autocast runs natively (AMX/AVX512-BF16 CPUs, Ampere+ GPUs)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return bool(
        torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    )


def use_bf16(setting: object, device: torch.device) -> bool:
    if setting == "auto":
        return bf16_supported(device)
    return bool(setting)


def unwrap(net: nn.Module) -> nn.Module:
    return net.module if isinstance(net, nn.parallel.DistributedDataParallel) else net


class Trainer:
    """Trains the model of ``config["model"]`` in ``run_dir``.

    Args:
        config: the full training config (see ``training/configs/pconv.json``).
        run_dir: where checkpoints and logs go.
        data: image folder; overrides ``config["data"]["root"]``.
        device: torch device string (default: cuda if available, else cpu).
    """

    def __init__(
        self, config: dict, run_dir: Path, data: Path | None = None, device: str | None = None
    ) -> None:
        self.config = json.loads(json.dumps(config))  # private deep copy
        if data is not None:
            self.config["data"]["root"] = str(data)
        self.run_dir = Path(run_dir)
        tcfg = self.config["train"]
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        if self.world > 1 and not dist.is_initialized():
            backend = "nccl" if torch.cuda.is_available() and device != "cpu" else "gloo"
            dist.init_process_group(backend)
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device == "cuda" and self.world > 1:
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        self.device = torch.device(device)
        torch.set_num_threads(int(tcfg.get("threads", 1)))
        self.bf16 = use_bf16(tcfg.get("bf16", "auto"), self.device)
        self.channels_last = bool(tcfg.get("channels_last", True))

        seed = int(tcfg["seed"])
        torch.manual_seed(seed)  # same initial weights on every rank
        self.recipe: Recipe = get_recipe(self.config["model"])
        self.model_config = self.recipe.model_config(model_config_at(0, self.config))
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        self.generator = self.recipe.build_generator(self.model_config)
        if tcfg.get("init_weights"):
            # Fine-tuning: start from an exported weights file (resume still wins).
            from safetensors.torch import load_file

            state = load_file(str(tcfg["init_weights"]), device="cpu")
            # Which file it was, for export (training.export.base_recipe), whatever it holds later.
            tcfg.setdefault("init_sha256", sha256_file(Path(tcfg["init_weights"])))
            self.generator.load_state_dict({k: v.float() for k, v in state.items()})
        self.generator = self.generator.to(self.device, memory_format=fmt)
        self.critic = (
            self.recipe.build_critic(self.model_config, self.config)
            if self.recipe.uses_critic(self.config)
            else None
        )
        if self.critic is not None and tcfg.get("init_weights"):
            self.recipe.init_critic(self.critic, state)
        betas = tuple(tcfg.get("betas", (0.9, 0.999)))
        self.g_opt = torch.optim.Adam(self.generator.parameters(), tcfg["lr"], betas=betas)
        self.c_opt = None
        if self.critic is not None:
            self.critic = self.critic.to(self.device, memory_format=fmt)
            c_lr = tcfg.get("critic_lr", tcfg["lr"])
            self.c_opt = torch.optim.Adam(self.critic.parameters(), c_lr, betas=betas)
        needs_backbone = any(ever_weighted(self.config, k) for k in self.recipe.backbone_terms)
        backbone = feature_backbone(self.config.get("perceptual", {})) if needs_backbone else None
        if backbone is not None:
            backbone = backbone.to(self.device, memory_format=fmt)
        self.ctx = LossContext(
            backbone=backbone, settings=self.config, loss_weights=loss_weights_at(0, self.config)
        )
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.generator = nn.parallel.DistributedDataParallel(self.generator, device_ids=ids)
            if self.critic is not None:
                self.critic = nn.parallel.DistributedDataParallel(self.critic, device_ids=ids)

        self.rng = np.random.default_rng(seed + 1000 * self.rank)
        self.step = 0
        self.elapsed = 0.0  # training seconds over all sessions of this run
        # The running mean of ``train.average``: {"count", "first", "last", "generator"}.
        self.average: dict | None = None
        self._stop = False
        self._prefetcher: BatchPrefetcher | None = None

    # -- checkpoints -------------------------------------------------------------------------

    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / "checkpoints" / "last.pt"

    def state(self) -> dict:
        return {
            "step": self.step,
            "elapsed": self.elapsed,
            "config": self.config,
            "model_config": asdict(self.model_config),
            "generator": unwrap(self.generator).state_dict(),
            "average": self.average,
            "critic": unwrap(self.critic).state_dict() if self.critic is not None else None,
            "g_opt": self.g_opt.state_dict(),
            "c_opt": self.c_opt.state_dict() if self.c_opt is not None else None,
            "torch_rng": torch.get_rng_state(),
            "numpy_rng": json.dumps(self.rng.bit_generator.state),
            "machine": logs.machine_description(self.device, self.world),
        }

    def save(self) -> None:
        if self.rank != 0:
            return
        path = self.checkpoint_path
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save(self.state(), tmp)
        tmp.replace(path)  # atomic: a crash never leaves a half-written checkpoint

    def resume(self) -> bool:
        """Load ``checkpoints/last.pt`` if present; returns whether it did."""
        path = self.checkpoint_path
        if not path.is_file():
            return False
        ckpt = torch.load(path, map_location=self.device, weights_only=True)
        unwrap(self.generator).load_state_dict(ckpt["generator"])
        self.g_opt.load_state_dict(ckpt["g_opt"])
        if self.critic is not None:
            unwrap(self.critic).load_state_dict(ckpt["critic"])
            self.c_opt.load_state_dict(ckpt["c_opt"])
        self.step, self.elapsed = int(ckpt["step"]), float(ckpt["elapsed"])
        recorded = ckpt.get("config", {}).get("train", {}).get("init_sha256")
        if recorded:  # the file the run started from, not what that path holds now
            self.config["train"]["init_sha256"] = recorded
        self.average = ckpt.get("average")
        if self.average is not None:  # kept on the CPU whatever device the run resumes on
            self.average["generator"] = {k: v.cpu() for k, v in self.average["generator"].items()}
        torch.set_rng_state(ckpt["torch_rng"].cpu())
        state = json.loads(ckpt["numpy_rng"])
        # Other ranks keep their own stream: offset it by the rank as at the start.
        self.rng = np.random.default_rng()
        self.rng.bit_generator.state = state
        if self.rank:
            self.rng = np.random.default_rng(int(self.rng.integers(2**63)) + 1000 * self.rank)
        return True

    # -- training ----------------------------------------------------------------------------

    def _autocast(self):
        if not self.bf16:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def _weighted(self, terms: dict[str, torch.Tensor], weights: dict) -> torch.Tensor:
        missing = [k for k in terms if k not in weights]
        if missing:
            raise KeyError(f"config loss weights lack {missing}; add them (0 to disable)")
        return sum(float(weights[k]) * v for k, v in terms.items() if float(weights[k]) != 0)

    def _apply_phase(self) -> None:
        """The learning rate of :func:`lr_at`, and the paper's fine-tuning phase (frozen
        encoder BatchNorm)."""
        for group in self.g_opt.param_groups:
            group["lr"] = lr_at(self.step, self.config)
        model_config = self.recipe.model_config(model_config_at(self.step, self.config))
        if model_config != self.model_config:
            reconfigure = getattr(unwrap(self.generator), "reconfigure", None)
            if reconfigure is None:
                raise ValueError(f"{self.config['model']} cannot change its model_config in a run")
            reconfigure(model_config)
            self.model_config = model_config
        at = self.config["train"].get("finetune_step")
        if at is not None and self.step >= int(at):
            freeze = getattr(unwrap(self.generator), "freeze_encoder_bn", None)
            if freeze is not None:
                freeze()

    def _draw(self, sampler: CropSampler, step: int, rng: np.random.Generator) -> Batch:
        """The batch of ``step``: its crop size and batch size follow ``train.crop_schedule``."""
        sampler.crop, size = crop_at(step, self.config)
        return sampler.batch(rng, size)

    def _next_batch(self, sampler: CropSampler) -> Batch:
        if self._prefetcher is None:
            batch = self._draw(sampler, self.step, self.rng)
        else:
            batch, state = self._prefetcher.get(self.step)
            self.rng.bit_generator.state = state  # as if drawn here (checkpoints, resume)
        return batch.to(self.device, self.channels_last)

    def prefetches(self) -> bool:
        """``train.prefetch``: draw batches in a background thread ("auto": on a GPU, where
        the CPU's crops would otherwise keep it waiting; on the CPU the thread would only
        take a core from the step)."""
        setting = self.config["train"].get("prefetch", "auto")
        if setting == "auto":
            return self.device.type != "cpu"
        return bool(setting)

    def train_step(self, sampler: CropSampler) -> dict[str, float]:
        tcfg = self.config["train"]
        batch = self._next_batch(sampler)
        self.ctx.step = self.step
        self.ctx.loss_weights = loss_weights_at(self.step, self.config)
        row: dict[str, float] = {}
        if self.critic is not None:
            c_weights = self.config.get("critic_loss_weights", {})
            for _ in range(int(tcfg.get("critic_steps", 1))):
                with self._autocast():
                    c_terms = self.recipe.critic_losses(
                        self.critic, self.generator, batch, self.ctx
                    )
                c_total = sum(float(c_weights.get(k, 1.0)) * v for k, v in c_terms.items())
                self.c_opt.zero_grad(set_to_none=True)
                c_total.backward()
                self.c_opt.step()
            row.update({f"critic_{k}": float(v.detach()) for k, v in c_terms.items()})
        with self._autocast():
            terms, _ = self.recipe.generator_losses(self.generator, batch, self.ctx)
        total = self._weighted(terms, self.ctx.loss_weights)
        if not torch.isfinite(total):
            raise FloatingPointError(f"loss became {float(total)} at step {self.step}")
        self.g_opt.zero_grad(set_to_none=True)
        total.backward()
        self.g_opt.step()
        row.update({k: float(v.detach()) for k, v in terms.items()})
        row["total"] = float(total.detach())
        return row

    def _update_average(self) -> None:
        """Add the generator's weights to the running mean of ``train.average``
        (``{"start": S, "every": N}``) when the step is S, S + N, S + 2N, ...: stochastic
        weight averaging (Izmailov et al. 2018). Late in a run the weights wander around a
        minimum at a small learning rate; their mean sits nearer its centre than any one of
        them, and evaluation and export use it (:func:`generator_weights`). It draws no random
        numbers, so a run with it trains exactly the weights of the run without it. BatchNorm
        statistics are averaged like the weights rather than recomputed."""
        cfg = self.config["train"].get("average")
        if not cfg or self.rank != 0:
            return
        start, every = int(cfg["start"]), int(cfg["every"])
        if self.step < start or (self.step - start) % every:
            return
        if self.average is not None and self.average["last"] == self.step:
            return  # already counted (a resumed run starts at a step it saved)
        weights = unwrap(self.generator).state_dict()
        if self.average is None:  # an empty mean: the first update below makes it a copy
            zeros = {k: torch.zeros_like(v, device="cpu", dtype=torch.float32)
                     if v.is_floating_point() else torch.zeros_like(v, device="cpu")
                     for k, v in weights.items()}  # fmt: skip
            self.average = {"count": 0, "first": self.step, "generator": zeros}
        n = self.average["count"] + 1
        for k, v in self.average["generator"].items():
            w = weights[k].detach().cpu()
            if v.is_floating_point():
                v += (w.float() - v) / n
            else:
                v.copy_(w)
        self.average.update(count=n, last=self.step)

    def _request_stop(self, *_: object) -> None:
        self._stop = True

    def fit(self, steps: int | None = None, max_minutes: float | None = None, progress=True) -> int:
        """Train until ``steps`` (default: config ``train.steps``) or the time budget; returns
        the step reached. Saves a checkpoint every ``checkpoint_minutes`` and at the end;
        SIGTERM/SIGINT save and stop cleanly."""
        tcfg = self.config["train"]
        steps = int(steps if steps is not None else tcfg["steps"])
        data = self.config["data"]
        sampler = CropSampler.from_config(
            data,
            crop_at(self.step, self.config)[0],  # train_step follows train.crop_schedule
            self.config.get("masks", {}),
        )
        if self.rank == 0:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "config.json").write_text(json.dumps(self.config, indent=2))
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(ValueError):  # not in the main thread (tests)
                signal.signal(sig, self._request_stop)
        self.generator.train()
        if self.critic is not None:
            self.critic.train()
        if self.prefetches():
            self._prefetcher = BatchPrefetcher(
                lambda step, rng: self._draw(sampler, step, rng),
                self.rng,
                self.step,
                depth=int(tcfg.get("prefetch_depth", 4)),
                pin=self.device.type == "cuda",
            )
        try:
            return self._loop(sampler, steps, max_minutes, progress)
        finally:
            if self._prefetcher is not None:
                self._prefetcher.close()
                self._prefetcher = None

    def _loop(self, sampler: CropSampler, steps: int, max_minutes: float | None, progress) -> int:
        tcfg = self.config["train"]
        log = logs.CsvLog(self.run_dir / "log.csv") if self.rank == 0 else None
        every = int(tcfg.get("log_every", 50))
        ckpt_s = float(tcfg.get("checkpoint_minutes", 5)) * 60
        start = time.monotonic()
        last_ckpt = start
        sums: dict[str, float] = {}
        count = 0
        bar = tqdm(
            total=steps, initial=self.step, disable=not progress or self.rank != 0,
            unit="step", dynamic_ncols=True, mininterval=1 if sys.stderr.isatty() else 30,
        )  # fmt: skip
        t0 = time.monotonic()
        self._update_average()  # a run resumed at (or started from) an averaged step
        while self.step < steps and not self._stop:
            self._apply_phase()
            row = self.train_step(sampler)
            self.step += 1
            self._update_average()
            now = time.monotonic()
            self.elapsed += now - t0
            t0 = now
            for k, v in row.items():
                sums[k] = sums.get(k, 0.0) + v
            count += 1
            bar.update(1)
            if self.step % every == 0 or self.step == steps:
                means = {k: v / count for k, v in sums.items()}
                bar.set_postfix(loss=f"{means['total']:.4f}")
                if log is not None:
                    lr = self.g_opt.param_groups[0]["lr"]
                    log.write(self.step, self.elapsed, lr, means)
                sums, count = {}, 0
            if now - last_ckpt > ckpt_s:
                self.save()
                if log is not None:
                    logs.plot_losses(self.run_dir / "log.csv", self.run_dir / "loss.png")
                last_ckpt = now
            if max_minutes is not None and now - start > max_minutes * 60:
                break
        bar.close()
        self.save()
        if log is not None and (self.run_dir / "log.csv").is_file():
            logs.plot_losses(self.run_dir / "log.csv", self.run_dir / "loss.png")
        return self.step


def train(
    config: dict,
    run_dir: Path,
    data: Path | None = None,
    resume: bool = False,
    steps: int | None = None,
    max_minutes: float | None = None,
    device: str | None = None,
    progress: bool = True,
) -> Trainer:
    """Build a :class:`Trainer`, optionally resume it, and train. Returns the trainer."""
    trainer = Trainer(config, run_dir, data, device)
    if resume and trainer.resume() and trainer.rank == 0:
        print(f"resumed {run_dir} at step {trainer.step}", file=sys.stderr)
    trainer.fit(steps, max_minutes, progress)
    return trainer


def generator_weights(checkpoint: dict) -> dict[str, torch.Tensor]:
    """The generator weights a checkpoint stands for: the ``train.average`` mean when the run
    keeps one, else the weights it trains."""
    average = checkpoint.get("average")
    return average["generator"] if average else checkpoint["generator"]
