"""Choice of the compute device for torch models."""

from __future__ import annotations

from engine.errors import DeviceError


def resolve_device(name: str) -> str:
    """Turn ``auto``/``cpu``/``cuda``/``mps`` into a device torch can use.

    ``auto`` picks CUDA, then Apple MPS, then the CPU. Asking for a device
    that is not there raises :class:`DeviceError` rather than silently
    falling back, so a user who asked for the GPU knows it was not used.
    """
    import torch

    cuda = torch.cuda.is_available()
    mps = bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
    if name == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    if name == "cuda" and not cuda:
        raise DeviceError("CUDA was requested but no CUDA GPU is available; use --device cpu.")
    if name == "mps" and not mps:
        raise DeviceError("Apple MPS was requested but is not available; use --device cpu.")
    if name not in ("cpu", "cuda", "mps"):
        raise DeviceError(f"Unknown device {name!r}; choose auto, cpu, cuda or mps.")
    return name
