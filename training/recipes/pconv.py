"""Training recipe of PConv: the paper's losses on one full-resolution prediction."""

from __future__ import annotations

import torch
from torch import nn

from engine.models.pconv import PConvModel
from training.data import Batch
from training.recipes import LossContext, Recipe, register_recipe
from training.recipes.common import FEATURE_TERMS, reconstruction_terms


@register_recipe
class PConvRecipe(Recipe):
    """L_valid + 6 L_hole + 0.05 L_perc + 120 (L_style_out + L_style_comp) + 0.1 L_tv (paper)."""

    model_id = "pconv"
    model_class = PConvModel
    backbone_terms = FEATURE_TERMS

    def generator_losses(
        self, generator: nn.Module, batch: Batch, ctx: LossContext
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        hole = batch.mask
        pred = generator(batch.image * (1 - hole), hole).float()
        terms = reconstruction_terms(pred, batch.image, hole, ctx.backbone, ctx.loss_weights)
        return terms, pred
