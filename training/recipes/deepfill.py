"""Training recipe of DeepFill v1 (Yu et al., CVPR 2018; the authors' public code's losses).

Generator terms (unweighted; the configs weight them):

- ``discounted`` / ``coarse_discounted``: the spatially discounted L1 in the hole
  (:func:`training.losses.spatial_discount`, gamma from ``deepfill.gamma``, 0.9 as the
  public code), for the refined and the coarse output;
- ``valid`` / ``coarse_valid``: L1 on the known pixels (the public code's ``ae_loss``);
- ``hole`` / ``coarse_hole``: plain L1 in the hole (not in the paper, whose GAN teaches the
  hole's interior, where the discount leaves almost no L1: 0.9 ** 30 = 0.04);
- ``ssim``: 1 - SSIM of the refined composite, when weighted;
- ``gan`` (+ ``feature_match`` for the patch discriminator) when ``loss_weights.gan`` is
  non-zero (:mod:`training.recipes.coarse_to_fine`): the paper's local critic on each
  hole's bounding box plus a global critic, WGAN-GP with lambda 10 and one penalty per
  critic; or the shared patch discriminator.
"""

from __future__ import annotations

import torch
from torch import nn

from engine.models.deepfill import DeepFillModel
from training import adversarial, losses
from training.data import Batch
from training.recipes import LossContext, register_recipe
from training.recipes.coarse_to_fine import CoarseToFineRecipe, composite


@register_recipe
class DeepFillRecipe(CoarseToFineRecipe):
    """Discounted L1 + known-pixel L1 on both stages, WGAN-GP local + global critics."""

    model_id = "deepfill"
    model_class = DeepFillModel

    def wgan_critic(self, channels: int) -> nn.Module:
        return adversarial.LocalGlobalCritic(channels)

    def wgan_penalty(self, critic, real, fake, mask) -> torch.Tensor:
        # One penalty per critic (the public code's), not one on their sum.
        return losses.gradient_penalty(
            critic.local_score, real, fake, mask
        ) + losses.gradient_penalty(critic.global_, real, fake, mask)

    def generator_losses(
        self, generator: nn.Module, batch: Batch, ctx: LossContext
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        hole, target = batch.mask, batch.image
        coarse, refined, _weights = generator(target * (1 - hole), hole)
        coarse, refined = coarse.float(), refined.float()
        gamma = float(ctx.settings.get("deepfill", {}).get("gamma", 0.9))
        discount = losses.spatial_discount(hole, gamma)
        terms = {
            "discounted": losses.discounted_l1(refined, target, discount),
            "coarse_discounted": losses.discounted_l1(coarse, target, discount),
            "valid": losses.valid_l1(refined, target, hole),
            "coarse_valid": losses.valid_l1(coarse, target, hole),
            "hole": losses.hole_l1(refined, target, hole),
            "coarse_hole": losses.hole_l1(coarse, target, hole),
        }
        if ctx.loss_weights.get("ssim", 0):
            terms["ssim"] = losses.ssim_loss(composite(refined, batch), target)
        terms.update(self.adversarial_terms(refined, batch, ctx))
        return terms, refined
