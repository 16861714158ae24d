"""The model registry: what models exist, what they can do, and whether they can run.

A model is described by a :class:`ModelSpec`; the specs live in
:mod:`engine.models.catalog` and carry no heavy imports, so listing models
never imports torch. The class that implements a model is imported only when
the model is loaded (``spec.entry`` = ``"module:Class"``).

Weights ship as ``resources/weights/<file>.safetensors`` and are listed in
``resources/weights/manifest.json`` with their sha256; a file whose hash does
not match the manifest is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from engine.errors import UnknownModelError, WeightsError

WEIGHTS_DIR_ENV = "INPAINT_STUDIO_WEIGHTS"
_DEFAULT_WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "resources" / "weights"


@dataclass(frozen=True)
class ModelSpec:
    """What the app, the CLI and the pipeline need to know about a model.

    Attributes:
        id: stable identifier used on the command line and in settings.
        label: short name for menus.
        description: one line for tooltips and ``main.py models``.
        entry: ``"module:Class"`` implementing :class:`engine.models.base.InpaintModel`.
        native_size: side the network was trained at (it sees at most
            ``native_size`` x ``native_size`` pixels per pass), or None for
            methods that work at any resolution (classical ones).
        size_multiple: the working image's sides must be multiples of this
            (the pipeline pads).
        multi_sample: the model draws genuinely different completions per seed.
        needs_weights: the model cannot run without its weights file.
        weights_file: file name under the weights folder, if any.
        strategies: high-resolution strategies the model is built for; ``auto``
            picks ``cra`` for photos larger than the native size when it is listed
            (every model may still be asked for any shared strategy).
        default: the model the app and CLI pick when the user names none.
        uses_torch: runs on the request's torch device (classical models run on the CPU).
        paper: citation of the method.
    """

    id: str
    label: str
    description: str
    entry: str
    native_size: int | None = None
    size_multiple: int = 1
    multi_sample: bool = False
    needs_weights: bool = False
    weights_file: str | None = None
    strategies: tuple[str, ...] = field(default_factory=tuple)
    default: bool = False
    uses_torch: bool = False
    paper: str = ""

    @property
    def weights_sha256(self) -> str | None:
        entry = manifest().get(self.id)
        return entry.get("sha256") if entry else None

    @property
    def weights_path(self) -> Path | None:
        return weights_dir() / self.weights_file if self.weights_file else None


def weights_dir() -> Path:
    """Folder of the weights files and their manifest (``$INPAINT_STUDIO_WEIGHTS`` overrides)."""
    override = os.environ.get(WEIGHTS_DIR_ENV)
    return Path(override) if override else _DEFAULT_WEIGHTS_DIR


def manifest() -> dict[str, dict]:
    """The weights manifest: model id -> {file, sha256, size, config, data, metrics, ...}."""
    return _read_manifest(weights_dir() / "manifest.json")


@cache
def _read_manifest_cached(path: Path, mtime_ns: int) -> dict[str, dict]:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _read_manifest(path: Path) -> dict[str, dict]:
    try:
        mtime = path.stat().st_mtime_ns
    except FileNotFoundError:
        return {}
    try:
        data = _read_manifest_cached(path, mtime)
    except (OSError, ValueError) as exc:
        raise WeightsError(f"The weights manifest {path} cannot be read: {exc}") from exc
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise WeightsError(
            f"The weights manifest {path} is not a map of model ids to entries; "
            "reinstall it (resources/weights/manifest.json)."
        )
    return data


def _specs() -> dict[str, ModelSpec]:
    from engine.models.catalog import SPECS

    return {spec.id: spec for spec in SPECS}


def list_models() -> list[ModelSpec]:
    """All registered models, default first, then in catalog order."""
    specs = list(_specs().values())
    return sorted(specs, key=lambda s: not s.default)


def get_spec(model_id: str) -> ModelSpec:
    """The spec of ``model_id``; raises :class:`UnknownModelError` with the known ids."""
    specs = _specs()
    if model_id not in specs:
        known = ", ".join(specs)
        raise UnknownModelError(f"Unknown model {model_id!r}; available models: {known}.")
    return specs[model_id]


def default_model_id() -> str:
    """The default model if it can run, else the first model that can (the classical fallback)."""
    models = list_models()
    for spec in models:
        if unavailable_reason(spec) is None:
            return spec.id
    return models[0].id


def unavailable_reason(spec: ModelSpec) -> str | None:
    """None if the model can run, else a sentence saying why not (cheap: no hashing)."""
    if not spec.needs_weights:
        return None
    path = spec.weights_path
    if path is None or not path.is_file():
        return (
            f"Weights file {spec.weights_file} is not installed; "
            f"train it with `python -m training reproduce {spec.id}`."
        )
    if spec.weights_sha256 is None:
        return f"Weights file {spec.weights_file} is not listed in the weights manifest."
    return None


def quality_gap(spec: ModelSpec) -> str | None:
    """None if the model's shipped weights meet the project's quality bar (or it has none),
    else how far they fall short, from the manifest (``metrics.gap``)."""
    metrics = manifest().get(spec.id, {}).get("metrics", {})
    if not isinstance(metrics, dict) or metrics.get("meets_quality_bar", True):
        return None
    return str(metrics.get("gap") or "below the quality bar on the validation photos")


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verified_weights_path(spec: ModelSpec) -> Path:
    """The model's weights file after checking it against the manifest.

    Raises :class:`WeightsError` if the file is missing, unlisted or its sha256
    differs from the manifest (a tampered or truncated file is never loaded).
    """
    reason = unavailable_reason(spec)
    if reason is not None:
        raise WeightsError(f"{spec.label}: {reason}")
    path = spec.weights_path
    assert path is not None
    actual = sha256_file(path)
    if actual != spec.weights_sha256:
        raise WeightsError(
            f"{spec.label}: weights file {path.name} does not match the manifest "
            f"(sha256 {actual[:12]}… instead of {spec.weights_sha256[:12]}…); "
            "it may be corrupt or tampered with. Reinstall or retrain it."
        )
    return path
