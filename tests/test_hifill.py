"""HiFill network, its layers and its model class (untrained weights: shapes and flow only)."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from weights_util import install_untrained

from engine.jobs import InpaintRequest
from engine.layers.attention import AttentionTransfer, attention_scores, hole_cells, to_cells
from engine.layers.gated_conv import GatedConv2d
from engine.models.catalog import HIFILL
from engine.models.hifill import HiFillConfig, HiFillModel, HiFillNet
from engine.models.torch_base import known_error_correction
from engine.pipeline import Engine
from engine.registry import verified_weights_path

TINY = HiFillConfig(coarse_channels=4, refine_channels=4)


def _inputs(h: int = 64, w: int = 96) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, h, w, generator=gen)
    mask = torch.zeros(1, 1, h, w)
    mask[..., 16:40, 30:70] = 1
    return image, mask


@pytest.mark.parametrize("gate", ["single", "depthwise", "pixelwise", "none"])
@pytest.mark.parametrize("stride", [1, 2])
def test_gated_conv_shapes(gate, stride):
    layer = GatedConv2d(6, 10, 3, stride, dilation=2 if stride == 1 else 1, gate=gate)
    out = layer(torch.randn(2, 6, 32, 48))
    assert out.shape == (2, 10, 32 // stride, 48 // stride)
    if gate == "single":
        assert layer.gate.out_channels == 1  # one gate channel broadcast to all 10


@pytest.mark.parametrize("gate", ["single", "depthwise", "pixelwise", "none"])
def test_gated_conv_inference_equals_the_training_path(gate):
    # Without gradients the layer works in place: the same values, and a training step's
    # autograd graph (grad enabled) is still built from out-of-place operations.
    torch.manual_seed(0)
    layer = GatedConv2d(6, 10, 3, gate=gate, activation=torch.nn.ELU())
    x = torch.randn(2, 6, 24, 32, requires_grad=True)
    trained = layer(x)
    with torch.inference_mode():
        inferred = layer(x.detach())
    assert torch.equal(inferred, trained.detach())
    trained.sum().backward()  # the graph is intact
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_gates_are_lighter_than_the_features():
    def count(module):
        return sum(p.numel() for p in module.parameters())

    for gate in ("single", "depthwise", "pixelwise"):
        layer = GatedConv2d(32, 32, 3, gate=gate)
        assert count(layer.gate) < count(layer.feature) / 2


def test_attention_selects_the_identical_context_cell():
    feats = torch.randn(1, 8, 8, 12)  # 2 x 3 cells of 4 px
    feats[..., 0:4, 4:8] = feats[..., 4:8, 8:12]  # hole cell 1 == context cell 5
    mask = torch.zeros(1, 1, 8, 12)
    mask[..., 0:4, 4:8] = 1
    holes = hole_cells(mask, 4)
    scores = attention_scores(feats, holes)
    assert scores.shape == (1, 6, 6)
    assert scores[0, 1].argmax().item() == 5
    assert scores[0, :, 1].abs().max() == 0  # nobody borrows from the hole
    assert torch.allclose(scores.sum(-1), torch.ones(1, 6))


def test_attention_transfer_fills_only_hole_cells():
    x = torch.randn(1, 3, 8, 12)
    holes = torch.tensor([[False, True, False, False, False, False]])
    scores = torch.zeros(1, 6, 6)
    scores[0, 1, 4] = 1.0
    out = AttentionTransfer()(x, scores, holes, (2, 3))
    assert torch.equal(out[..., 0:4, 4:8], x[..., 4:8, 4:8])  # cell 4 = row 1, col 1
    keep = torch.ones(1, 1, 8, 12, dtype=torch.bool)
    keep[..., 0:4, 4:8] = False
    assert torch.equal(out.masked_select(keep), x.masked_select(keep))
    batched = AttentionTransfer()(
        x.repeat(2, 1, 1, 1), scores.repeat(2, 1, 1), holes.repeat(2, 1), (2, 3)
    )
    assert torch.allclose(batched[1:], out)
    assert torch.equal(to_cells(x, 4)[0, 4], x[0, :, 4:8, 4:8].reshape(-1))


def test_attention_transfer_pixel_fill_keeps_the_known_pixels_of_a_hole_cell():
    x = torch.randn(1, 3, 8, 12)
    holes = torch.tensor([[False, True, False, False, False, False]])
    scores = torch.zeros(1, 6, 6)
    scores[0, 1, 4] = 1.0
    fill = torch.zeros(1, 1, 8, 12, dtype=torch.bool)
    fill[..., 1:3, 5:7] = True  # 2 x 2 hole pixels inside cell 1 (rows 0-3, cols 4-7)
    out = AttentionTransfer()(x, scores, holes, (2, 3), fill)
    # The same offsets inside cell 4 (rows 4-7, cols 4-7) are copied in.
    assert torch.equal(out[..., 1:3, 5:7], x[..., 5:7, 5:7])
    assert torch.equal(out.masked_select(~fill), x.masked_select(~fill))


def test_attention_transfer_keeps_channels_last_and_matches_the_batched_path():
    """The single-image path writes moved cells into a copy of x in x's memory format (so
    the convolutions after it convert nothing) and equals the batched path."""
    x = torch.randn(1, 8, 16, 24).contiguous(memory_format=torch.channels_last)
    holes = torch.tensor([[False, True, False, False, True, False]])
    scores = torch.softmax(torch.randn(1, 6, 6), -1)
    fill = torch.zeros(1, 1, 16, 24, dtype=torch.bool)
    fill[..., 2:12, 9:14] = True
    fill[..., 9:15, 3:6] = True
    for f in (None, fill):
        out = AttentionTransfer()(x, scores, holes, (2, 3), f)
        assert out.is_contiguous(memory_format=torch.channels_last)
        batched = AttentionTransfer()(
            x.repeat(2, 1, 1, 1), scores.repeat(2, 1, 1), holes.repeat(2, 1), (2, 3),
            None if f is None else f.repeat(2, 1, 1, 1),
        )  # fmt: skip
        assert torch.allclose(batched[1:], out, atol=1e-6)


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_attention_transfer_batched_keeps_the_format_and_equals_the_cell_formula(memory_format):
    """Training (batch > 1): each hole cell becomes the score-weighted sum of all cells, the
    rest stay; the output keeps x's memory format, and values and gradients are those of
    that formula written out."""
    gen = torch.Generator().manual_seed(3)
    n, c, rows, cols, cell = 3, 4, 2, 3, 4
    x0 = torch.randn(n, c, rows * cell, cols * cell, generator=gen)
    logits0 = torch.randn(n, rows * cols, rows * cols, generator=gen)
    holes = torch.rand(n, rows * cols, generator=gen) < 0.5
    fill = torch.rand(n, 1, rows * cell, cols * cell, generator=gen) < 0.5

    def reference(x, scores, f):
        cells = x.reshape(n, c, rows, cell, cols, cell).permute(0, 2, 4, 1, 3, 5)
        cells = cells.reshape(n, rows * cols, -1)
        mixed = torch.where(holes[..., None], scores @ cells, cells)
        out = mixed.reshape(n, rows, cols, c, cell, cell).permute(0, 3, 1, 4, 2, 5)
        out = out.reshape(x.shape)
        return out if f is None else torch.where(f, out, x)

    for f in (None, fill):
        results = []
        for module in (True, False):
            x = x0.clone().contiguous(memory_format=memory_format).requires_grad_()
            logits = logits0.clone().requires_grad_()
            scores = torch.softmax(logits, -1)
            if module:
                out = AttentionTransfer()(x, scores, holes, (rows, cols), f)
            else:
                out = reference(x, scores, f)
            (out * torch.linspace(-1, 1, out.numel()).view(out.shape)).sum().backward()
            results.append((out.detach(), x.grad, logits.grad))
        (out, gx, gs), (ref, rgx, rgs) = results
        assert torch.equal(out, ref)
        assert torch.allclose(gx, rgx, atol=1e-6) and torch.allclose(gs, rgs, atol=1e-6)
    assert AttentionTransfer()(
        x0.contiguous(memory_format=memory_format), torch.softmax(logits0, -1), holes, (rows, cols)
    ).is_contiguous(memory_format=memory_format)


@pytest.mark.parametrize("transfer", ["pixel", "cell"])
def test_decoder_skips_keep_known_pixels_only_with_pixel_transfer(transfer):
    net = HiFillNet(dataclasses.replace(TINY, transfer=transfer))
    image, mask = _inputs()
    mask[..., 16:40, 30:70] = 0
    mask[..., 18:25, 33:39] = 1  # a small hole that leaves known pixels in its cells
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    net.refine.transfer.register_forward_hook(lambda _m, args, out: seen.append((args[0], out)))
    net(image, mask)
    assert len(seen) == 3
    for features, out in seen:
        hole_px = F.max_pool2d(mask, mask.shape[-1] // features.shape[-1]) > 0
        known = (~hole_px).expand_as(features)
        kept = torch.equal(out[known], features[known])
        assert kept == (transfer == "pixel")


def test_skip_transfer_starts_as_pixel_and_learns_its_shares_only_when_on():
    net = HiFillNet(dataclasses.replace(TINY, transfer="pixel"))
    image, mask = _inputs()
    gains = list(net.refine.hole_skip.gains)
    assert [n for n, _ in net.named_parameters()][-3:] == [
        f"refine.hole_skip.gains.{i}" for i in range(3)
    ]  # last: a checkpoint without them keeps its optimizer state's order
    pixel = net(image, mask)[1]
    pixel.mean().backward()
    assert all(g.grad is None for g in gains)  # Adam leaves them at zero
    net.reconfigure(dataclasses.replace(TINY, transfer="skip"))
    skip = net(image, mask)[1]
    assert torch.equal(skip, pixel)  # zero shares: the same function
    skip.mean().backward()
    assert all(g.grad is not None and g.grad.abs().sum() > 0 for g in gains)
    with torch.no_grad():
        gains[2].fill_(1.0)
    assert not torch.equal(net(image, mask)[1], pixel)


def test_reconfigure_switches_the_transfer_and_nothing_else():
    net = HiFillNet(dataclasses.replace(TINY, transfer="cell")).eval()
    image, mask = _inputs()
    mask[..., 16:40, 30:70] = 0
    mask[..., 18:25, 33:39] = 1
    with torch.no_grad():
        cell = net(image, mask)[1]
        net.reconfigure(TINY)
        pixel = net(image, mask)[1]
    assert net.config.transfer == "pixel" and not torch.equal(cell, pixel)
    with pytest.raises(ValueError, match="only 'transfer'"):
        net.reconfigure(dataclasses.replace(TINY, refine_channels=8))


def test_network_shapes_finite_and_trainable():
    net = HiFillNet(dataclasses.replace(TINY, transfer="skip"))  # every parameter in use
    image, mask = _inputs()
    coarse, refined, scores = net(image, mask)
    assert coarse.shape == refined.shape == image.shape
    assert scores.shape == (1, 24, 24)  # non-square 4 x 6 grid of 16 px cells
    assert torch.isfinite(refined).all() and refined.min() >= 0 and refined.max() <= 1
    (refined.mean() + coarse.mean()).backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None]
    assert not missing


def test_hole_content_does_not_matter():
    net = HiFillNet(TINY).eval()
    image, mask = _inputs()
    other = torch.where(mask.bool(), torch.rand_like(image), image)
    with torch.no_grad():
        a = net(image * (1 - mask), mask)[1]
        b = net(other * (1 - mask), mask)[1]
    assert torch.equal(a, b)


def test_scores_shared_across_scales():
    net = HiFillNet(TINY)
    seen: list[torch.Tensor] = []
    net.refine.transfer.register_forward_pre_hook(lambda _m, args: seen.append(args[1]))
    _, _, scores = net(*_inputs())
    assert len(seen) == 3  # ATM at 1/8, 1/4 and 1/2 of the working size
    assert all(s is scores for s in seen)  # the very same tensor object, computed once


@pytest.fixture
def untrained_weights(tmp_path, monkeypatch):
    """An UNTRAINED HiFill weights file + manifest (for flow tests; never shipped)."""
    torch.manual_seed(0)
    return install_untrained(tmp_path, monkeypatch, "hifill", HiFillNet(TINY), TINY)


def test_model_returns_its_attention(untrained_weights):
    model = HiFillModel(HIFILL, "cpu")
    model.load(untrained_weights)
    image = np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    mask = np.zeros((64, 96), bool)
    mask[10:30, 20:50] = True
    fill, attention = model.predict_with_attention(image, mask, 0)
    assert fill.shape == image.shape and fill.dtype == np.uint8
    assert attention is not None and attention.cell == 16
    assert attention.scores.shape == (24, 24)
    assert np.array_equal(model.predict(image, mask, 0), fill)


def test_engine_runs_hifill_with_cra(untrained_weights):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (600, 1100, 3), dtype=np.uint8)
    mask = np.zeros((600, 1100), bool)
    mask[200:330, 400:700] = True
    result = Engine().run(InpaintRequest(image, mask, "hifill", device="cpu"))
    assert result.strategy == "cra"
    out = result.images[0]
    assert out.shape == image.shape
    assert np.array_equal(out[~mask], image[~mask])


def test_known_error_correction_cancels_a_colour_error_the_net_also_made_on_known_pixels():
    torch.manual_seed(0)
    image = torch.rand(1, 3, 64, 96) * 0.6 + 0.2
    mask = torch.zeros(1, 1, 64, 96)
    mask[..., 10:40, 20:70] = 1
    mask[..., 50:54, 5:90] = 1  # a thin stroke as well
    shift = torch.tensor([0.1, -0.05, 0.08]).view(1, 3, 1, 1)
    out = known_error_correction(image + shift, image, mask)
    assert torch.allclose(out * mask, image * mask, atol=1e-5)  # the hole back to the truth
    assert torch.equal(out * (1 - mask), (image + shift) * (1 - mask))  # known: the net's own


def test_known_error_correction_takes_the_error_beside_each_part_of_the_border():
    image = torch.full((1, 3, 64, 128), 0.5)
    mask = torch.zeros(1, 1, 64, 128)
    mask[..., 20:44, 8:120] = 1  # a long hole: its left end far from its right end
    fill = image.clone()
    fill[..., :64] += 0.1  # the net is too bright on the left, right on the right
    out = known_error_correction(fill, image, mask)
    assert torch.allclose(out[..., 32, 10], image[..., 32, 10], atol=0.01)
    assert torch.allclose(out[..., 32, 118], fill[..., 32, 118], atol=0.01)
    assert torch.equal(out * (1 - mask), fill * (1 - mask))


def test_shipped_hifill_fills_a_flat_saturated_colour_in_that_colour():
    """The raw network turned a flat magenta into a lighter, greener one (green 71 for 40)."""
    model = HiFillModel(HIFILL, "cpu")
    model.load(verified_weights_path(HIFILL))
    rng = np.random.default_rng(0)
    colour = np.array([200, 40, 90])
    image = np.clip(colour + rng.normal(0, 4, (256, 256, 3)), 0, 255).astype(np.uint8)
    mask = np.zeros((256, 256), np.uint8)
    for _ in range(6):
        x0, y0, x1, y1 = (int(v) for v in rng.integers(0, 256, 4))
        cv2.line(mask, (x0, y0), (x1, y1), 255, int(rng.integers(6, 20)))
    hole = mask > 0
    fill = model.predict(image, hole, 0)[hole].mean(axis=0)
    assert np.abs(fill - image[hole].mean(axis=0)).max() < 8
