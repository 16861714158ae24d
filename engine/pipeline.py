"""The engine: runs inpainting requests and keeps loaded models around.

:class:`Engine` is used from one thread at a time: the command line calls
it directly, the app through its worker thread (:mod:`app.worker`, which drives
:class:`engine.runner.JobRunner`).
"""

from __future__ import annotations

import importlib
import time
from collections import OrderedDict
from collections.abc import Callable

import numpy as np

from engine.device import resolve_device
from engine.errors import EngineError, ImageTooLargeError, InvalidInputError, OutOfMemoryError
from engine.highres import check_strategy, choose_strategy, run_strategy
from engine.jobs import (
    CancelToken,
    InpaintRequest,
    InpaintResult,
    Progress,
    ProgressCallback,
    SampleCallback,
)
from engine.models.base import InpaintModel
from engine.registry import ModelSpec, get_spec, verified_weights_path

# Largest supported side of a photo. 8K (7680x4320) is the design target;
# beyond 16384 px memory use on an ordinary desktop stops being predictable.
MAX_SIDE = 16384

# Share of the progress bar given to loading a model when it is not cached yet.
_LOAD_SHARE = 0.1


def check_image_size(shape: tuple[int, ...], name: str = "The image") -> None:
    """Raise :class:`ImageTooLargeError` if a side exceeds :data:`MAX_SIDE`."""
    h, w = shape[:2]
    if max(h, w) > MAX_SIDE:
        raise ImageTooLargeError(
            f"{name} is {w}x{h} pixels; the largest supported side is {MAX_SIDE} px."
        )


class Engine:
    """Loads models on demand, caches them and runs requests.

    Args:
        max_models: how many loaded models to keep (least recently used go first).
    """

    def __init__(self, max_models: int = 2) -> None:
        self._models: OrderedDict[tuple[str, str], InpaintModel] = OrderedDict()
        self._max_models = max_models

    def is_loaded(self, model_id: str, device: str) -> bool:
        spec = get_spec(model_id)
        return (model_id, self._device_for(spec, device)) in self._models

    def load(
        self, model_id: str, device: str = "auto", report: Callable[[str], None] | None = None
    ) -> InpaintModel:
        """The model ``model_id`` loaded on ``device`` (weights verified on first load)."""
        spec = get_spec(model_id)
        resolved = self._device_for(spec, device)
        key = (model_id, resolved)
        if key in self._models:
            self._models.move_to_end(key)
            return self._models[key]
        if report:
            report(f"Loading {spec.label}…")
        weights = verified_weights_path(spec) if spec.needs_weights else None
        module_name, _, class_name = spec.entry.partition(":")
        cls = getattr(importlib.import_module(module_name), class_name)
        model: InpaintModel = cls(spec, resolved)
        model.load(weights)
        self._models[key] = model
        while len(self._models) > self._max_models:
            self._models.popitem(last=False)
        return model

    @staticmethod
    def _device_for(spec: ModelSpec, device: str) -> str:
        if spec.uses_torch:
            return resolve_device(device)
        if device != "auto":
            resolve_device(device)  # a device that is not there is an error for every model
        return "cpu"

    def run(
        self,
        request: InpaintRequest,
        cancel: CancelToken | None = None,
        on_progress: ProgressCallback | None = None,
        on_sample: SampleCallback | None = None,
    ) -> InpaintResult:
        """Run one request to completion.

        Progress ticks go to ``on_progress``; each finished sample goes to
        ``on_sample(index, image)`` as soon as it exists, before the result.
        Raises :class:`EngineError` subclasses only (a torch or numpy
        out-of-memory becomes :class:`OutOfMemoryError`).
        """
        try:
            return self._run(request, cancel, on_progress, on_sample)
        except EngineError:
            raise
        except MemoryError as exc:
            raise _oom(request) from exc
        except RuntimeError as exc:
            if "out of memory" in str(exc).lower():
                raise _oom(request) from exc
            raise

    def _run(
        self,
        request: InpaintRequest,
        cancel: CancelToken | None,
        on_progress: ProgressCallback | None,
        on_sample: SampleCallback | None,
    ) -> InpaintResult:
        started = time.perf_counter()
        job_id = request.job_id

        def emit(stage: str, fraction: float, message: str = "") -> None:
            if on_progress is not None:
                on_progress(Progress(job_id, stage, min(1.0, max(0.0, fraction)), message))

        spec = get_spec(request.model_id)
        check_image_size(request.image.shape)
        check_strategy(spec, request.strategy)
        cached = self.is_loaded(spec.id, request.device)
        load_share = 0.0 if cached else _LOAD_SHARE
        emit("loading", 0.0, "" if cached else f"Loading {spec.label}…")
        model = self.load(spec.id, request.device)
        if request.mask.all():
            raise InvalidInputError(
                "The mask covers the whole photo: no pixel is left to fill the hole from. "
                "Leave part of the photo unmasked."
            )
        if request.texture:
            if spec.native_size is None:
                raise InvalidInputError(
                    f"{spec.label} works at full resolution; the texture stage refines the "
                    "fills of learned models only."
                )
            from engine.texture import TextureRefined  # imports torch: only when used

            model = TextureRefined(model)
        loaded = time.perf_counter()
        if cancel is not None:
            cancel.check()

        strategy = request.strategy
        if strategy == "auto":
            strategy = choose_strategy(spec, request.image.shape)
        seeds = [request.seed + i for i in range(request.samples)]
        image, mask = request.image, request.mask
        images: list[np.ndarray] = []
        emit("inpainting", load_share, f"Inpainting with {spec.label}…")

        def report(done: float) -> None:
            if cancel is not None:
                cancel.check()
            emit("inpainting", load_share + (1 - load_share) * done)

        if not mask.any():
            # Nothing to fill: every sample is the input itself.
            results = iter([image.copy() for _ in seeds])
        else:
            results = run_strategy(strategy, model, image, mask, seeds, cancel, report)
        for index, result in enumerate(results):
            result.flags.writeable = False
            images.append(result)
            if on_sample is not None:
                on_sample(index, result)
            emit(
                "sample",
                load_share + (1 - load_share) * (index + 1) / len(seeds),
                f"Sample {index + 1} of {len(seeds)} ready",
            )
            if cancel is not None and index + 1 < len(seeds):
                cancel.check()
        finished = time.perf_counter()
        return InpaintResult(
            job_id=job_id,
            model_id=spec.id,
            images=tuple(images),
            seeds=tuple(seeds),
            strategy=strategy,
            device=model.device,
            texture=request.texture,
            timings={
                "load": loaded - started,
                "inpaint": finished - loaded,
                "total": finished - started,
            },
        )


def _oom(request: InpaintRequest) -> OutOfMemoryError:
    h, w = request.image.shape[:2]
    return OutOfMemoryError(
        f"Ran out of memory inpainting a {w}x{h} image with {request.model_id}; nothing was "
        "changed. Try the 'crop' or 'resize' strategy, a smaller hole, or the CPU device."
    )
