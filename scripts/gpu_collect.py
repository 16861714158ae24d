"""Copy a training run's results somewhere small: ``python scripts/gpu_collect.py RUN DEST``.

A lent GPU sends back at most 16 MiB a file and 64 MiB in all (the device tool's limits), so
the checkpoint keeps its optimiser states only when it fits in ``--max-mib``; without them it
still evaluates and exports (``python -m training evaluate/export --run-dir``), it only cannot
``--resume`` exactly. ``config.json``, ``log.csv`` and ``loss.png`` travel as they are.
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
from pathlib import Path

import torch


def collect(run: Path, dest: Path, max_mib: float = 15.0) -> Path:
    ckpt_path = run / "checkpoints" / "last.pt"
    if not ckpt_path.is_file():
        raise FileNotFoundError(f"{ckpt_path} does not exist (did the run start?)")
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    if buf.tell() > max_mib * 2**20:
        ckpt["g_opt"] = ckpt["c_opt"] = None
        ckpt["slim"] = "optimiser states dropped to travel (scripts/gpu_collect.py)"
        buf = io.BytesIO()
        torch.save(ckpt, buf)
    if buf.tell() > max_mib * 2**20:
        raise ValueError(f"{run}: {buf.tell() / 2**20:.1f} MiB even without optimiser states")
    (dest / "checkpoints").mkdir(parents=True, exist_ok=True)
    (dest / "checkpoints" / "last.pt").write_bytes(buf.getvalue())
    for name in ("config.json", "log.csv", "loss.png"):
        if (run / name).is_file():
            shutil.copy2(run / name, dest / name)
    print(f"{run} -> {dest}: step {ckpt['step']}, {ckpt['elapsed']:.0f} s of training, "
          f"{buf.tell() / 2**20:.1f} MiB")  # fmt: skip
    return dest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("dest", type=Path)
    parser.add_argument("--max-mib", type=float, default=15.0)
    args = parser.parse_args(argv)
    try:
        collect(args.run, args.dest, args.max_mib)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
