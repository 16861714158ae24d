"""Training recipe of HiFill (Yi et al., CVPR 2020; public training code's losses).

Generator: L1 on hole and known pixels for the refined output and for the coarse output
(the coarse pair weighted 1.2x in the configs), optionally 1 - SSIM of the refined
composite (as the PConv / DFNet recipes), plus, when ``loss_weights.gan`` is non-zero, an
adversarial term. ``adversarial.kind`` picks it: ``wgan`` (default), the paper's global
critic trained with gradient penalty (lambda 10, GAN weight 0.001), or ``patch``, the
shared mask-aware patch discriminator of :mod:`training.adversarial` (non-saturating with
R1, feature matching as the ``feature_match`` term, DiffAugment). The ACM/ATM and the
residual aggregation have no parameters of their own to train: the attention is learned
through the refine network's reconstruction.
"""

from __future__ import annotations

import torch
from torch import nn

from engine.models.hifill import HiFillModel
from training import adversarial, losses
from training.data import Batch
from training.recipes import LossContext, Recipe, register_recipe

# WGAN-GP's gradient-penalty weight (Gulrajani et al.; HiFill and DeepFill use 10).
GP_LAMBDA = 10.0


class GlobalCritic(nn.Module):
    """WGAN critic on the whole image and its mask: stride-2 5x5 convs, LeakyReLU, no norm.

    (N, 3, H, W) image in [0, 1] and (N, 1, H, W) mask -> (N,) scores.
    """

    def __init__(self, channels: int = 32, levels: int = 5) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 4
        for i in range(levels):
            cout = channels * min(2**i, 4)
            layers += [nn.Conv2d(cin, cout, 5, 2, 2), nn.LeakyReLU(0.2)]
            cin = cout
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(cin, 1)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.body(torch.cat([image * 2 - 1, mask], 1))
        return self.head(x.mean(dim=(2, 3))).squeeze(1)


def _rng(ctx: LossContext) -> torch.Generator:
    """DiffAugment's own generator, seeded from the run's seed (the data stream's is not
    touched, so a run with augmentation sees the same batches as one without)."""
    return torch.Generator().manual_seed(int(ctx.settings["train"]["seed"]) + 7)


def _composite(pred: torch.Tensor, batch: Batch) -> torch.Tensor:
    return pred * batch.mask + batch.image * (1 - batch.mask)


@register_recipe
class HiFillRecipe(Recipe):
    """Coarse and refined L1 (hole and known pixels) + optional WGAN-GP global critic."""

    model_id = "hifill"
    model_class = HiFillModel

    def build_critic(self, model_config, settings: dict | None = None) -> nn.Module | None:
        patch = (settings or {}).get("adversarial", {})
        if patch.get("kind", "wgan") == "patch":
            return adversarial.PatchDiscriminator(int(patch.get("channels", 32)))
        return GlobalCritic()

    @staticmethod
    def _patch(ctx: LossContext) -> dict | None:
        """The ``adversarial`` settings when the patch discriminator is used, else None."""
        settings = ctx.settings.get("adversarial", {})
        return settings if settings.get("kind", "wgan") == "patch" else None

    def uses_critic(self, settings: dict) -> bool:
        # The CPU config leaves the adversarial term out (see its notes): no critic steps.
        from training.schedule import ever_weighted

        return ever_weighted(settings, "gan")

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
        if ctx.loss_weights.get("ssim", 0):
            terms["ssim"] = losses.ssim_loss(_composite(refined, batch), target)
        critic = ctx.extras.get("critic")
        if critic is not None and float(ctx.loss_weights.get("gan", 0)) > 0:
            fake = _composite(refined, batch)
            patch = self._patch(ctx)
            if patch is None:
                terms["gan"] = losses.wgan_generator_loss(critic(fake, hole))
            else:
                (fake, real), mask = self._augment(patch, [fake, target], hole, ctx)
                terms["gan"] = adversarial.generator_loss(critic, fake, mask)
                terms["feature_match"] = adversarial.feature_matching(critic, fake, real, mask)
        return terms, refined

    @staticmethod
    def _augment(patch: dict, images, mask, ctx: LossContext):
        if not patch.get("augment", True):
            return images, mask
        return adversarial.diff_augment(
            images, mask, ctx.extras.setdefault("augment_rng", _rng(ctx))
        )

    def critic_losses(
        self, critic: nn.Module, generator: nn.Module, batch: Batch, ctx: LossContext
    ) -> dict[str, torch.Tensor]:
        ctx.extras["critic"] = critic
        with torch.no_grad():
            fake = _composite(generator(batch.image * (1 - batch.mask), batch.mask)[1], batch)
        patch = self._patch(ctx)
        if patch is not None:
            (real, fake), mask = self._augment(patch, [batch.image, fake.float()], batch.mask, ctx)
            r1 = float(patch.get("r1", 10.0))
            return adversarial.discriminator_loss(critic, real, fake, mask, r1)
        real_score = critic(batch.image, batch.mask)
        fake_score = critic(fake.float(), batch.mask)
        penalty = losses.gradient_penalty(critic, batch.image, fake.float(), batch.mask)
        return {"wgan": losses.wgan_critic_loss(real_score, fake_score), "gp": GP_LAMBDA * penalty}

    def predict(
        self, generator: nn.Module, image: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        return generator(image * (1 - mask), mask)[1]
