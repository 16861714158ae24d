"""Time the whole `main.py inpaint` command on a real 8K JPEG, and its parts.

The photo (unless ``--photo``/``--mask`` are given): a 2560x1600 photo of the starter set
(``python -m training fetch-data data/starter``), with its ICC profile and EXIF, upscaled to
7680x4320 with cv2 INTER_CUBIC and saved as JPEG quality 92; the mask has 4 irregular
blobs, about 7% of the photo. Both go to a temporary folder, never into the repository.

Each of ``--repeat`` rounds runs, each in a fresh process:

- the command itself, ``python main.py inpaint PHOTO --mask MASK -o OUT.png --model MODEL``,
  timed from launch to exit (the total: what a user waits for);
- the same steps one after the other with a clock around each (the parts): interpreter
  start, imports, decoding photo and mask, ``import torch`` + model load, the fill, the
  PNG encode. The command overlaps decoding with the model load, so its total is below
  the parts' sum.

The machine may be shared: a round during which other programs used more than ``--busy``
CPU seconds is measured again (at most ``--retry-busy`` times). It prints the median and
the fastest of each, the output's size, and checks that the
output's known pixels equal the photo's decoded pixels and that its ICC profile and EXIF
are the photo's.

    python scripts/bench_cli8k.py [--repeat 3] [--model hifill] [--photo P --mask M]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "data/starter/images/plasma-workspace-wallpapers/ColorfulCups__2560x1600.jpg"
PARTS = ("start-up", "imports", "decode", "torch + model", "fill", "encode")


def make_photo(source: Path, folder: Path) -> tuple[Path, Path]:
    """The 8K JPEG and its mask (see the module docstring) in ``folder``."""
    import cv2
    import numpy as np
    from PIL import Image

    with Image.open(source) as im:
        icc, exif = im.info.get("icc_profile"), im.info.get("exif")
        rgb = np.asarray(im.convert("RGB"))
    big = cv2.resize(rgb, (7680, 4320), interpolation=cv2.INTER_CUBIC)
    photo = folder / "photo8k.jpg"
    Image.fromarray(big).save(photo, quality=92, icc_profile=icc, exif=exif)
    rng = np.random.default_rng(0)
    mask = np.zeros((4320, 7680), np.uint8)
    for cy, cx in [(1100, 1500), (3000, 2200), (1500, 5500), (3300, 6300)]:
        angles = np.sort(rng.uniform(0, 2 * np.pi, 14))
        radii = rng.uniform(365, 615, 14)
        points = np.stack([cx + radii * np.cos(angles), cy + 0.9 * radii * np.sin(angles)], 1)
        cv2.fillPoly(mask, [points.astype(np.int32)], 255)
    Image.fromarray(mask).save(folder / "mask8k.png")
    return photo, folder / "mask8k.png"


def child(photo: Path, mask_path: Path, out: Path, model_id: str) -> None:
    """The command's steps in order, each timed; prints their times as JSON."""
    times: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        times[name] = now - clock
        clock = now

    sys.path.insert(0, str(ROOT))
    import main  # noqa: F401  (what `python main.py` imports before it runs a command)
    from engine import Engine, InpaintRequest
    from engine.imageio import load_image, load_mask, save_image

    lap("imports")
    photo = load_image(photo)
    mask = load_mask(mask_path, photo.pixels.shape)
    lap("decode")
    engine = Engine()
    engine.load(model_id)
    lap("torch + model")
    result = engine.run(InpaintRequest(photo.pixels, mask, model_id))
    lap("fill")
    save_image(out, result.images[0], like=photo, overwrite=True)
    lap("encode")
    print(json.dumps(times))


def run_parts(photo: Path, mask: Path, out: Path, model: str) -> dict[str, float]:
    started = time.time()
    code = (
        f"import time; t = time.time(); import sys; sys.path.insert(0, {str(ROOT)!r}); "
        "from scripts.bench_cli8k import child; "
        f"print(t); child(*map(__import__('pathlib').Path, {[str(photo), str(mask), str(out)]!r}), "
        f"{model!r})"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    first, last = proc.stdout.strip().splitlines()[-2:]
    return {"start-up": float(first) - started, **json.loads(last)}


def run_command(photo: Path, mask: Path, out: Path, model: str) -> float:
    """Wall seconds of the whole command."""
    command = [sys.executable, "main.py", "inpaint", str(photo), "--mask", str(mask)]
    command += ["-o", str(out), "--model", model, "--overwrite"]
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"the command failed:\n{proc.stderr}")
    return elapsed


def others_cpu_s(work: Callable[[], object]) -> tuple[object, float | None]:
    """(what ``work()`` returned, CPU seconds other processes used meanwhile; None where
    unknown). This script's own children do not count."""
    busy, own = _busy_cpu_s(), _children_cpu_s()
    result = work()
    after = _busy_cpu_s()
    if busy is None or after is None:
        return result, None
    return result, after - busy - (_children_cpu_s() - own)


def _busy_cpu_s() -> float | None:
    """CPU seconds the whole machine has been busy since boot (Linux), else None."""
    import os

    try:
        with open("/proc/stat") as f:
            ticks = [int(v) for v in f.readline().split()[1:]]
    except OSError:
        return None
    idle = ticks[3] + ticks[4]
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _children_cpu_s() -> float:
    import os

    times = os.times()
    return times.children_user + times.children_system


def check(photo: Path, mask_path: Path, out: Path) -> str:
    """Known pixels and metadata of the output against the photo, in words."""
    import numpy as np

    from engine.imageio import load_image, load_mask

    source, result = load_image(photo), load_image(out)
    mask = load_mask(mask_path, source.pixels.shape)
    same = np.array_equal(result.pixels[~mask], source.pixels[~mask])
    return (
        f"known pixels identical: {same}; ICC profile kept: "
        f"{result.icc_profile == source.icc_profile} ({len(source.icc_profile or b'')} bytes); "
        f"EXIF kept: {result.exif == source.exif} ({len(source.exif or b'')} bytes)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--model", default="hifill")
    parser.add_argument("--photo", type=Path)
    parser.add_argument("--mask", type=Path)
    parser.add_argument("--source", type=Path, default=SOURCE, help="photo to upscale to 8K")
    parser.add_argument(
        "--busy",
        type=float,
        default=0.3,
        help="a round during which other programs used more CPU seconds is measured again",
    )
    parser.add_argument("--retry-busy", type=int, default=20, help="at most this many times")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory(prefix="bench8k-") as tmp:
        folder = Path(tmp)
        if args.photo is None or args.mask is None:
            if not args.source.is_file():
                sys.exit(
                    f"{args.source} is missing: run `python -m training fetch-data data/starter`"
                )
            photo, mask = make_photo(args.source, folder)
        else:
            photo, mask = args.photo, args.mask
        out = folder / "out.png"
        parts: list[dict[str, float]] = []
        totals: list[float] = []
        busy_rounds = 0
        while len(totals) < args.repeat:
            part, other_parts = others_cpu_s(lambda: run_parts(photo, mask, out, args.model))
            total, other = others_cpu_s(lambda: run_command(photo, mask, out, args.model))
            busy = max(other_parts or 0.0, other or 0.0) > args.busy
            if busy and busy_rounds < args.retry_busy:
                busy_rounds += 1  # another program took CPU time: measure this round again
                continue
            parts.append(part)
            totals.append(total)
        print(
            f"# {photo.name} ({photo.stat().st_size / 1e6:.1f} MB), --model {args.model}, "
            f"{args.repeat} runs, each in a fresh process"
        )
        print("part             median s   min s")
        for name in PARTS:
            values = [p[name] for p in parts]
            print(f"{name:<15} {statistics.median(values):8.2f} {min(values):7.2f}")
        sums = [sum(p.values()) for p in parts]
        print(f"{'sum of parts':<15} {statistics.median(sums):8.2f} {min(sums):7.2f}")
        print(
            f"{'whole command':<15} {statistics.median(totals):8.2f} {min(totals):7.2f}"
            f"   (runs: {', '.join(f'{t:.2f}' for t in totals)})"
        )
        if busy_rounds:
            print(
                f"note: {busy_rounds} round(s) measured again: other programs used more than "
                f"{args.busy} CPU s during them"
                + (" (the last ones kept anyway)" if busy_rounds >= args.retry_busy else "")
            )
        print(f"output: {out.stat().st_size / 1e6:.2f} MB PNG; {check(photo, mask, out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
