"""Time Pluralistic's gallery: how long until the first sample is shown, and until all are.

For each size, an engine request for ``--samples`` samples (each the best of the app's draws)
on a synthetic photo-like image with a hole of about 20% in two regions, the model already
loaded (as in the app after the first job); the time from the call to each ``on_sample``
event, median over ``--repeat`` runs after one warm-up.

    python scripts/bench_pluralistic.py [--sizes 512 2048] [--samples 5] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.jobs import InpaintRequest
from engine.pipeline import Engine
from engine.synthetic import photo_like


def hole(h: int, w: int) -> np.ndarray:
    mask = np.zeros((h, w), bool)
    mask[h // 8 : h // 8 + h // 3, w // 6 : w // 6 + w // 3] = True
    mask[h // 2 : h // 2 + h // 4, w // 2 : w // 2 + w // 3] = True
    return mask


def run(engine: Engine, image: np.ndarray, mask: np.ndarray, samples: int) -> list[float]:
    times: list[float] = []
    start = time.perf_counter()
    engine.run(
        InpaintRequest(image, mask, "pluralistic", samples=samples, device="cpu"),
        on_sample=lambda i, img: times.append(time.perf_counter() - start),
    )
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 2048])
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    engine = Engine()
    engine.load("pluralistic", "cpu")
    for size in args.sizes:
        h = size if size <= 512 else size * 1080 // 2048
        image = photo_like(h, size, seed=1)
        mask = hole(h, size)
        run(engine, image, mask, args.samples)  # warm-up
        runs = [run(engine, image, mask, args.samples) for _ in range(args.repeat)]
        first = statistics.median(r[0] for r in runs)
        last = statistics.median(r[-1] for r in runs)
        print(
            f"{size}x{h}: hole {mask.mean():.0%}, first sample shown after {first:.2f} s, "
            f"all {args.samples} after {last:.2f} s (median of {args.repeat})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
