"""Inpaint Studio: the desktop app (no arguments) and the command line.

    python main.py [PHOTO]                       start the app (opening PHOTO)
    python main.py inpaint IMAGE --mask MASK     fill the holes (non-zero mask pixels) of a photo
    python main.py models [--json]               list the models and whether they can run
    python main.py bench                         time loading and inpainting at 512, 2K and 8K

Exit codes: 0 success, 2 bad input (one line on stderr, no traceback), 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from engine import Engine
    from engine.imageio import Photo

EXIT_OK, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 2, 130
# Seconds an interrupted run gets to exit in order before it is ended outright.
INTERRUPT_GRACE_S = 5.0
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp"}


def build_parser() -> argparse.ArgumentParser:
    from engine.highres import STRATEGIES
    from engine.jobs import DEVICES

    parser = argparse.ArgumentParser(
        prog="main.py", description="Inpaint Studio: remove and replace parts of photographs."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    inpaint = commands.add_parser(
        "inpaint",
        help="fill the holes of a photo (or every photo of a folder)",
        description="Fill the holes of IMAGE where MASK is non-zero. IMAGE and MASK may be "
        "folders, paired by file name stem.",
    )
    inpaint.add_argument("image", type=Path, metavar="IMAGE", help="photo file or folder")
    inpaint.add_argument(
        "--mask",
        type=Path,
        required=True,
        help="mask file or folder (non-zero = hole)",
    )
    inpaint.add_argument(
        "-o",
        "--output",
        type=Path,
        help="output file, or folder when IMAGE is a folder (default: STEM.inpainted.png "
        "beside the input); with --samples > 1, {i} in the name is replaced by the sample number",
    )
    inpaint.add_argument("--model", help="model id (see `main.py models`)")
    inpaint.add_argument("--samples", type=int, default=1, help="number of different results")
    inpaint.add_argument("--seed", type=int, default=0, help="seed of the first sample")
    inpaint.add_argument("--device", choices=DEVICES, default="auto")
    inpaint.add_argument(
        "--strategy",
        default="auto",
        help=f"high-resolution strategy: auto, {', '.join(STRATEGIES)} (or a model's own)",
    )
    inpaint.add_argument(
        "--texture",
        action="store_true",
        help="rebuild a learned model's fill from the photo's own patches (sharper texture)",
    )
    inpaint.add_argument("--overwrite", action="store_true", help="replace existing output files")

    models = commands.add_parser("models", help="list the models and their weights")
    models.add_argument("--json", action="store_true", help="machine-readable output")

    bench = commands.add_parser("bench", help="time loading and inpainting at 512, 2K and 8K")
    bench.add_argument("--models", nargs="*", help="model ids (default: every available model)")
    bench.add_argument("--sizes", nargs="*", choices=["512", "2k", "8k"], help="default: all")
    bench.add_argument("--device", choices=DEVICES, default="auto")
    bench.add_argument("--strategy", default="auto")
    bench.add_argument("--repeat", type=int, default=3, help="timed runs per case")
    bench.add_argument(
        "--texture", action="store_true", help="learned models with the texture stage"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (len(argv) == 1 and Path(argv[0]).suffix.lower() in IMAGE_SUFFIXES):
        try:
            from app import main as app_main
        except ImportError as exc:  # e.g. a training box installed without the GUI packages
            print(
                f"error: the app needs PySide6 and qtawesome ({exc}); run `make run`.",
                file=sys.stderr,
            )
            return EXIT_BAD_INPUT
        if signal.getsignal(signal.SIGINT) is _on_interrupt:
            signal.signal(signal.SIGINT, signal.default_int_handler)  # the app's own handling
        return app_main(sys.argv[:1] + argv)
    args = build_parser().parse_args(argv)
    from engine.errors import EngineError

    try:
        if args.command == "inpaint":
            return cmd_inpaint(args)
        if args.command == "models":
            return cmd_models(args)
        if args.command == "bench":
            return cmd_bench(args)
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        _report_interrupted()
        return EXIT_INTERRUPTED
    build_parser().print_help()
    return EXIT_BAD_INPUT


def _pairs(image: Path, mask: Path) -> list[tuple[Path, Path]]:
    """(photo, mask) pairs: one pair for files, pairs matched by stem for folders."""
    from engine.errors import InvalidInputError

    if not image.exists():
        raise InvalidInputError(f"Cannot open '{image}': no such file or folder.")
    if not mask.exists():
        raise InvalidInputError(f"Cannot open mask '{mask}': no such file or folder.")
    if image.is_dir() != mask.is_dir():
        kinds = f"'{image}' is a {'folder' if image.is_dir() else 'file'}, '{mask}' a " + (
            "folder" if mask.is_dir() else "file"
        )
        raise InvalidInputError(f"IMAGE and --mask must both be files or both be folders: {kinds}.")
    if not image.is_dir():
        return [(image, mask)]

    def listing(folder: Path, skip_outputs: bool) -> dict[str, Path]:
        found: dict[str, Path] = {}
        for p in sorted(folder.iterdir()):
            if not p.is_file() or p.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            if skip_outputs and ".inpainted" in p.name:
                continue  # a result of an earlier run (the default output sits beside the photo)
            if p.stem in found:
                raise InvalidInputError(
                    f"'{found[p.stem].name}' and '{p.name}' in '{folder}' have the same name; "
                    "photos and masks are paired by name, so rename or move one of them."
                )
            found[p.stem] = p
        return found

    photos, masks = listing(image, True), listing(mask, False)
    missing = sorted(set(photos) - set(masks))
    if missing:
        raise InvalidInputError(
            f"No mask in '{mask}' for {len(missing)} photo(s): {', '.join(missing[:5])}"
            + ("…" if len(missing) > 5 else "")
        )
    if not photos:
        raise InvalidInputError(f"No photos ({', '.join(sorted(IMAGE_SUFFIXES))}) in '{image}'.")
    return [(photos[stem], masks[stem]) for stem in photos]


def output_paths(photo: Path, output: Path | None, folder_mode: bool, samples: int) -> list[Path]:
    """Where the samples of ``photo`` go (see the ``-o`` help)."""
    if output is None:
        base = photo.with_name(f"{photo.stem}.inpainted.png")
    elif folder_mode:
        base = output / f"{photo.stem}.inpainted.png"
    else:
        base = output
    if samples == 1:
        return [Path(str(base).replace("{i}", "1"))]
    if "{i}" in base.name:
        return [base.with_name(base.name.replace("{i}", str(i))) for i in range(1, samples + 1)]
    stem, _, rest = base.name.partition(".")
    rest = f".{rest}" if rest else ""
    return [base.with_name(f"{stem}-{i}{rest}") for i in range(1, samples + 1)]


def cmd_inpaint(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from engine import (
        Engine,
        InpaintRequest,
        default_model_id,
        get_spec,
        list_models,
        unavailable_reason,
    )
    from engine.errors import EngineError, ImageWriteError, InvalidInputError
    from engine.imageio import check_writable, save_image
    from engine.jobs import check_seeds

    check_seeds(args.seed, args.samples)  # before any file is read, for every photo
    model_id = args.model or default_model_id()
    get_spec(model_id)  # unknown ids fail before any file is read
    if args.model is None:
        preferred = list_models()[0]  # the catalog's default comes first
        if preferred.id != model_id:
            print(
                f"note: {preferred.label}, the default model, cannot run "
                f"({unavailable_reason(preferred)}); using {get_spec(model_id).label}.",
                file=sys.stderr,
            )
    pairs = _pairs(args.image, args.mask)
    folder_mode = args.image.is_dir()
    if folder_mode and args.output is not None:
        if args.output.exists() and not args.output.is_dir():
            raise InvalidInputError(f"-o '{args.output}' must be a folder when IMAGE is a folder.")
        args.output.mkdir(parents=True, exist_ok=True)

    # Refuse before spending minutes on the model, not after.
    plan = [(p, m, output_paths(p, args.output, folder_mode, args.samples)) for p, m in pairs]
    for _, _, outs in plan:
        for out in outs:
            try:
                check_writable(out, overwrite=args.overwrite)
            except ImageWriteError as exc:
                hint = " Pass --overwrite to replace it." if out.is_file() else ""
                raise ImageWriteError(f"{exc}{hint}") from exc
    engine = Engine()
    failures = 0
    progress = tqdm(plan, desc="inpainting", unit="photo", disable=not folder_mode, file=sys.stderr)
    # Each photo is decoded on a second thread while this one loads the model (an 8K JPEG
    # takes 0.4 s, `import torch` and the model 0.9 s; PIL decodes without the GIL), then
    # while it fills the photo before.
    with ThreadPoolExecutor(1, thread_name_prefix="read") as reader:
        pending = reader.submit(_read, *plan[0][:2])
        _preload(engine, model_id, args.device)
        for i, (photo_path, _, outs) in enumerate(progress):
            read = pending
            if i + 1 < len(plan):
                pending = reader.submit(_read, *plan[i + 1][:2])
            try:
                photo, mask = read.result()
                for out in outs:  # e.g. a WebP too wide for this photo: before the fill
                    check_writable(out, photo.pixels.shape, args.overwrite)
                request = InpaintRequest(
                    photo.pixels,
                    mask,
                    model_id,
                    samples=args.samples,
                    seed=args.seed,
                    device=args.device,
                    strategy=args.strategy,
                    texture=args.texture,
                )
                result = engine.run(request)
                for out, image in zip(outs, result.images, strict=True):
                    save_image(out, image, like=photo, overwrite=args.overwrite)
            except EngineError as exc:
                if not folder_mode:
                    raise
                failures += 1
                progress.write(f"error: {exc}", file=sys.stderr)
                continue
            h, w = photo.pixels.shape[:2]
            texture = " + texture" if result.texture else ""
            line = (
                f"{photo_path.name}: {w}x{h}, {result.model_id}{texture} "
                f"({result.strategy}, {result.device}) "
                f"in {result.timings['total']:.2f} s -> {', '.join(str(o) for o in outs)}"
            )
            if folder_mode:
                progress.write(line, file=sys.stderr)
            else:
                print(line, file=sys.stderr)
    if failures:
        print(f"error: {failures} of {len(plan)} photos failed", file=sys.stderr)
        return EXIT_BAD_INPUT
    return EXIT_OK


def _read(photo_path: Path, mask_path: Path) -> tuple[Photo, np.ndarray]:
    """The photo and its mask (bool, True = hole)."""
    from engine.imageio import load_image, load_mask

    photo = load_image(photo_path)
    return photo, load_mask(mask_path, photo.pixels.shape[:2])


def _preload(engine: Engine, model_id: str, device: str) -> None:
    """Load the model now, while the first photo is being read. Any failure is left for
    ``engine.run`` to meet again and report in its own order of checks and words."""
    with contextlib.suppress(Exception):
        engine.load(model_id, device)


def cmd_models(args: argparse.Namespace) -> int:
    from engine import list_models, unavailable_reason
    from engine.errors import WeightsError
    from engine.highres import strategies_for
    from engine.registry import quality_gap, verified_weights_path

    rows = []
    for spec in list_models():
        reason = unavailable_reason(spec)
        if reason is None and spec.needs_weights:
            # Ready means the file matches the manifest (hashing takes a fraction of a second).
            try:
                verified_weights_path(spec)
            except WeightsError as exc:
                reason = str(exc)
        rows.append(
            {
                "id": spec.id,
                "label": spec.label,
                "description": spec.description,
                "native_size": spec.native_size,
                "multi_sample": spec.multi_sample,
                "needs_weights": spec.needs_weights,
                "weights_file": spec.weights_file,
                "weights_sha256": spec.weights_sha256,
                "weights_present": bool(spec.weights_path and spec.weights_path.is_file()),
                "available": reason is None,
                "reason": reason,
                "strategies": list(strategies_for(spec)),
                "default": spec.default,
                "below_bar": quality_gap(spec),
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    width = max(len(r["id"]) for r in rows)
    for r in rows:
        if not r["needs_weights"]:
            state = "ready (no weights needed)"
        else:
            state = "ready" if r["available"] else f"unavailable: {r['reason']}"
            if r["below_bar"]:
                state += f"; below the quality bar: {r['below_bar']}"
        flag = " [default]" if r["default"] else ""
        print(f"{r['id']:<{width}}  {r['label']}{flag}: {r['description']}")
        print(f"{'':<{width}}  {state}")
    return EXIT_OK


def cmd_bench(args: argparse.Namespace) -> int:
    import platform

    import torch

    from engine.bench import relative_times, run_benchmark

    # An unknown or unusable model is an error here, before any output.
    rows = run_benchmark(
        args.models, args.sizes, args.device, args.strategy, args.repeat, args.texture
    )
    cpu = platform.processor() or platform.machine()
    print(
        f"# bench: {platform.system()} {cpu}, {torch.get_num_threads()} torch threads, "
        f"{os.cpu_count()} cores, torch {torch.__version__}"
    )
    print("model          size        strategy  device  load s  median s   min s  peak MB  GPU MB")
    done = []
    for row in rows:
        done.append(row)
        load = f"{row.load_s:6.2f}" if row.load_s is not None else "     -"
        peak = f"{row.peak_mb:7.0f}" if row.peak_mb is not None else "      ?"
        gpu = f"{row.gpu_peak_mb:6.0f}" if row.gpu_peak_mb is not None else "     -"
        print(
            f"{row.model:<14} {row.size:<11} {row.strategy:<9} {row.device:<7} {load}  "
            f"{row.median_s:8.3f} {row.min_s:7.3f}  {peak}  {gpu}",
            flush=True,
        )
    ratios = relative_times(done)
    if ratios:
        print("# median as a multiple of telea's at the same size, this run")
        for row, ratio in ratios:
            print(f"{row.model:<14} {row.size:<11} {ratio:8.2f}x")
    return EXIT_OK


_reported = threading.Lock()
# Set by the first Ctrl+C: whatever error it causes afterwards is reported as the interruption.
_interrupt_received = threading.Event()


def _report_interrupted() -> None:
    """The one "interrupted" line on stderr, whichever exit path gets there first (an orderly
    exit that then hangs must not be reported twice by the watchdog)."""
    if _reported.acquire(blocking=False):
        print("interrupted", file=sys.stderr, flush=True)


def _exit_interrupted() -> None:
    _report_interrupted()
    os._exit(EXIT_INTERRUPTED)


def _on_interrupt(signum: int, frame: object) -> None:
    """Ctrl+C: raise KeyboardInterrupt as Python does, and end the process outright if the
    orderly exit has not happened within :data:`INTERRUPT_GRACE_S`.

    A Ctrl+C that lands inside the import machinery (``import torch`` takes most of start-up)
    can leave a module lock held; the thread reading the photo then waits on that lock
    forever and so does the interpreter's exit, which joins it.
    """
    _interrupt_received.set()
    signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl+C: plain Python
    watchdog = threading.Timer(INTERRUPT_GRACE_S, _exit_interrupted)
    watchdog.daemon = True
    watchdog.start()
    raise KeyboardInterrupt


def run_script(argv: Sequence[str] | None = None) -> int:
    """:func:`main` as the script runs it: a Ctrl+C before main's own handler is in place
    (during the imports) ends with the one "interrupted" line, and so does any error the
    Ctrl+C caused: an extension module interrupted mid-import raises ImportError, not
    KeyboardInterrupt (numpy does), and the user pressed Ctrl+C, not broke the install."""
    try:
        return main(argv)
    except KeyboardInterrupt:
        _report_interrupted()
        return EXIT_INTERRUPTED
    except Exception:
        if not _interrupt_received.is_set():
            raise
        _report_interrupted()
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    signal.signal(signal.SIGINT, _on_interrupt)
    sys.exit(run_script())
