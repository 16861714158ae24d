"""Command line of the training module: ``python -m training COMMAND ...``.

Commands: ``fetch-data DEST``, ``fetch-textures DEST``, ``train``, ``evaluate``, ``export``,
``reproduce ID``, ``bf16-check``. Run ``python -m training COMMAND --help`` for the options.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DEFAULT_DATA = Path("data/starter")


def _run_dir(args: argparse.Namespace) -> Path:
    return Path(args.run_dir) if args.run_dir else Path("runs") / args.model


def cmd_fetch(args: argparse.Namespace) -> int:
    from training.fetch import fetch_data

    fetch_data(Path(args.dest))
    return 0


def cmd_fetch_textures(args: argparse.Namespace) -> int:
    from training.fetch import fetch_textures

    fetch_textures(Path(args.dest))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from training.trainer import load_config, train

    run_dir = _run_dir(args)
    if args.resume and (run_dir / "config.json").is_file() and not args.config:
        config = json.loads((run_dir / "config.json").read_text())
    else:
        config = load_config(args.model, args.config)
    if args.threads:
        config["train"]["threads"] = args.threads
    if args.bf16 is not None:
        config["train"]["bf16"] = {"on": True, "off": False, "auto": "auto"}[args.bf16]
    if args.steps:
        config["train"]["steps"] = args.steps
    train(config, run_dir, args.data, args.resume, None, args.max_minutes, args.device)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from training.evaluate import evaluate_cli

    return evaluate_cli(args)


def cmd_export(args: argparse.Namespace) -> int:
    from training.export import export_cli

    return export_cli(args)


def cmd_reproduce(args: argparse.Namespace) -> int:
    from training.export import reproduce

    return reproduce(args.model, Path(args.data), args.run_dir, args.device)


def cmd_pack(args: argparse.Namespace) -> int:
    from training.fetch import pack_data

    pack_data(Path(args.src), Path(args.dest), tuple(args.splits), args.max_side, args.quality)
    return 0


def cmd_bf16(args: argparse.Namespace) -> int:
    from training.bf16check import bf16_check

    print(bf16_check(args.model, args.steps, args.config))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("fetch-data", help="build the starter photo set in DEST")
    p.add_argument("dest")
    p.set_defaults(func=cmd_fetch)

    p = sub.add_parser(
        "fetch-textures",
        help="the photographic textures of ufoai-textures in DEST (train only; data.extra)",
    )
    p.add_argument("dest")
    p.set_defaults(func=cmd_fetch_textures)

    p = sub.add_parser(
        "pack-data", help="a small downscaled JPEG copy of SRC's splits (for a lent GPU)"
    )
    p.add_argument("src")
    p.add_argument("dest")
    p.add_argument("--max-side", type=int, default=1024, help="longer side (default 1024)")
    p.add_argument("--quality", type=int, default=90, help="JPEG quality (default 90)")
    p.add_argument("--splits", nargs="+", default=["train"], choices=["train", "val", "test"])
    p.set_defaults(func=cmd_pack)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--model", required=True, help="model id (pconv, dfnet, ...)")
        p.add_argument("--run-dir", help="run directory (default runs/MODEL)")
        p.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda if available)")

    p = sub.add_parser("train", help="train a model (resumable; works under torchrun)")
    common(p)
    p.add_argument("--config", type=Path, help="config file (default training/configs/MODEL.json)")
    p.add_argument("--data", type=Path, help="image folder (overrides the config)")
    p.add_argument("--resume", action="store_true", help="continue from RUN/checkpoints/last.pt")
    p.add_argument("--steps", type=int, help="train up to this step (overrides the config)")
    p.add_argument("--max-minutes", type=float, help="stop (with a checkpoint) after this long")
    p.add_argument("--threads", type=int, help="torch threads per process (config default 1)")
    p.add_argument("--bf16", choices=["on", "off", "auto"], help="bf16 autocast")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "evaluate",
        help="L1/SSIM, deep-feature distance and detail by hole-ratio bin vs the classical models",
    )
    common(p)
    p.add_argument("--data", type=Path, help="image folder (default: the run's config)")
    p.add_argument("--weights", type=Path, help="evaluate an exported .safetensors instead")
    p.add_argument("--size", type=int, help="evaluation image side (default config, 512)")
    p.add_argument("--cases", type=int, help="masks per image and bin (default config, 2)")
    p.add_argument("--out", type=Path, help="markdown table path (default RUN/eval.md)")
    p.add_argument(
        "--split", choices=["val", "test", "both"], default="both",
        help="validation, the held-out test split, or both (default)",
    )  # fmt: skip
    p.add_argument("--threads", type=int, help="torch threads (default: the run's config, 1)")
    p.add_argument(
        "--texture", choices=["off", "on", "both"], default="both",
        help="the model's fill as it is, through the texture stage, or both (default)",
    )  # fmt: skip
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("export", help="write resources/weights/MODEL.safetensors + manifest entry")
    common(p)
    p.add_argument("--weights-dir", type=Path, help="default resources/weights")
    p.add_argument("--fp32", action="store_true", help="store float32 (default float16)")
    p.add_argument("--note", help="text for the manifest entry's notes (how the run went)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("reproduce", help="fetch-data + train + evaluate + export")
    p.add_argument("model")
    p.add_argument("--data", default=str(DEFAULT_DATA))
    p.add_argument("--run-dir", help="run directory (default runs/reproduce-MODEL)")
    p.add_argument("--device")
    p.set_defaults(func=cmd_reproduce)

    p = sub.add_parser("bf16-check", help="compare fp32 and bf16 losses over a few steps")
    p.add_argument("--model", required=True)
    p.add_argument("--config", type=Path)
    p.add_argument("--steps", type=int, default=20)
    p.set_defaults(func=cmd_bf16)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
