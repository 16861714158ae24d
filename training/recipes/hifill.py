"""Training recipe of HiFill (Yi et al., CVPR 2020; public training code's losses).

Generator: L1 on hole and known pixels for the refined output and for the coarse output
(the coarse pair weighted 1.2x in the configs), optionally 1 - SSIM of the refined
composite (as the PConv / DFNet recipes), PConv's perceptual and style terms of the refined
output and its composite when their weights are non-zero (#13: the style term's Gram
matrices ask for the photo's texture statistics, which L1 averages away), plus, when
``loss_weights.gan`` is non-zero, an adversarial term
(:mod:`training.recipes.coarse_to_fine`): the paper's global WGAN-GP critic (lambda 10, GAN
weight 0.001) or the shared patch discriminator. The ACM/ATM and the residual aggregation
have no parameters of their own to train: the attention is learned through the refine
network's reconstruction.
"""

from __future__ import annotations

import torch
from torch import nn

from engine.models.hifill import HiFillModel
from training import adversarial, losses
from training.data import Batch
from training.recipes import LossContext, register_recipe
from training.recipes.coarse_to_fine import CoarseToFineRecipe, composite
from training.recipes.common import FEATURE_TERMS, feature_terms


@register_recipe
class HiFillRecipe(CoarseToFineRecipe):
    """Coarse and refined L1 (hole and known pixels) + optional WGAN-GP global critic."""

    model_id = "hifill"
    model_class = HiFillModel
    backbone_terms = FEATURE_TERMS

    def wgan_critic(self, channels: int) -> nn.Module:
        return adversarial.GlobalCritic(channels)

    def generator_losses(
        self, generator: nn.Module, batch: Batch, ctx: LossContext
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        hole, target = batch.mask, batch.image
        coarse, refined, _scores = generator(target * (1 - hole), hole)
        coarse, refined = coarse.float(), refined.float()
        terms = {
            "hole": losses.hole_l1(refined, target, hole),
            "valid": losses.valid_l1(refined, target, hole),
            "coarse_hole": losses.hole_l1(coarse, target, hole),
            "coarse_valid": losses.valid_l1(coarse, target, hole),
        }
        comp = composite(refined, batch)
        if ctx.loss_weights.get("ssim", 0):
            terms["ssim"] = losses.ssim_loss(comp, target)
        terms.update(feature_terms(refined, comp, target, ctx.backbone, ctx.loss_weights))
        terms.update(self.adversarial_terms(refined, batch, ctx))
        return terms, refined
