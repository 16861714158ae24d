"""Training recipe of DFNet: reconstruction losses at every fusion scale."""

from __future__ import annotations

import torch
from torch import nn

from engine.models.dfnet import DFNetModel, downscale
from training import losses
from training.data import Batch
from training.recipes import LossContext, Recipe, register_recipe
from training.recipes.common import FEATURE_TERMS, reconstruction_terms


@register_recipe
class DFNetRecipe(Recipe):
    """Per-scale hole/valid L1 (``scale_hole``/``scale_valid``, averaged over the coarser fusion
    scales) plus PConv's full set of terms on the full-resolution result (paper: L1 6,
    perceptual 0.1, style 240, TV 0.1)."""

    model_id = "dfnet"
    model_class = DFNetModel
    backbone_terms = FEATURE_TERMS

    def generator_losses(
        self, generator: nn.Module, batch: Batch, ctx: LossContext
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        hole, target = batch.mask, batch.image
        results = [r.float() for r in generator(target * (1 - hole), hole)]
        pred = results[-1]
        terms = reconstruction_terms(pred, target, hole, ctx.backbone, ctx.loss_weights)
        coarse = results[:-1]
        if coarse:
            scale_hole, scale_valid = [], []
            for r in coarse:
                f = target.shape[-1] // r.shape[-1]
                t_k, h_k = downscale(target, f), downscale(hole, f)
                scale_hole.append(losses.hole_l1(r, t_k, h_k))
                scale_valid.append(losses.valid_l1(r, t_k, h_k))
            terms["scale_hole"] = torch.stack(scale_hole).mean()
            terms["scale_valid"] = torch.stack(scale_valid).mean()
        return terms, pred
