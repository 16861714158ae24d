"""The shared adversarial machinery (training/adversarial.py) and its HiFill recipe path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from training import adversarial
from training.data import CropSampler, list_split
from training.smoke import synthetic_images, tiny_config
from training.trainer import Trainer, load_config


@pytest.fixture
def disc() -> adversarial.PatchDiscriminator:
    torch.manual_seed(0)
    # eval(): spectral norm's power iteration stays put, so calls can be compared.
    return adversarial.PatchDiscriminator(channels=8, levels=3).eval()


def batch(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(2, 3, 32, 32, generator=g)
    mask = torch.zeros(2, 1, 32, 32)
    mask[:, :, 8:20, 10:24] = 1
    return image, mask


def test_r1_penalty_is_computed_on_real_images_only(disc):
    real, mask = batch(0)
    fake_a, _ = batch(1)
    fake_b, _ = batch(2)
    a = adversarial.discriminator_loss(disc, real, fake_a, mask)
    b = adversarial.discriminator_loss(disc, real, fake_b, mask)
    assert a["r1"] > 0 and torch.equal(a["r1"], b["r1"])  # the fake never enters it
    assert not torch.equal(a["fake"], b["fake"])
    other_real, _ = batch(3)
    c = adversarial.discriminator_loss(disc, other_real, fake_a, mask)
    assert not torch.equal(a["r1"], c["r1"])
    fake = fake_a.clone().requires_grad_(True)
    penalty = adversarial.discriminator_loss(disc, real, fake, mask)["r1"]
    assert torch.autograd.grad(penalty, fake, allow_unused=True)[0] is None


def test_feature_matching_is_zero_when_fake_equals_real(disc):
    real, mask = batch(0)
    assert float(adversarial.feature_matching(disc, real, real.clone(), mask).detach()) == 0.0
    fake, _ = batch(1)
    assert float(adversarial.feature_matching(disc, fake, real, mask).detach()) > 0


def test_only_patches_that_see_the_hole_are_fake(disc):
    real, mask = batch(0)
    logits, _ = disc(real, mask)
    target = adversarial.fake_map(mask, logits)
    assert 0 < float(target.mean()) < 1 and set(target.unique().tolist()) == {0.0, 1.0}
    # Without a hole the generator has nothing to answer for.
    assert float(adversarial.generator_loss(disc, real, torch.zeros_like(mask)).detach()) == 0.0


def test_diff_augment_moves_every_image_and_the_mask_alike():
    real, mask = batch(0)
    g = torch.Generator().manual_seed(5)
    (a, b), moved = adversarial.diff_augment([real, real.clone()], mask, g)
    assert torch.equal(a, b) and not torch.equal(a, real)
    assert moved.shape == mask.shape and set(moved.unique().tolist()) <= {0.0, 1.0}


def test_hifill_trains_with_the_patch_discriminator(tmp_path: Path):
    photos = synthetic_images(tmp_path / "photos", count=6)
    config = tiny_config("pconv", photos, steps=2, log_every=1)
    hifill = load_config("hifill", Path("training/configs/hifill-adv.json"))
    hifill["model_config"].update(coarse_channels=4, refine_channels=4)
    hifill["data"], hifill["evaluate"] = config["data"], config["evaluate"]
    hifill["train"].update(config["train"])
    hifill["train"].pop("init_weights")
    trainer = Trainer(hifill, tmp_path / "run")
    assert isinstance(trainer.critic, adversarial.PatchDiscriminator)
    sampler = CropSampler(list_split(photos, "train"), 64, 128, 0.5)
    fixed = sampler.batch(np.random.default_rng(0), 2)
    trainer.ctx.extras["critic"] = trainer.critic
    terms, _ = trainer.recipe.generator_losses(trainer.generator, fixed, trainer.ctx)
    assert {"gan", "feature_match", "hole"} <= set(terms)
    trainer.fit(progress=False)
    log = (tmp_path / "run" / "log.csv").read_text().splitlines()
    assert "critic_r1" in log[0] and "feature_match" in log[0] and len(log) == 3


def test_deepfill_trains_with_local_and_global_wgan_critics(tmp_path: Path):
    photos = synthetic_images(tmp_path / "photos", count=6)
    config = tiny_config("deepfill", photos, steps=2, log_every=1)
    config["loss_weights"]["gan"] = 0.001
    trainer = Trainer(config, tmp_path / "run")
    assert isinstance(trainer.critic, adversarial.LocalGlobalCritic)
    trainer.fit(progress=False)
    log = (tmp_path / "run" / "log.csv").read_text().splitlines()
    assert "critic_gp" in log[0] and "critic_wgan" in log[0] and ",gan," in log[0]
    assert len(log) == 3


def test_local_critic_sees_only_each_items_hole_box():
    critic = adversarial.LocalGlobalCritic(channels=4)
    image = torch.rand(2, 3, 64, 64)
    mask = torch.zeros(2, 1, 64, 64)
    mask[0, :, 4:20, 8:40] = 1
    mask[1, :, 30:60, 30:50] = 1
    assert adversarial.hole_boxes(mask) == [(4, 8, 20, 40), (30, 30, 60, 50)]
    changed = image.clone()
    changed[0, :, 40:, :8] = torch.rand(3, 24, 8)  # outside item 0's box
    changed[1, :, :20, :20] = torch.rand(3, 20, 20)  # outside item 1's box
    assert torch.equal(critic.local_score(image, mask), critic.local_score(changed, mask))
    assert not torch.equal(critic.global_(image, mask), critic.global_(changed, mask))
