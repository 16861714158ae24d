"""``export`` and ``reproduce``: turn an evaluated checkpoint into shipped weights.

``export`` writes ``resources/weights/<id>.safetensors`` (float16 by default; the model config
as JSON in the metadata under ``"config"``, which is what the engine rebuilds the network
from) and the model's entry in ``resources/weights/manifest.json``: sha256, size, the full
training config (the exact recipe), data, training time and machine, and the evaluation
table measured by ``evaluate`` on that very checkpoint.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from engine.registry import get_spec, sha256_file, weights_dir
from training.evaluate import (
    average_description,
    bar_label,
    meets_quality_bar,
    meets_texture_bar,
    quality_gap,
)
from training.recipes import get_recipe

MAX_BYTES = 30 * 1024 * 1024


def state_to_tensors(state: dict[str, torch.Tensor], fp16: bool) -> dict[str, torch.Tensor]:
    """Contiguous CPU tensors; floating ones in float16 when ``fp16`` (the engine loads float32)."""
    out = {}
    for k, v in state.items():
        v = v.detach().cpu()
        if fp16 and v.is_floating_point():
            v = v.half()
        out[k] = v.contiguous()
    return out


def write_weights(path: Path, state: dict, model_config: dict, fp16: bool = True) -> None:
    """Save a generator state dict as safetensors with its model config in the metadata."""
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"config": json.dumps(model_config), "format": "pt"}
    save_file(state_to_tensors(state, fp16), str(path), metadata=metadata)


def update_manifest(folder: Path, model_id: str, entry: dict) -> None:
    """Replace one model's entry in ``manifest.json``, keeping every other model's entry."""
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text()) if path.is_file() else {}
    manifest[model_id] = entry
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    tmp.replace(path)


def data_description(root: Path, extra: list[dict] = ()) -> dict:
    """What the model was trained on: the data manifest's name and counts if any, and the
    same for each extra set (``data.extra``) with its share of the crops."""
    manifest = Path(root) / "manifest.json"
    if manifest.is_file():
        m = json.loads(manifest.read_text())
        out = {"name": m.get("name"), "recipe": m.get("recipe"), "images": m.get("count")}
    else:
        out = {"folder": str(root)}
    if extra:
        out["extra"] = [{**data_description(Path(e["root"])), "share": e["share"]} for e in extra]
    return out


def export(
    model_id: str,
    evaluation: Path,
    folder: Path | None = None,
    fp16: bool = True,
    command: str | None = None,
    note: str | None = None,
) -> dict:
    """Export the checkpoint evaluated in ``evaluation`` (an ``eval.json``); returns the entry.

    ``note``: free text for the people who ship the file (e.g. how the run went), stored as
    the entry's ``notes``; an entry never keeps the notes of the file it replaces.
    """
    info = json.loads(Path(evaluation).read_text())
    if "checkpoint" not in info:
        raise ValueError(f"{evaluation} evaluates a weights file, not a training checkpoint")
    ckpt = torch.load(info["checkpoint"], map_location="cpu", weights_only=True)
    if int(ckpt["step"]) != int(info["step"]):
        raise ValueError("the checkpoint does not match its evaluation; run evaluate again")
    spec = get_spec(model_id)
    folder = Path(folder) if folder else weights_dir()
    path = folder / (spec.weights_file or f"{model_id}.safetensors")
    config = dict(ckpt["config"])
    config["train"] = dict(config["train"], steps=int(ckpt["step"]))  # the exact recipe
    base = base_recipe(config, folder, model_id)  # before the file it may name is replaced
    if base is not None:
        config["base"], config["base_sha256"] = base
    write_weights(path, get_recipe(model_id).export_state(ckpt), ckpt["model_config"], fp16)
    path.chmod(0o644)  # a shipped file, whatever the umask of the training shell
    size = path.stat().st_size
    if size > MAX_BYTES:
        path.unlink()
        raise ValueError(f"{path.name} would be {size / 2**20:.1f} MiB (limit 30 MiB)")
    config["evaluate"] = {"size": info["size"], "cases_per_bin": info["cases_per_bin"]}
    beats = info["beats_telea"]
    entry = {
        "file": path.name,
        "sha256": sha256_file(path),
        "size": size,
        "dtype": "float16" if fp16 else "float32",
        "config": config,
        "data": data_description(Path(config["data"]["root"]), config["data"].get("extra", [])),
        "training": {
            "steps": int(ckpt["step"]),
            "time_s": round(float(ckpt["elapsed"]), 1),
            "time": f"{float(ckpt['elapsed']) / 3600:.2f} h",
            "machine": ckpt.get("machine", ""),
            "command": command or f"python -m training reproduce {model_id}",
        },
        "metrics": {
            "protocol": (
                f"{info['images']} validation images at {info['size']}x{info['size']}, "
                f"{info['cases_per_bin']} masks per PConv hole-ratio bin; L1/PSNR/SSIM on the "
                "composite; telea and navier-stokes measured in the same run"
            ),
            "table": info["table"],
            "results": info["results"],
            "beats_telea_l1_and_ssim": beats,
            "meets_quality_bar": meets_quality_bar(info["results"], bar_label(model_id))
            and meets_texture_bar(info["results"], bar_label(model_id)),
        },
    }
    if "diversity" in info:
        entry["metrics"]["diversity"] = info["diversity"]
    gap = quality_gap(info["results"], bar_label(model_id))
    if gap:
        # Read by the model picker and ``main.py models``: a file below the bar says so.
        entry["metrics"]["gap"] = gap
    if ckpt.get("average"):
        entry["training"]["average"] = average_description(ckpt["average"])
    if note:
        entry["notes"] = note
    update_manifest(folder, model_id, entry)
    return entry


def export_cli(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir) if args.run_dir else Path("runs") / args.model
    entry = export(
        args.model, run_dir / "eval.json", args.weights_dir, fp16=not args.fp32,
        command=None, note=args.note,
    )  # fmt: skip
    print(
        f"wrote {entry['file']} ({entry['size'] / 2**20:.1f} MiB, sha256 {entry['sha256'][:12]}…, "
        f"step {entry['training']['steps']}); quality bar met: "
        f"{entry['metrics']['meets_quality_bar']}"
    )
    return 0


def base_recipe(config: dict, folder: Path, model_id: str) -> tuple[dict, str] | None:
    """The recipe and sha256 of the weights a fine-tune started from (``train.init_weights``).

    A fine-tune of the file it is about to replace would leave ``reproduce`` nothing to start
    from, so the export keeps that file's recipe: the manifest entry with the init file's
    sha256 (the shipped entry, or the base the shipped entry itself keeps, when this run was
    exported before), whole, with its own ``base`` if any. None for a run from scratch; an
    error for a start from weights whose recipe is unknown.
    """
    init = config["train"].get("init_weights")
    if not init:
        return None
    if config.get("base"):  # a run that reproduce staged
        return config["base"], config["base_sha256"]
    listed = folder / "manifest.json"
    shipped = json.loads(listed.read_text()).get(model_id, {}) if listed.is_file() else {}
    digest = config["train"].get("init_sha256")  # recorded when the run loaded it
    if digest is None and Path(init).is_file():
        digest = sha256_file(Path(init))
    if digest and digest == shipped.get("sha256"):
        return shipped["config"], digest
    if digest and digest == shipped.get("config", {}).get("base_sha256"):
        return shipped["config"]["base"], digest
    raise ValueError(
        f"{init} is not the shipped {model_id} file: the exported weights could not be "
        "reproduced from it (export a run that starts from scratch or from the shipped file)"
    )


def train_stages(config: dict, run_dir: Path, data: Path, device: str | None) -> tuple[int, int]:
    """Train ``config``, first its ``base`` stage (recursively, in ``run_dir/base``) when it
    has one: the base's weights, exported as the shipped file was (float16), are the start of
    this stage. Resumes every stage. Returns (steps trained, steps asked) of the last stage
    reached: a stage that stops early stops the whole recipe."""
    from training.trainer import train

    config = json.loads(json.dumps(config))
    config["data"]["root"] = str(data)
    base = config.get("base")
    if base is not None:
        # The stage keeps ``base`` in its config, so its checkpoint exports with the same one.
        done, asked = train_stages(base, run_dir / "base", data, device)
        if done < asked:
            return done, asked
        last = run_dir / "base" / "checkpoints" / "last.pt"
        ckpt = torch.load(last, map_location="cpu", weights_only=True)
        recipe = get_recipe(base["model"])
        init = run_dir / "base" / "weights.safetensors"
        write_weights(init, recipe.export_state(ckpt), ckpt["model_config"])
        config["train"]["init_weights"] = str(init)
        config["train"].pop("init_sha256", None)  # the trainer records this file's
    trainer = train(config, run_dir, data, resume=True, device=device)
    return trainer.step, int(config["train"]["steps"])


def reproduce(model_id: str, data: Path, run: str | None, device: str | None) -> int:
    """fetch-data + train + evaluate + export with the recipe of the shipped file.

    The recipe is the manifest entry's ``config`` (with the exact step count) when the model
    has shipped weights, else ``training/configs/<id>.json``; a fine-tune of an earlier
    shipped file trains that file's recipe first (``config["base"]``, :func:`train_stages`).
    Resumes if interrupted.
    """
    from engine.registry import manifest
    from training.evaluate import evaluate_run
    from training.fetch import fetch_data
    from training.trainer import load_config

    data = Path(data)
    if not (data / "manifest.json").is_file():
        fetch_data(data)
    shipped = manifest().get(model_id)
    config = shipped["config"] if shipped else load_config(model_id)
    run_dir = Path(run) if run else Path("runs") / f"reproduce-{model_id}"
    done, steps = train_stages(config, run_dir, data, device)
    if done < steps:
        # Stopped (Ctrl+C, SIGTERM): a part-trained network must never replace shipped weights.
        print(f"stopped at step {done} of {steps}; run the same command to resume", file=sys.stderr)
        return 1
    evaluate_run(model_id, run_dir)
    command = "python -m training " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    entry = export(model_id, run_dir / "eval.json", command=command)
    print(f"reproduced {model_id}: {entry['file']} sha256 {entry['sha256']} in {os.getcwd()}")
    return 0
