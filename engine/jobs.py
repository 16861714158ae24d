"""What goes into the engine and what comes out of it.

One request dataclass goes in; progress messages and one result come out.
Images are RGB ``uint8`` arrays of shape ``(H, W, 3)``; masks are ``bool``
arrays of shape ``(H, W)`` with ``True`` meaning *hole* (pixels to replace).
"""

from __future__ import annotations

import itertools
import numbers
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from engine.errors import InvalidInputError, JobCancelled, MaskMismatchError

DEVICES = ("auto", "cpu", "cuda", "mps")
# Seeds are 32-bit unsigned (every model's generator and PatchMatch's native code take them).
MAX_SEED = 2**32 - 1
MAX_SAMPLES = 64

_job_ids = itertools.count(1)


def check_seeds(seed: object, samples: object) -> None:
    """Raise :class:`InvalidInputError` unless ``samples`` is a whole number from 1 to
    :data:`MAX_SAMPLES` and the seeds ``seed`` .. ``seed + samples - 1`` are whole numbers
    from 0 to :data:`MAX_SEED`."""
    for name, value in (("seed", seed), ("samples", samples)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise InvalidInputError(f"The {name} must be a whole number; got {value!r}.")
    assert isinstance(seed, numbers.Integral) and isinstance(samples, numbers.Integral)
    if not 1 <= samples <= MAX_SAMPLES:
        raise InvalidInputError(
            f"The number of samples must be at least 1 and at most {MAX_SAMPLES}."
        )
    if not 0 <= seed <= MAX_SEED - (samples - 1):
        raise InvalidInputError(
            f"The seed must be from 0 to {MAX_SEED - (samples - 1)} with {samples} sample(s) "
            f"(sample i uses seed + i, at most {MAX_SEED}); got {seed}."
        )


def next_job_id() -> int:
    """A process-wide unique job id (thread-safe: ``itertools.count`` is atomic in CPython)."""
    return next(_job_ids)


@dataclass(frozen=True)
class InpaintRequest:
    """One inpainting job.

    Attributes:
        image: RGB uint8, shape (H, W, 3).
        mask: bool, shape (H, W); True = hole.
        model_id: a registered model id (see :func:`engine.list_models`).
        samples: how many different completions to produce (>1 only for
            models whose spec says ``multi_sample``; others repeat with new seeds).
        seed: seed of the first sample; sample ``i`` uses ``seed + i``.
        device: ``auto`` (CUDA, then Apple MPS, then CPU), ``cpu``, ``cuda`` or ``mps``.
        strategy: high-resolution strategy, ``auto`` or one of
            :data:`engine.highres.STRATEGIES` (models may add their own).
        texture: rebuild the model's fill from the photo's own patches
            (:mod:`engine.texture`); learned models only (classical ones already
            work at full resolution).
        job_id: identifies the job in every message about it.
    """

    image: np.ndarray
    mask: np.ndarray
    model_id: str
    samples: int = 1
    seed: int = 0
    device: str = "auto"
    strategy: str = "auto"
    texture: bool = False
    job_id: int = field(default_factory=next_job_id)

    def __post_init__(self) -> None:
        image, mask = self.image, self.mask
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
            raise InvalidInputError("The image must be a uint8 numpy array.")
        if image.ndim != 3 or image.shape[2] != 3:
            raise InvalidInputError(f"The image must be RGB (H, W, 3); got shape {image.shape}.")
        if not isinstance(mask, np.ndarray) or mask.ndim != 2:
            raise MaskMismatchError("The mask must be a 2-D array (H, W).")
        if mask.shape != image.shape[:2]:
            raise MaskMismatchError(
                f"The mask is {mask.shape[1]}x{mask.shape[0]} but the image is "
                f"{image.shape[1]}x{image.shape[0]}; they must be the same size."
            )
        check_seeds(self.seed, self.samples)
        object.__setattr__(self, "seed", int(self.seed))
        object.__setattr__(self, "samples", int(self.samples))
        if self.device not in DEVICES:
            raise InvalidInputError(
                f"Unknown device {self.device!r}; choose one of {', '.join(DEVICES)}."
            )
        # Freeze the arrays the job holds: they cross threads and must not change under it.
        # A frozen array is also contiguous (the strategies view it as flat tables).
        if mask.dtype != np.bool_:
            object.__setattr__(self, "mask", mask != 0)
        for name in ("image", "mask"):
            array = getattr(self, name)
            if array.flags.writeable or not array.flags.c_contiguous:
                array = np.array(array, order="C")
                array.flags.writeable = False
                object.__setattr__(self, name, array)


@dataclass(frozen=True)
class Progress:
    """A progress tick of a job.

    ``fraction`` is the share of the whole job done, in [0, 1]; ``stage`` a
    short machine-readable name (``loading``, ``inpainting``, ``sample``);
    ``message`` a human-readable line for a status bar.
    """

    job_id: int
    stage: str
    fraction: float
    message: str = ""


@dataclass(frozen=True)
class InpaintResult:
    """The outcome of a finished job.

    ``images`` holds one RGB uint8 (H, W, 3) array per sample, each the size
    of the request's image; pixels outside the hole equal the input exactly.
    ``timings`` maps stage names (``load``, ``inpaint``, ``total``) to seconds.
    """

    job_id: int
    model_id: str
    images: tuple[np.ndarray, ...]
    seeds: tuple[int, ...]
    strategy: str
    device: str
    timings: dict[str, float]
    texture: bool = False


ProgressCallback = Callable[[Progress], None]
SampleCallback = Callable[[int, np.ndarray], None]


class CancelToken:
    """Shared flag that asks a running job to stop.

    The engine checks it between stages, tiles and samples; cancelling never
    kills a thread, it only makes the next check raise :class:`JobCancelled`.
    """

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        """Raise :class:`JobCancelled` if cancellation was asked for."""
        if self._event.is_set():
            raise JobCancelled()
