"""Recipes: how the one trainer trains each model.

A recipe says how to build a model's networks from its config and how to compute the
losses of one batch; the trainer (:mod:`training.trainer`) owns everything else (data,
masks, optimisers, bf16 autocast, DDP, checkpoints, logs) and is the same for every model.

Adding a model (e.g. ``hifill``):

1. Put the network and its engine wrapper in ``engine/models/hifill.py`` (a
   :class:`engine.models.torch_base.TorchInpaintModel` with a config dataclass) and its spec
   in ``engine/models/catalog.py``; training imports that network, so the trained net is the
   shipped one.
2. Write ``training/recipes/hifill.py``: subclass :class:`Recipe`, set ``model_id`` and
   ``model_class``, implement :meth:`Recipe.generator_losses` (and :meth:`Recipe.build_critic`
   / :meth:`Recipe.critic_losses` for an adversarial model), and decorate the class with
   ``@register_recipe``.
3. Import the module at the bottom of this file and add ``training/configs/hifill.json``
   (copy ``pconv.json``: ``model_config`` is the config dataclass as JSON; ``loss_weights``
   must name every loss term the recipe returns; a term without a weight is an error).

Loss terms are *unweighted*; the trainer multiplies them by ``loss_weights`` from the config
and sums them (``critic_loss_weights`` for the critic, default 1 each). Tensors follow the
engine: images ``(N, 3, H, W)`` in [0, 1], masks ``(N, 1, H, W)`` with 1 = hole.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from engine.models.torch_base import TorchInpaintModel, config_from_dict
from training.data import Batch


@dataclass
class LossContext:
    """What a recipe's loss functions may use besides the networks and the batch.

    Attributes:
        backbone: frozen feature network for perceptual/style losses (None if unused).
        settings: the full training config (read recipe-specific options from it).
        step: the current generator step.
        loss_weights: the loss weights in force at ``step`` (``loss_weights`` of the config
            with the ``train.loss_schedule`` entries reached so far applied).
        extras: free slot for recipe state that must not live on the networks.
    """

    backbone: nn.Module | None
    settings: dict
    step: int = 0
    loss_weights: dict[str, float] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)


class Recipe:
    """Base class of training recipes (see the module docstring)."""

    model_id: ClassVar[str]
    model_class: ClassVar[type[TorchInpaintModel]]
    # Loss terms that need the feature backbone (skipped entirely when their weights are 0).
    backbone_terms: ClassVar[tuple[str, ...]] = ()

    def model_config(self, values: dict) -> Any:
        """The model's config dataclass from the JSON ``model_config`` section."""
        return config_from_dict(self.model_class.config_class, values)

    def build_generator(self, model_config: Any) -> nn.Module:
        """The network that is exported (the engine wrapper's ``build``)."""
        return self.model_class.build(None, model_config)  # type: ignore[arg-type]

    def build_critic(self, model_config: Any, settings: dict | None = None) -> nn.Module | None:
        """An adversarial critic for the run with config ``settings``, or None (default: no
        GAN)."""
        return None

    def init_critic(self, critic: nn.Module, state: dict[str, torch.Tensor]) -> None:
        """Start ``critic`` from what a fine-tune's ``init_weights`` file ``state`` holds of it
        (default: nothing; Pluralistic's file holds its ranker)."""

    def uses_critic(self, settings: dict) -> bool:
        """Whether the run with config ``settings`` trains the critic (default: always when
        :meth:`build_critic` gives one; a recipe may skip it, e.g. when its GAN weight is 0)."""
        return True

    def generator_losses(
        self, generator: nn.Module, batch: Batch, ctx: LossContext
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Unweighted loss terms for the generator and its final prediction (N, 3, H, W)."""
        raise NotImplementedError

    def critic_losses(
        self, critic: nn.Module, generator: nn.Module, batch: Batch, ctx: LossContext
    ) -> dict[str, torch.Tensor]:
        """Unweighted loss terms for one critic step (only called if there is a critic)."""
        raise NotImplementedError

    def export_state(self, checkpoint: dict) -> dict[str, torch.Tensor]:
        """The weights a training checkpoint ships as (evaluation loads the same): the
        generator's (the ``train.average`` mean when the run keeps one); a recipe whose
        engine network also holds a trained critic (Pluralistic's ranker) adds it."""
        from training.trainer import generator_weights

        return generator_weights(checkpoint)

    def predict(
        self, generator: nn.Module, image: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """The raw prediction (N, 3, H, W) the engine composites; used by sanity checks."""
        out = generator(image * (1 - mask), mask)
        return out[-1] if isinstance(out, list | tuple) else out


_RECIPES: dict[str, type[Recipe]] = {}


def register_recipe(cls: type[Recipe]) -> type[Recipe]:
    """Class decorator adding a recipe to the registry under its ``model_id``."""
    _RECIPES[cls.model_id] = cls
    return cls


def get_recipe(model_id: str) -> Recipe:
    """A fresh recipe instance for ``model_id``; ValueError lists the known ones."""
    if model_id not in _RECIPES:
        raise ValueError(f"No training recipe for {model_id!r}; known: {', '.join(_RECIPES)}")
    return _RECIPES[model_id]()


def recipe_ids() -> list[str]:
    return list(_RECIPES)


# Recipes register themselves on import.
from training.recipes import deepfill, dfnet, hifill, pconv, pluralistic  # noqa: E402, F401
