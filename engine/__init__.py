"""Inpaint Studio's engine: models, high-resolution strategies, photo I/O.

The engine imports no Qt (the app's worker thread, :mod:`app.worker`, drives its
:class:`engine.runner.JobRunner`), so it works on a training box without a GUI.
Convention at every boundary: images are RGB uint8 ``(H, W, 3)`` numpy arrays,
masks are bool ``(H, W)`` with ``True`` = hole.
"""

from engine.errors import (
    DeviceError,
    EngineError,
    ImageReadError,
    ImageTooLargeError,
    ImageWriteError,
    InvalidInputError,
    JobCancelled,
    MaskMismatchError,
    OutOfMemoryError,
    UnknownModelError,
    WeightsError,
)
from engine.jobs import CancelToken, InpaintRequest, InpaintResult, Progress
from engine.pipeline import MAX_SIDE, Engine
from engine.registry import ModelSpec, default_model_id, get_spec, list_models, unavailable_reason

__all__ = [
    "MAX_SIDE",
    "CancelToken",
    "DeviceError",
    "Engine",
    "EngineError",
    "ImageReadError",
    "ImageTooLargeError",
    "ImageWriteError",
    "InpaintRequest",
    "InpaintResult",
    "InvalidInputError",
    "JobCancelled",
    "MaskMismatchError",
    "ModelSpec",
    "OutOfMemoryError",
    "Progress",
    "UnknownModelError",
    "WeightsError",
    "default_model_id",
    "get_spec",
    "list_models",
    "unavailable_reason",
]
