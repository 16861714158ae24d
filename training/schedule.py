"""Schedules of a training config: what is in force at a step (learning rate, crop and
batch, model config, loss weights). A schedule lets a recipe change one of them part-way
and still be reproduced from scratch by one config (``train.lr_schedule``,
``train.crop_schedule``, ``train.model_schedule``, ``train.loss_schedule``, each a list of
``{"step": S, ...}`` entries; the later ones override the earlier).
"""

from __future__ import annotations


def _due(config: dict, schedule: str, step: int) -> list[dict]:
    """The entries of ``train[schedule]`` (each ``{"step": S, ...}``) with ``S <= step``, in
    step order: the later ones override the earlier."""
    entries = sorted(config["train"].get(schedule, []), key=lambda e: int(e["step"]))
    return [e for e in entries if int(e["step"]) <= step]


def lr_at(step: int, config: dict) -> float:
    """The generator learning rate at ``step``: ``lr``, ``finetune_lr`` from ``finetune_step``
    on, then the last ``train.lr_schedule`` entry (``{"step": S, "lr": x}``) with ``S <= step``."""
    tcfg = config["train"]
    at = tcfg.get("finetune_step")
    lr = float(tcfg["finetune_lr"]) if at is not None and step >= int(at) else float(tcfg["lr"])
    for entry in _due(config, "lr_schedule", step):
        lr = float(entry["lr"])
    return lr


def crop_at(step: int, config: dict) -> tuple[int, int]:
    """The crop side and batch size at ``step``: ``crop`` and ``batch``, then the last
    ``train.crop_schedule`` entry (``{"step": S, "crop": c, "batch": b}``) with ``S <= step``.

    A network trained on small crops and run at a larger size (HiFill: 256 crops, 512 in
    the app) sees holes twice as wide in pixels as in training; a last phase on crops of
    the working size closes that gap at the same pixels per step.
    """
    tcfg = config["train"]
    crop, batch = int(tcfg["crop"]), int(tcfg["batch"])
    for entry in _due(config, "crop_schedule", step):
        crop, batch = int(entry["crop"]), int(entry["batch"])
    return crop, batch


def model_config_at(step: int, config: dict) -> dict:
    """The ``model_config`` in force at ``step``: updated in order by every
    ``train.model_schedule`` entry (``{"step": S, "model_config": {...}}``) with ``S <= step``.

    Only settings without parameters can change (e.g. HiFill's ``transfer``), so a run that
    changed one half-way is still described, and reproduced, by one config.
    """
    values = dict(config["model_config"])
    for entry in _due(config, "model_schedule", step):
        values.update(entry["model_config"])
    return values


def loss_weights_at(step: int, config: dict) -> dict[str, float]:
    """The loss weights in force at ``step``: ``loss_weights``, updated in order by every
    ``train.loss_schedule`` entry (``{"step": S, "loss_weights": {...}}``) with ``S <= step``.

    A schedule lets a recipe add a term late in training (e.g. SSIM for the last phase)
    and still be reproduced from scratch by one config.
    """
    weights = {k: float(v) for k, v in config["loss_weights"].items()}
    for entry in _due(config, "loss_schedule", step):
        weights.update({k: float(v) for k, v in entry["loss_weights"].items()})
    return weights


def ever_weighted(config: dict, term: str) -> bool:
    """Whether ``term`` has a non-zero weight at any step of the run (its ``loss_weights`` or
    any ``train.loss_schedule`` entry): what must be built up front (backbone, critic)."""
    steps = [0, *(int(e["step"]) for e in config["train"].get("loss_schedule", []))]
    return any(loss_weights_at(s, config).get(term, 0) for s in steps)
