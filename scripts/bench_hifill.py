"""Benchmark and quality check of HiFill with contextual residual aggregation (CRA).

Speed (default): for 2K (2048x1080) and 8K (7680x4320) photo-like synthetic images with
about 12% hole in 4 regions (:mod:`engine.synthetic`), the whole request from array in to
array out (``Engine.run``, model already loaded, one warm-up run) for HiFill with ``cra``
and for OpenCV Telea with ``crop`` on the same image and mask, in the same process. Times
are the median of ``--repeat`` runs; peak memory is the resident-set high-water mark above
the level just before the call (``/proc/self/clear_refs`` resets VmHWM; the image, mask and
loaded model count as idle), via :func:`engine.bench.measure`.

Quality (``--quality``): on the high-resolution validation photos of the starter set, at
their own resolution, with the evaluation masks of :mod:`training.masks`, compares the
``resize``, ``crop`` and ``cra`` strategies of the given models (``telea@512`` is OpenCV
Telea restricted to a 512 working size: a model without attention) by L1, PSNR, SSIM and
the hole's gradient energy relative to the truth (1 = as sharp as the photo) and the detail
ratio of :mod:`training.quality`, and the deep-feature distance on the 512 px window with the
most hole, at the photo's resolution (``--split test``: the held-out photos; ``hifill+texture``:
with the texture stage, whose ``cra`` copies each hole cell's residual from its best cell).

    python scripts/bench_hifill.py --weights-dir runs/hifill/export
    python scripts/bench_hifill.py --quality --models telea@512 hifill
    python scripts/bench_hifill.py --quality --models hifill hifill+texture --bins 1
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SIZES = {"2k": (1080, 2048), "8k": (4320, 7680)}
# Side of the window around the hole the deep-feature distance is measured on, at the photo's
# own resolution (the whole photo scaled down would hide the texture it is meant to see).
CROP = 512


def bench(
    sizes: list[str], ratios: list[float], repeat: int, device: str, save: Path | None
) -> None:
    from engine.bench import measure
    from engine.jobs import InpaintRequest
    from engine.pipeline import Engine
    from engine.synthetic import hole_mask, photo_like

    engine = Engine(max_models=2)
    print(
        "| size | HiFill cra s (CPU s) | peak MB | Telea crop s (CPU s) | peak MB "
        "| time ratio | CPU ratio |"
    )
    print("|---|---|---|---|---|---|---|")
    cases = [(name, ratio) for name in sizes for ratio in ratios]
    for name, ratio in cases:
        h, w = SIZES[name]
        image, mask = photo_like(h, w, seed=1), hole_mask(h, w, ratio, 4, seed=1)
        row = {}
        for model_id, strategy in (("hifill", "cra"), ("telea", "crop")):
            request = InpaintRequest(image, mask, model_id, device=device, strategy=strategy)
            result = engine.run(request)  # warm-up (model load, first-call allocations)
            assert np.array_equal(result.images[0][~mask], image[~mask])
            runs, cpu = [], []
            for _ in range(repeat):
                start = time.process_time()
                runs.append(measure(lambda r=request: engine.run(r), result.device))
                cpu.append(time.process_time() - start)
            times = [t for t, _, _ in runs]
            peaks = [p for _, p, _ in runs if p is not None]
            peak = max(peaks) if peaks else float("nan")
            row[model_id] = (statistics.median(times), statistics.median(cpu), peak)
            if save is not None:
                save.mkdir(parents=True, exist_ok=True)
                out = cv2.cvtColor(result.images[0], cv2.COLOR_RGB2BGR)
                stem = f"{name}_hole{ratio:g}_{model_id}_{strategy}"
                cv2.imwrite(str(save / f"{stem}.png"), out)
                cv2.imwrite(str(save / f"{stem}_mask.png"), mask.astype(np.uint8) * 255)
            del result
        (th, ch, ph), (tt, ct, pt) = row["hifill"], row["telea"]
        print(
            f"| {w}x{h} (hole {mask.mean():.1%}) | {th:.3f} ({ch:.2f}) | {ph:.0f} "
            f"| {tt:.3f} ({ct:.2f}) | {pt:.0f} | {th / tt:.3f} | {ch / ct:.3f} |"
        )
    threads = __import__("torch").get_num_threads()
    print(
        f"\nmedian of {repeat} runs after one warm-up; device {device}; torch threads {threads}; "
        "CPU s = process CPU time of the call (all threads), robust to other load"
    )


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM (Wang et al. 2004; Gaussian 11x11, sigma 1.5) over the channels, [0, 255]."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    a, b = a.astype(np.float64), b.astype(np.float64)

    def blur(x: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(x, (11, 11), 1.5)

    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b = blur(a * a) - mu_a**2, blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    return float((num / den).mean())


def _gradient_energy(x: np.ndarray, mask: np.ndarray) -> float:
    g = x.astype(np.float32).mean(axis=2)
    gx, gy = cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1)
    return float(np.sqrt(gx**2 + gy**2)[mask].mean())


def _model(model_id: str, device: str):
    """``MODEL`` (from the registry), ``MODEL+texture`` (with the texture stage) or
    ``telea@512``."""
    from engine.models.catalog import TELEA
    from engine.models.classical import ClassicalModel
    from engine.pipeline import Engine

    if model_id == "telea@512":
        spec = dataclasses.replace(TELEA, native_size=512)
        return ClassicalModel(spec, "cpu")
    base, _, extra = model_id.partition("+")
    if extra not in ("", "texture"):
        raise SystemExit(f"unknown model {model_id!r}: MODEL, MODEL+texture or telea@512")
    model = Engine().load(base, device)
    if extra == "texture":
        from engine.texture import TextureRefined

        model = TextureRefined(model)
    return model


def quality(
    model_ids: list[str],
    strategies: list[str],
    device: str,
    cases: int,
    split: str = "val",
    bins: tuple[int, ...] = (1, 2, 3),
    save: Path | None = None,
) -> None:
    from engine.highres import run_strategy
    from training.data import list_split, read_rgb
    from training.masks import BINS, eval_mask
    from training.quality import DeepFeatureDistance, detail_ratio

    distance = DeepFeatureDistance()

    files = [p for p in list_split(Path("data/starter"), split)]
    photos = [(p, read_rgb(p)) for p in files]
    photos = [(p, im) for p, im in photos if max(im.shape[:2]) >= 1024]
    if save is not None:
        save.mkdir(parents=True, exist_ok=True)
    labels = [BINS[b] for b in bins]
    print(f"{len(photos)} {split} photos >= 1024 px, bins {labels}, {cases} case(s) each")
    for model_id in model_ids:
        model = _model(model_id, device)
        sums: dict[str, list[np.ndarray]] = {s: [] for s in strategies}
        for path, truth in photos:
            h, w = truth.shape[:2]
            for b in bins:
                for case in range(cases):
                    mask = eval_mask(h, w, b, f"{path.name}-{case}")
                    image = truth.copy()
                    image[mask] = 0
                    crop = _densest_crop(mask, CROP)
                    for s in strategies:
                        out = next(iter(run_strategy(s, model, image, mask, [0], None, _noop)))
                        l1 = np.abs(out.astype(np.float32) - truth).mean() / 255
                        mse = ((out.astype(np.float32) - truth) ** 2).mean()
                        psnr = 10 * np.log10(255**2 / max(mse, 1e-9))
                        sharp = _gradient_energy(out, mask) / _gradient_energy(truth, mask)
                        detail = detail_ratio(out, truth, mask)
                        deep = distance(out[crop], truth[crop])
                        sums[s].append(np.array([l1, psnr, ssim(out, truth), sharp, detail, deep]))
                        if save is not None:
                            name = f"{path.stem}-b{b}-{case}-{model_id}-{s}.png"
                            cv2.imwrite(str(save / name), out[..., ::-1])
        print(f"\n{model_id}: mean over {len(sums[strategies[0]])} cases")
        print(
            "| strategy | L1 | PSNR | SSIM | hole gradient energy / truth | detail ratio "
            f"| deep ({CROP} px crop) |"
        )
        print("|---|---|---|---|---|---|---|")
        for s in strategies:
            l1, psnr, ss, sharp, detail, deep = np.mean(sums[s], axis=0)
            print(
                f"| {s} | {l1:.5f} | {psnr:.2f} | {ss:.4f} | {sharp:.3f} | {detail:.2f} "
                f"| {deep:.3f} |"
            )


def _densest_crop(mask: np.ndarray, side: int) -> tuple[slice, slice]:
    """The ``side`` x ``side`` window (at most the photo) holding the most hole pixels: what a
    user looks at, at 100%, after the fill."""
    h, w = mask.shape
    sh, sw = min(side, h), min(side, w)
    density = cv2.boxFilter(mask.astype(np.float32), -1, (sw, sh), normalize=False)
    inner = density[sh // 2 : h - (sh - 1) // 2, sw // 2 : w - (sw - 1) // 2]
    y, x = np.unravel_index(int(np.argmax(inner)), inner.shape)
    return slice(y, y + sh), slice(x, x + sw)


def _noop(_: float) -> None:
    pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--ratios", nargs="+", type=float, default=[0.12], help="hole ratios")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--weights-dir", type=Path, help="weights folder with hifill's manifest")
    parser.add_argument("--save", type=Path, help="write each result as PNG here")
    parser.add_argument("--quality", action="store_true", help="CRA vs resize/crop on photos")
    parser.add_argument("--models", nargs="+", default=["telea@512", "hifill"])
    parser.add_argument("--strategies", nargs="+", default=["resize", "crop", "cra"])
    parser.add_argument("--cases", type=int, default=1)
    parser.add_argument("--split", choices=["val", "test"], default="val")
    parser.add_argument(
        "--bins", nargs="+", type=int, default=[1, 2, 3], help="hole-ratio bins (1 = 10-20%%)"
    )
    args = parser.parse_args()
    if args.weights_dir:
        os.environ["INPAINT_STUDIO_WEIGHTS"] = str(args.weights_dir.resolve())
    if args.quality:
        quality(
            args.models,
            args.strategies,
            args.device,
            args.cases,
            args.split,
            tuple(args.bins),
            args.save,
        )
    else:
        bench(args.sizes, args.ratios, args.repeat, args.device, args.save)


if __name__ == "__main__":
    main()
