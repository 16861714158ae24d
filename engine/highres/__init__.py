"""High-resolution strategies: how a photo larger than a model's working size is mapped
to it and back. One module per strategy (``original``, ``resize``, ``crop``, ``cra``), each
with a ``run(view)`` that yields one full-resolution result per seed; :data:`STRATEGIES`
lists them with one line each for tooltips and help, and the app, the command line and
the errors all read it. Adding a strategy is one new module and its line below (modules
are imported when used: ``cra`` imports torch, and the app lists strategies at start-up).

``auto`` picks one per model and photo (:func:`choose_strategy`). Whatever the strategy,
pixels outside the hole are bit-identical to the input.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from engine.errors import InvalidInputError
from engine.highres.common import View
from engine.jobs import CancelToken
from engine.models.base import InpaintModel
from engine.registry import ModelSpec

#: Strategy name -> (module, what it does in one line).
STRATEGIES = {
    "original": ("engine.highres.original", "The model sees the whole photo at full size"),
    "resize": (
        "engine.highres.resize",
        "The photo is scaled to the model's size and the fill scaled back",
    ),
    "crop": (
        "engine.highres.crop",
        "Each hole is filled from a crop around it, at full resolution when possible",
    ),
    "cra": (
        "engine.highres.cra",
        "The downscaled fill plus the photo's own detail, borrowed into the hole with the "
        "model's attention",
    ),
}
AUTO_DESCRIPTION = "Let the engine choose for the model and the photo size"


def strategies_for(spec: ModelSpec) -> tuple[str, ...]:
    """Every strategy name a request for this model may give, ``auto`` first, no repeats."""
    return tuple(dict.fromkeys(("auto", *STRATEGIES, *spec.strategies)))


def describe(name: str) -> str:
    """One line for tooltips and help."""
    if name == "auto":
        return AUTO_DESCRIPTION
    return STRATEGIES[name][1] if name in STRATEGIES else f"The model's own strategy ({name})"


def check_strategy(spec: ModelSpec, name: str) -> None:
    """Raise :class:`InvalidInputError` unless ``name`` is a strategy of :func:`strategies_for`."""
    if name not in strategies_for(spec):
        choices = ", ".join(strategies_for(spec))
        raise InvalidInputError(
            f"Strategy {name!r} is not available for {spec.label}; choose one of {choices}."
        )


def choose_strategy(spec: ModelSpec, image_shape: tuple[int, ...]) -> str:
    """The strategy ``auto`` stands for.

    Classical models work at any resolution: crops around the holes at full
    resolution. A learned model sees the whole image when it fits its native
    size; larger photos go through the model's own high-resolution strategy
    when it has one (e.g. ``cra``), else crops around the holes.
    """
    if spec.native_size is None:
        return "crop"
    if max(image_shape[:2]) <= spec.native_size:
        return "original"
    if "cra" in spec.strategies:
        return "cra"
    return "crop"


def run_strategy(
    name: str,
    model: InpaintModel,
    image: np.ndarray,
    mask: np.ndarray,
    seeds: Sequence[int],
    cancel: CancelToken | None,
    report: Callable[[float], None],
) -> Iterator[np.ndarray]:
    """Yield one full-resolution result per seed using strategy ``name`` (not ``auto``)."""
    check_strategy(model.spec, name)
    if name not in STRATEGIES:
        raise InvalidInputError(f"Strategy {name!r} has no module in engine.highres.")
    module = importlib.import_module(STRATEGIES[name][0])
    return module.run(View(model, image, mask, seeds, cancel, report))
