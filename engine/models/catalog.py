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

PATCHMATCH = ModelSpec(
    id="patchmatch",
    label="PatchMatch",
    description="Classical patch copying (Barnes et al. 2009); no weights, rebuilds the hole "
    "from the photo's own texture. Slow on large holes.",
    entry="engine.models.classical:PatchMatchModel",
    paper="C. Barnes, E. Shechtman, A. Finkelstein, D. B. Goldman, PatchMatch: A Randomized "
    "Correspondence Algorithm for Structural Image Editing, SIGGRAPH 2009",
)

HIFILL = ModelSpec(
    id="hifill",
    label="HiFill",
    description="Thin coarse-to-fine network with attention; contextual residual aggregation "
    "takes it to photos up to 8K. Beats OpenCV Telea in L1 and SSIM on held-out photos; "
    "its fills are smoother than PatchMatch's.",
    entry="engine.models.hifill:HiFillModel",
    native_size=512,
    size_multiple=16,
    needs_weights=True,
    weights_file="hifill.safetensors",
    strategies=("cra",),
    uses_torch=True,
    default=True,
    paper="Z. Yi, Q. Tang, S. Azizi, D. Jang, Z. Xu, Contextual Residual Aggregation for Ultra "
    "High-Resolution Image Inpainting, CVPR 2020",
)

PCONV = ModelSpec(
    id="pconv",
    label="PConv",
    description="U-Net of partial convolutions (Liu et al. 2018); fills irregular holes from "
    "the valid pixels only. Level with OpenCV Telea on held-out photos; smooth fills.",
    entry="engine.models.pconv:PConvModel",
    native_size=256,  # the crop size it was trained at
    size_multiple=256,  # 8 stride-2 levels
    needs_weights=True,
    weights_file="pconv.safetensors",
    uses_torch=True,
    paper="G. Liu, F. A. Reda, K. J. Shih, T.-C. Wang, A. Tao, B. Catanzaro, Image Inpainting "
    "for Irregular Holes Using Partial Convolutions, ECCV 2018",
)

DFNET = ModelSpec(
    id="dfnet",
    label="DFNet",
    description="U-Net with fusion blocks (Hong et al. 2019): learned alpha blending gives "
    "seamless hole borders. Level with OpenCV Telea on held-out photos; smooth fills.",
    entry="engine.models.dfnet:DFNetModel",
    native_size=256,  # the crop size it was trained at
    size_multiple=256,  # 8 stride-2 levels
    needs_weights=True,
    weights_file="dfnet.safetensors",
    uses_torch=True,
    paper="X. Hong, P. Xiong, R. Ji, H. Fan, Deep Fusion Network for Image Completion, "
    "ACM Multimedia 2019",
)

DEEPFILL = ModelSpec(
    id="deepfill",
    label="DeepFill",
    description="Coarse-to-fine network whose contextual attention copies features from "
    "the known parts of the photo (Yu et al. 2018); cra takes it to 8K.",
    entry="engine.models.deepfill:DeepFillModel",
    native_size=512,
    size_multiple=16,
    needs_weights=True,
    weights_file="deepfill.safetensors",
    strategies=("cra",),
    uses_torch=True,
    paper="J. Yu, Z. Lin, J. Yang, X. Shen, X. Lu, T. S. Huang, Generative Image Inpainting "
    "with Contextual Attention, CVPR 2018",
)

PLURALISTIC = ModelSpec(
    id="pluralistic",
    label="Pluralistic",
    description="Many different plausible fills of one hole (Zheng et al. 2019): pick the "
    "one you like from the gallery; each sample is the best of its draws by the model's "
    "own discriminator.",
    entry="engine.models.pluralistic:PluralisticModel",
    native_size=256,  # the crop size it was trained at
    size_multiple=32,  # 5 stride-2 levels
    multi_sample=True,
    needs_weights=True,
    weights_file="pluralistic.safetensors",
    strategies=("cra",),
    uses_torch=True,
    paper="C. Zheng, T.-J. Cham, J. Cai, Pluralistic Image Completion, CVPR 2019",
)

SPECS: tuple[ModelSpec, ...] = (
    TELEA,
    NAVIER_STOKES,
    PATCHMATCH,
    PCONV,
    DFNET,
    HIFILL,
    DEEPFILL,
    PLURALISTIC,
)
