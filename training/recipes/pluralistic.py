"""Training recipe of Pluralistic Image Completion (Zheng et al., CVPR 2019; the public code's
losses).

Every batch runs both paths through one encoder and one generator:

- reconstructive: z from the posterior q(z | I_c) of the hole's content; ``rec_l1`` is the
  L1 to the photo over the whole image at each output scale (summed over the scales), and
  ``kl_rec`` pulls q towards N(0, sigma_m^2), sigma_m = 1 / (1 + exp(8 (valid - 0.8))) for
  an item with a share ``valid`` of known pixels: the bigger the hole, the wider the
  assumed spread of its content;
- generative: z from the prior p(z | I_m) of the visible part; ``gen_l1`` is the L1 on the
  known pixels only (its hole may differ from the photo), and ``kl_gen`` =
  KL(q.detach() || p) teaches the prior the posterior's spread;
- ``gan_gen`` / ``gan_rec``: LSGAN generator terms of the two discriminators (one per path,
  :class:`Critic`) on the composites;
- with ``adversarial.kind: patch``, #13's shared machinery on the generative path's composite
  (the one the app shows), whose hole no L1 term reaches: ``patch_gan``, the non-saturating
  term of the mask-aware patch discriminator (:mod:`training.adversarial`, trained with R1
  and DiffAugment beside the two LSGAN discriminators, which stay: the generative one ships
  as the ranker), and ``feature_match``, its features of the fill against the photo's.

Both KL terms are means over the latent elements times the number of output scales, as the
public code (its ``lambda_kl * output_scale``). The generative path's discriminator ships in
the weights file as the ranker (:meth:`PluralisticRecipe.export_state`). The critic step
judges the generator's composites of the previous step (detached) against the photos of
this one: the discriminators see images only, and it saves a third forward pass.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from engine.models.pluralistic import Encoder, PluralisticModel, Ranker, composite
from training import adversarial
from training.data import Batch
from training.recipes import LossContext, Recipe, register_recipe


def gaussian_kl(
    mu_a: torch.Tensor, std_a: torch.Tensor, mu_b: torch.Tensor, std_b: torch.Tensor
) -> torch.Tensor:
    """KL(N(mu_a, std_a^2) || N(mu_b, std_b^2)) per element."""
    return torch.log(std_b / std_a) + (std_a**2 + (mu_a - mu_b) ** 2) / (2 * std_b**2) - 0.5


def hole_sigma(hole: torch.Tensor) -> torch.Tensor:
    """(N, 1, 1, 1) standard deviation of the reconstructive path's assumed N(0, sigma^2)."""
    valid = 1 - hole.float().mean((1, 2, 3), keepdim=True)
    return 1 / (1 + torch.exp(8 * (valid - 0.8)))


def pyramid(x: torch.Tensor, sizes: list[tuple[int, int]]) -> list[torch.Tensor]:
    """``x`` area-downscaled to each of ``sizes``."""
    return [x if s == tuple(x.shape[-2:]) else F.adaptive_avg_pool2d(x, s) for s in sizes]


def settle_spectral_norm(
    state: dict[str, torch.Tensor], iterations: int = 50
) -> dict[str, torch.Tensor]:
    """``state`` with each spectrally normalised weight's ``weight_u`` / ``weight_v`` made the
    leading singular vectors of its ``weight_orig`` by power iteration (from the stored ones)."""
    out = dict(state)
    for key, weight in state.items():
        if key != "weight_orig" and not key.endswith(".weight_orig"):
            continue
        prefix = key.removesuffix("weight_orig")
        w = weight.float().reshape(weight.shape[0], -1)
        u, v = state[prefix + "weight_u"].float(), state[prefix + "weight_v"].float()
        for _ in range(iterations):
            v = F.normalize(w.T @ u, dim=0, eps=1e-12)
            u = F.normalize(w @ v, dim=0, eps=1e-12)
        out[prefix + "weight_u"], out[prefix + "weight_v"] = u, v
    return out


class Critic(nn.Module):
    """The two discriminators: ``generative`` (shipped as the ranker) and ``reconstructive``;
    with ``patch_channels`` also the shared mask-aware ``patch`` discriminator."""

    def __init__(
        self, channels: int, levels: int, max_channels: int, patch_channels: int = 0
    ) -> None:
        super().__init__()
        self.generative = Ranker(channels, levels, max_channels)
        self.reconstructive = Ranker(channels, levels, max_channels)
        self.patch = adversarial.PatchDiscriminator(patch_channels) if patch_channels else None


@register_recipe
class PluralisticRecipe(Recipe):
    """Two paths, KL terms, multi-scale L1, two LSGAN discriminators."""

    model_id = "pluralistic"
    model_class = PluralisticModel

    def build_critic(self, model_config, settings: dict | None = None) -> nn.Module:
        patch = adversarial.patch_settings(settings or {})
        return Critic(
            model_config.ranker_channels,
            model_config.levels,
            model_config.max_channels,
            int(patch.get("channels", 32)) if patch is not None else 0,
        )

    def init_critic(self, critic: nn.Module, state: dict[str, torch.Tensor]) -> None:
        """The generative path's discriminator continues from the file's ranker."""
        ranker = {
            k.removeprefix("ranker."): v.float()
            for k, v in state.items()
            if k.startswith("ranker.")
        }
        if ranker:
            critic.generative.load_state_dict(ranker)

    @staticmethod
    def _augment(patch: dict, images: list[torch.Tensor], mask: torch.Tensor, ctx: LossContext):
        seed = int(ctx.settings["train"]["seed"])
        return adversarial.augment_for_critic(patch, images, mask, ctx.extras, seed)

    def paths(self, net: nn.Module, batch: Batch):
        """Both paths' outputs (lists, coarsest first) and the four Gaussians."""
        image, hole = batch.image, batch.mask
        n = image.shape[0]
        features = net.encoder(torch.cat([image, image]), torch.cat([hole, 1 - hole]))
        visible = [f[:n] for f in features]
        p_mu, p_std = Encoder.gaussian(net.encoder.prior, visible[-1])
        q_mu, q_std = Encoder.gaussian(net.encoder.posterior, features[-1][n:])
        z_gen = p_mu + p_std * torch.randn_like(p_std)
        z_rec = q_mu + q_std * torch.randn_like(q_std)
        outputs, _ = net.generator(
            torch.cat([z_gen, z_rec]), [torch.cat([f, f]) for f in visible], torch.cat([hole, hole])
        )
        gen = [o[:n].float() for o in outputs]
        rec = [o[n:].float() for o in outputs]
        return gen, rec, (p_mu, p_std), (q_mu, q_std)

    def generator_losses(
        self, generator: nn.Module, batch: Batch, ctx: LossContext
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        image, hole = batch.image, batch.mask
        gen, rec, (p_mu, p_std), (q_mu, q_std) = self.paths(generator, batch)
        sizes = [tuple(o.shape[-2:]) for o in gen]
        targets, holes = pyramid(image, sizes), pyramid(hole, sizes)
        scales = len(gen)
        sigma = hole_sigma(hole)
        scaled = list(zip(gen, rec, targets, holes, strict=True))
        zero = torch.zeros_like(q_mu)
        terms = {
            "rec_l1": sum((r - t).abs().mean() for _, r, t, _ in scaled),
            "gen_l1": sum(((g - t).abs() * (1 - m)).mean() for g, _, t, m in scaled),
            "kl_rec": gaussian_kl(q_mu, q_std, zero, sigma.expand_as(q_std)).mean() * scales,
            "kl_gen": gaussian_kl(q_mu.detach(), q_std.detach(), p_mu, p_std).mean() * scales,
        }
        fake_gen, fake_rec = composite(gen[-1], image, hole), composite(rec[-1], image, hole)
        critic = ctx.extras.get("critic")
        if critic is not None and float(ctx.loss_weights.get("gan_gen", 0)) > 0:
            terms["gan_gen"] = (critic.generative(fake_gen) - 1).pow(2).mean()
            terms["gan_rec"] = (critic.reconstructive(fake_rec) - 1).pow(2).mean()
        patch = adversarial.patch_settings(ctx.settings)
        if critic is not None and critic.patch is not None and patch is not None:
            (fake, real), mask = self._augment(patch, [fake_gen, image], hole, ctx)
            terms["patch_gan"] = adversarial.generator_loss(critic.patch, fake, mask)
            terms["feature_match"] = adversarial.feature_matching(critic.patch, fake, real, mask)
        # The critic's next step judges these (see the module docstring).
        ctx.extras["fakes"] = (fake_gen.detach(), fake_rec.detach(), hole)
        return terms, fake_gen

    def critic_losses(
        self, critic: nn.Module, generator: nn.Module, batch: Batch, ctx: LossContext
    ) -> dict[str, torch.Tensor]:
        ctx.extras["critic"] = critic
        fakes = ctx.extras.get("fakes")
        if fakes is None or fakes[0].shape != batch.image.shape:
            with torch.no_grad():
                gen, rec, _, _ = self.paths(generator, batch)
            fakes = (*(composite(o[-1], batch.image, batch.mask) for o in (gen, rec)), batch.mask)
        real = batch.image
        terms = {}
        for name, disc, fake in (
            ("gen", critic.generative, fakes[0]),
            ("rec", critic.reconstructive, fakes[1]),
        ):
            scores = disc(torch.cat([real, fake]))
            real_s, fake_s = scores.chunk(2)
            terms[f"d_{name}"] = 0.5 * ((real_s - 1).pow(2).mean() + fake_s.pow(2).mean())
        patch = adversarial.patch_settings(ctx.settings)
        if critic.patch is not None and patch is not None:
            # The fakes' own hole (they may be of the previous step's batch).
            (real, fake), mask = self._augment(patch, [real, fakes[0]], fakes[2], ctx)
            r1 = float(patch.get("r1", adversarial.R1_DEFAULT))
            patch_terms = adversarial.discriminator_loss(critic.patch, real, fake, mask, r1)
            terms.update({f"patch_{k}": v for k, v in patch_terms.items()})
        return terms

    def export_state(self, checkpoint: dict) -> dict[str, torch.Tensor]:
        """The generator's weights with the generative path's discriminator as the ranker.

        With ``train.average`` the mean of the weights comes with the mean of spectral norm's
        power-iteration vectors ``u`` and ``v``, which are not the singular vectors of the
        mean weight: the largest singular value would be underestimated and every layer
        scaled up (the fills came out saturated). They are recomputed for the mean weight
        (:func:`settle_spectral_norm`)."""
        state = settle_spectral_norm(dict(super().export_state(checkpoint)))
        critic = checkpoint.get("critic") or {}
        for key, value in critic.items():
            if key.startswith("generative."):
                state["ranker." + key.removeprefix("generative.")] = value
        return state

    def predict(
        self, generator: nn.Module, image: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        return generator(image * (1 - mask), mask)
