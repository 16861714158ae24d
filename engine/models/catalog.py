"""Specs of every model the engine knows, in menu order.

This module must stay free of heavy imports: the app and ``main.py models``
read it at start-up. A model's code is imported from ``entry`` when it loads.
"""

from __future__ import annotations

from engine.registry import ModelSpec

TELEA = ModelSpec(
    id="telea",
    label="OpenCV Telea",
    description="Classical fast-marching fill (Telea 2004); no weights, best for thin scratches.",
    entry="engine.models.classical:ClassicalModel",
    paper="A. Telea, An Image Inpainting Technique Based on the Fast Marching Method, 2004",
)

NAVIER_STOKES = ModelSpec(
    id="navier-stokes",
    label="OpenCV Navier-Stokes",
    description="Classical fluid-dynamics fill (Bertalmio et al. 2001); no weights, smooth fills.",
    entry="engine.models.classical:ClassicalModel",
    paper="M. Bertalmio, A. Bertozzi, G. Sapiro, Navier-Stokes, Fluid Dynamics, and Image "
    "and Video Inpainting, CVPR 2001",
)

SPECS: tuple[ModelSpec, ...] = (TELEA, NAVIER_STOKES)
