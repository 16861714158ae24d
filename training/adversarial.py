"""Adversarial machinery shared by every recipe: a mask-aware patch discriminator, its
non-saturating loss with R1, discriminator feature matching and DiffAugment.

What LaMa (Suvorov et al. 2022) and DeepFill v2 train with, rather than the WGAN-GP
global critic at weight 0.001 of HiFill's and DeepFill v1's papers, which is too weak to
sharpen anything (shared/METHODS.md §6):

- :class:`PatchDiscriminator`: spectrally normalised stride-2 convolutions over the
  image and its mask; one logit per patch. Patches that see hole pixels of a fake are
  fake, every other patch is real (the mask is the fake target map), so the known part
  of a composite does not teach the discriminator anything false.
- :func:`discriminator_loss`: non-saturating logistic loss plus the R1 penalty
  (Mescheder et al. 2018), the squared gradient norm on *real* images only.
- :func:`generator_loss`: the non-saturating loss on the fake patches.
- :func:`feature_matching`: L1 between the discriminator's features of the fake and of
  the real image (zero when they are equal), inside the hole.
- :func:`diff_augment`: the same random colour shift and translation for real and fake
  before the discriminator sees them (Zhao et al. 2020), so a small photo set does not
  let it memorise the photos.

And the papers' own WGAN-GP critics, for the recipes that reproduce them:
:class:`GlobalCritic` (HiFill, DeepFill's global critic) and :class:`LocalGlobalCritic`
(DeepFill v1: a local critic on each hole's bounding box beside the global one).

Images are (N, 3, H, W) in [0, 1], masks (N, 1, H, W) with 1 = hole.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm


class PatchDiscriminator(nn.Module):
    """Mask-aware patch discriminator (spectral norm, LeakyReLU 0.2).

    ``forward`` gives logits (N, 1, H / 2**levels, W / 2**levels) and the features of every
    level (for :func:`feature_matching`).
    """

    def __init__(self, channels: int = 32, levels: int = 4) -> None:
        super().__init__()
        self.levels = levels
        blocks = []
        cin = 4
        for i in range(levels):
            cout = channels * min(2**i, 8)
            blocks.append(
                nn.Sequential(spectral_norm(nn.Conv2d(cin, cout, 4, 2, 1)), nn.LeakyReLU(0.2))
            )
            cin = cout
        self.blocks = nn.ModuleList(blocks)
        self.head = spectral_norm(nn.Conv2d(cin, 1, 3, 1, 1))

    def forward(
        self, image: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = torch.cat([image * 2 - 1, mask], 1)
        features = []
        for block in self.blocks:
            x = block(x)
            features.append(x)
        return self.head(x), features


def fake_map(mask: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """1 where a logit's patch holds hole pixels (the mask max-pooled to the logits' size)."""
    return F.adaptive_max_pool2d(mask.float(), logits.shape[-2:])


# LaMa's gp_coef 0.001 on E|grad|^2 is this r1 / 2; at 10 (5,000x stronger) the critic stayed at
# chance in every run measured (docs/measurements.md, 2026-12-04), so 10 is no default.
R1_DEFAULT = 0.002


def discriminator_loss(
    disc: nn.Module,
    real: torch.Tensor,
    fake: torch.Tensor,
    mask: torch.Tensor,
    r1_weight: float = R1_DEFAULT,
) -> dict[str, torch.Tensor]:
    """Unweighted terms of one discriminator step: ``real``, ``fake`` and ``r1``.

    ``fake`` is the composite (known pixels from the photo); only its patches that see the
    hole count as fake. R1 = ``r1_weight`` / 2 * E ||grad_x D(x)||^2 over real images.
    """
    real = real.detach().requires_grad_(r1_weight > 0)
    # One pass over both halves: spectral norm's power iteration then updates once per step
    # and real and fake are judged by the same weights.
    logits, _ = disc(torch.cat([real, fake.detach()]), torch.cat([mask, mask]))
    real_logits, fake_logits = logits.chunk(2)
    target = fake_map(mask, fake_logits)
    terms = {
        "real": F.softplus(-real_logits).mean(),
        "fake": (F.softplus(fake_logits) * target + F.softplus(-fake_logits) * (1 - target)).mean(),
    }
    if r1_weight > 0:
        terms["r1"] = r1_weight / 2 * r1_penalty(real_logits, real)
    return terms


def r1_penalty(real_logits: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """E ||d sum(D(x)) / dx||^2 over the batch of real images ``real`` (requires grad)."""
    (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


def generator_loss(disc: nn.Module, fake: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss on the fake (hole) patches of the composite."""
    logits, _ = disc(fake, mask)
    target = fake_map(mask, logits)
    return (F.softplus(-logits) * target).sum() / target.sum().clamp_min(1.0)


def feature_matching(
    disc: nn.Module, fake: torch.Tensor, real: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """Mean L1 between the discriminator's features of ``fake`` and of ``real`` (detached)
    at every level, weighted to the patches that see the hole; 0 when fake equals real."""
    _, features = disc(torch.cat([fake, real.detach()]), torch.cat([mask, mask]))
    total = fake.new_zeros(())
    for both in features:
        f, r = both.chunk(2)
        r = r.detach()
        weight = fake_map(mask, f)
        total = total + ((f - r).abs() * weight).sum() / (weight.sum() * f.shape[1]).clamp_min(1)
    return total / len(features)


def diff_augment(
    images: list[torch.Tensor], mask: torch.Tensor, generator: torch.Generator | None = None
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The same random brightness, saturation, contrast and translation (up to 1/8 of the
    side, edges replicated) for every image of ``images`` and the mask."""
    n, _, h, w = mask.shape
    dev = mask.device

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator).to(dev)

    brightness, saturation, contrast = (
        rand(n, 1, 1, 1) - 0.5,
        rand(n, 1, 1, 1) * 2,
        rand(n, 1, 1, 1) + 0.5,
    )
    shift = ((rand(n, 2) * 2 - 1) * torch.tensor([h / 8, w / 8], device=dev)).round().long()
    ys = (torch.arange(h, device=dev)[None, :] - shift[:, :1]).clamp(0, h - 1)
    xs = (torch.arange(w, device=dev)[None, :] - shift[:, 1:]).clamp(0, w - 1)

    def move(t: torch.Tensor) -> torch.Tensor:
        t = torch.gather(t, 2, ys[:, None, :, None].expand(-1, t.shape[1], -1, w))
        return torch.gather(t, 3, xs[:, None, None, :].expand(-1, t.shape[1], h, -1))

    out = []
    for x in images:
        x = x + brightness
        mean = x.mean(1, keepdim=True)
        x = (x - mean) * saturation + mean
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * contrast + mean
        out.append(move(x))
    return out, move(mask)


def patch_settings(settings: dict) -> dict | None:
    """A run's ``adversarial`` settings when it uses :class:`PatchDiscriminator`
    (``adversarial.kind: patch``), else None."""
    adv = settings.get("adversarial", {})
    return adv if adv.get("kind") == "patch" else None


def augment_for_critic(
    patch: dict, images: list[torch.Tensor], mask: torch.Tensor, extras: dict, seed: int
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """:func:`diff_augment` unless ``patch["augment"]`` is false, drawing from a generator of
    its own kept in ``extras`` (seeded from ``seed``): the data stream's is not touched, so a
    run with augmentation sees the same batches as one without."""
    if not patch.get("augment", True):
        return images, mask
    rng = extras.setdefault("augment_rng", torch.Generator().manual_seed(seed + 7))
    return diff_augment(images, mask, rng)


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


def hole_boxes(mask: torch.Tensor) -> list[tuple[int, int, int, int]]:
    """Bounding box ``(top, left, bottom, right)`` (exclusive) of each item's hole; the whole
    image for an item without one."""
    boxes = []
    h, w = mask.shape[-2:]
    for m in mask[:, 0] > 0.5:
        rows, cols = m.any(1).nonzero(), m.any(0).nonzero()
        if len(rows) == 0:
            boxes.append((0, 0, h, w))
        else:
            boxes.append((int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1))
    return boxes


def crop_boxes(x: torch.Tensor, boxes: list[tuple[int, int, int, int]], size: int) -> torch.Tensor:
    """Each item's box of ``x`` (N, C, H, W), resized (bilinear) to ``size x size``."""
    crops = [
        F.interpolate(
            x[i : i + 1, :, top:bottom, left:right],
            (size, size),
            mode="bilinear",
            align_corners=False,
        )
        for i, (top, left, bottom, right) in enumerate(boxes)
    ]
    return torch.cat(crops)


class LocalGlobalCritic(nn.Module):
    """DeepFill v1's two WGAN critics: ``local`` sees each item's hole bounding box scaled to
    half the image side, ``global_`` the whole image. ``forward`` -> (local, global) scores,
    each (N,); the WGAN losses use their sum, the gradient penalty is taken per critic."""

    def __init__(self, channels: int = 32) -> None:
        super().__init__()
        self.local = GlobalCritic(channels, levels=4)
        self.global_ = GlobalCritic(channels, levels=5)

    def local_score(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        boxes = hole_boxes(mask)
        size = max(8, image.shape[-1] // 2)
        return self.local(crop_boxes(image, boxes, size), crop_boxes(mask, boxes, size))

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.local_score(image, mask), self.global_(image, mask)
