"""What the HiFill and DeepFill recipes share: generators that return ``(coarse, refined,
attention)`` and an optional adversarial term on the refined composite.

``adversarial.kind`` picks the critic: ``wgan`` (default), the paper's own WGAN-GP critic
(:meth:`CoarseToFineRecipe.wgan_critic`; gradient penalty lambda 10), or ``patch``, the
shared mask-aware patch discriminator of :mod:`training.adversarial` (non-saturating with
R1, feature matching as the ``feature_match`` term, DiffAugment). The critic is only built
and trained when ``loss_weights.gan`` is non-zero at some step of the run.
"""

from __future__ import annotations

import torch
from torch import nn

from training import adversarial, losses
from training.data import Batch
from training.recipes import LossContext, Recipe
from training.schedule import ever_weighted


def composite(pred: torch.Tensor, batch: Batch) -> torch.Tensor:
    return pred * batch.mask + batch.image * (1 - batch.mask)


def total_score(scores: torch.Tensor | tuple[torch.Tensor, ...]) -> torch.Tensor:
    """A WGAN critic's (N,) scores, summed over its parts when it has several."""
    return scores if isinstance(scores, torch.Tensor) else torch.stack(scores).sum(0)


class CoarseToFineRecipe(Recipe):
    """Base of the HiFill and DeepFill recipes; subclasses give :meth:`generator_losses`'s
    reconstruction terms and their paper's :meth:`wgan_critic`."""

    def wgan_critic(self, channels: int) -> nn.Module:
        """The paper's WGAN critic: ``critic(image, mask)`` -> (N,) scores, or a tuple of
        them for a critic in parts (:func:`total_score`)."""
        raise NotImplementedError

    def wgan_penalty(
        self, critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """WGAN-GP's gradient penalty (unweighted; default: on the whole critic)."""
        return losses.gradient_penalty(lambda x, m: total_score(critic(x, m)), real, fake, mask)

    def build_critic(self, model_config, settings: dict | None = None) -> nn.Module | None:
        settings = settings or {}
        channels = int(settings.get("adversarial", {}).get("channels", 32))
        if adversarial.patch_settings(settings) is not None:
            return adversarial.PatchDiscriminator(channels)
        return self.wgan_critic(channels)

    def uses_critic(self, settings: dict) -> bool:
        # The CPU configs leave the adversarial term out (see their notes): no critic steps.
        return ever_weighted(settings, "gan")

    @staticmethod
    def _augment(patch: dict, images: list[torch.Tensor], mask: torch.Tensor, ctx: LossContext):
        seed = int(ctx.settings["train"]["seed"])
        return adversarial.augment_for_critic(patch, images, mask, ctx.extras, seed)

    def adversarial_terms(
        self, refined: torch.Tensor, batch: Batch, ctx: LossContext
    ) -> dict[str, torch.Tensor]:
        """``gan`` (and ``feature_match`` for the patch discriminator) of the generator step,
        or nothing when the critic is off."""
        critic = ctx.extras.get("critic")
        if critic is None or float(ctx.loss_weights.get("gan", 0)) <= 0:
            return {}
        fake = composite(refined, batch)
        patch = adversarial.patch_settings(ctx.settings)
        if patch is None:
            return {"gan": losses.wgan_generator_loss(total_score(critic(fake, batch.mask)))}
        (fake, real), mask = self._augment(patch, [fake, batch.image], batch.mask, ctx)
        return {
            "gan": adversarial.generator_loss(critic, fake, mask),
            "feature_match": adversarial.feature_matching(critic, fake, real, mask),
        }

    def critic_losses(
        self, critic: nn.Module, generator: nn.Module, batch: Batch, ctx: LossContext
    ) -> dict[str, torch.Tensor]:
        ctx.extras["critic"] = critic
        real, hole = batch.image, batch.mask
        with torch.no_grad():
            fake = composite(generator(real * (1 - hole), hole)[1].float(), batch)
        patch = adversarial.patch_settings(ctx.settings)
        if patch is not None:
            (real, fake), mask = self._augment(patch, [real, fake], hole, ctx)
            r1 = float(patch.get("r1", adversarial.R1_DEFAULT))
            return adversarial.discriminator_loss(critic, real, fake, mask, r1)
        real_score, fake_score = total_score(critic(real, hole)), total_score(critic(fake, hole))
        return {
            "wgan": losses.wgan_critic_loss(real_score, fake_score),
            "gp": adversarial.GP_LAMBDA * self.wgan_penalty(critic, real, fake, hole),
        }

    def predict(
        self, generator: nn.Module, image: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        return generator(image * (1 - mask), mask)[1]
