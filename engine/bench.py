"""Benchmark of model loading and inpainting at 512, 2K and 8K.

Used by ``python main.py bench``. Images and masks are synthetic
(:mod:`engine.synthetic`), so the numbers are reproducible anywhere.
Peak memory is the resident-set high-water mark above the level just before
the measured call (Linux: ``VmHWM`` reset through ``/proc/self/clear_refs``),
plus the CUDA allocator's peak when the model runs on a GPU.
"""

from __future__ import annotations

import gc
import os
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from engine.errors import EngineError
from engine.jobs import InpaintRequest
from engine.pipeline import Engine
from engine.registry import ModelSpec, get_spec, list_models, unavailable_reason
from engine.synthetic import hole_mask, photo_like

SIZES: dict[str, tuple[int, int]] = {
    "512": (512, 512),
    "2k": (1080, 2048),
    "8k": (4320, 7680),
}


@dataclass(frozen=True)
class BenchRow:
    model: str
    size: str
    strategy: str
    device: str
    load_s: float | None
    median_s: float
    min_s: float
    peak_mb: float | None
    gpu_peak_mb: float | None


def _status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    try:
        Path(f"/proc/{os.getpid()}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def measure(call: Callable[[], object], device: str) -> tuple[float, float | None, float | None]:
    """Time one call; return (seconds, peak RSS MiB above the level before, CUDA peak MiB)."""
    gc.collect()
    can_reset = _reset_peak()
    before = _status_kb("VmRSS")
    cuda = device.startswith("cuda")
    if cuda:
        import torch

        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    call()
    if cuda:
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    peak = _status_kb("VmHWM")
    rss_mb = (peak - before) / 1024 if can_reset and peak and before else None
    gpu_mb = torch.cuda.max_memory_allocated() / 2**20 if cuda else None
    return elapsed, rss_mb, gpu_mb


def available_models(model_ids: list[str] | None = None) -> list[ModelSpec]:
    """Every model that can run here, or the ones named (in that order; ``"a,b"`` counts as
    two): a named model that is unknown or cannot run is an error, never a silent skip."""
    if not model_ids:
        return [s for s in list_models() if unavailable_reason(s) is None]
    specs = [get_spec(i) for ids in model_ids for i in ids.split(",") if i]
    for spec in specs:
        reason = unavailable_reason(spec)
        if reason is not None:
            raise EngineError(f"{spec.id} cannot run here: {reason}")
    return specs


def run_benchmark(
    model_ids: list[str] | None = None,
    sizes: list[str] | None = None,
    device: str = "auto",
    strategy: str = "auto",
    repeat: int = 3,
    texture: bool = False,
) -> Iterator[BenchRow]:
    """One row per (model, size), as they are measured: load time (first size only), inpaint
    times, peak memory. The models are looked up now, so a bad id raises before any row.
    With ``texture``, learned models run with the texture stage (row ``MODEL+texture``)."""
    return _rows(available_models(model_ids), sizes, device, strategy, repeat, texture)


def _rows(
    specs: list[ModelSpec],
    sizes: list[str] | None,
    device: str,
    strategy: str,
    repeat: int,
    texture: bool,
) -> Iterator[BenchRow]:
    cases = {name: SIZES[name] for name in (sizes or list(SIZES))}
    images = {
        name: (photo_like(h, w, seed=1), hole_mask(h, w, 0.12, 4, seed=1))
        for name, (h, w) in cases.items()
    }
    for spec in specs:
        runner = Engine(max_models=1)
        load_s, _, _ = measure(lambda e=runner, s=spec: e.load(s.id, device), "cpu")
        for name, (image, mask) in images.items():
            refine = texture and spec.native_size is not None
            request = InpaintRequest(
                image, mask, spec.id, device=device, strategy=strategy, texture=refine
            )
            result = runner.run(request)  # warm-up: first-call allocations, lazy inits
            times, peaks, gpu_peaks = [], [], []
            for _ in range(repeat):
                t, rss, gpu = measure(lambda e=runner, r=request: e.run(r), result.device)
                times.append(t)
                peaks.append(rss)
                gpu_peaks.append(gpu)
            yield BenchRow(
                model=spec.id + ("+texture" if refine else ""),
                size=f"{image.shape[1]}x{image.shape[0]}",
                strategy=result.strategy,
                device=result.device,
                load_s=load_s if name == next(iter(cases)) else None,
                median_s=statistics.median(times),
                min_s=min(times),
                peak_mb=max((p for p in peaks if p is not None), default=None),
                gpu_peak_mb=max((p for p in gpu_peaks if p is not None), default=None),
            )
            del result


def relative_times(rows: list[BenchRow], reference: str = "telea") -> list[tuple[BenchRow, float]]:
    """Each row's median as a multiple of ``reference``'s median at the same size in the same
    run (the machine's speed drifts; a ratio measured in one run carries over). Rows of the
    reference itself and sizes it did not run are left out."""
    base = {r.size: r.median_s for r in rows if r.model == reference}
    return [
        (r, r.median_s / base[r.size])
        for r in rows
        if r.model != reference and r.size in base and base[r.size] > 0
    ]
