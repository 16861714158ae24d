"""Untrained weights files for flow tests (never shipped)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from engine.registry import WEIGHTS_DIR_ENV, sha256_file


def install_untrained(
    folder: Path, monkeypatch: pytest.MonkeyPatch, model_id: str, net: torch.nn.Module, config
) -> Path:
    """Write ``net``'s weights with ``config`` in the metadata as ``<model_id>.safetensors``
    and a manifest listing it in ``folder``, and point the engine's weights folder there."""
    path = folder / f"{model_id}.safetensors"
    state = {k: v.contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(path), metadata={"config": json.dumps(dataclasses.asdict(config))})
    manifest = {model_id: {"file": path.name, "sha256": sha256_file(path)}}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(folder))
    return path
