"""Loss terms shared by the PConv-family recipes (PConv, DFNet); the feature terms also by
HiFill."""

from __future__ import annotations

import torch

from training import losses


def reconstruction_terms(
    pred: torch.Tensor,
    target: torch.Tensor,
    hole: torch.Tensor,
    ctx_backbone: torch.nn.Module | None,
    weights: dict[str, float],
) -> dict[str, torch.Tensor]:
    """PConv's loss terms (unweighted) for one full-resolution prediction.

    ``hole``/``valid`` L1, ``tv`` on the composite, ``ssim`` (1 - SSIM of the composite, the
    evaluation's measure) when its weight is non-zero, and when the backbone is given and their
    weights are non-zero: ``perceptual`` (output and composite) and ``style_out``/``style_comp``.
    """
    comp = pred * hole + target * (1 - hole)
    terms = {
        "hole": losses.hole_l1(pred, target, hole),
        "valid": losses.valid_l1(pred, target, hole),
        "tv": losses.total_variation(comp, hole),
    }
    if weights.get("ssim", 0):
        terms["ssim"] = losses.ssim_loss(comp, target)
    terms.update(feature_terms(pred, comp, target, ctx_backbone, weights))
    return terms


FEATURE_TERMS = ("perceptual", "style_out", "style_comp")


def feature_terms(
    pred: torch.Tensor,
    comp: torch.Tensor,
    target: torch.Tensor,
    backbone: torch.nn.Module | None,
    weights: dict[str, float],
) -> dict[str, torch.Tensor]:
    """PConv's perceptual and style terms (unweighted) of an output and its composite, or
    none when there is no backbone or all their weights are 0."""
    if backbone is None or not any(weights.get(k, 0) for k in FEATURE_TERMS):
        return {}
    n = pred.shape[0]
    with torch.no_grad():
        f_gt = backbone(target)
    feats = backbone(torch.cat([pred, comp], dim=0))
    f_out = [f[:n] for f in feats]
    f_comp = [f[n:] for f in feats]
    return {
        "perceptual": losses.perceptual(f_out, f_gt) + losses.perceptual(f_comp, f_gt),
        "style_out": losses.style(f_out, f_gt),
        "style_comp": losses.style(f_comp, f_gt),
    }
