"""The partial convolution layer: hole independence, mask update rule, plain-conv equivalence."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.layers.partial_conv import PartialConv2d


def _layer(c_in=3, c_out=5, k=3, stride=1, padding=1, bias=True, seed=0) -> PartialConv2d:
    torch.manual_seed(seed)
    return PartialConv2d(c_in, c_out, k, stride, padding, bias=bias)


def _mask(h=12, w=12, seed=0, channels=1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    valid = (torch.rand(1, channels, h, w, generator=g) > 0.4).float()
    valid[..., 4:9, 3:8] = 0  # a solid hole bigger than the kernel
    return valid


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("stride", [1, 2])
def test_output_ignores_hole_values(channels: int, stride: int) -> None:
    layer = _layer(stride=stride)
    valid = _mask(channels=channels)
    x = torch.rand(1, 3, 12, 12)
    noisy = torch.where(valid.expand_as(x) > 0, x, torch.randn_like(x) * 100)
    out_a, mask_a = layer(x, valid)
    out_b, mask_b = layer(noisy, valid)
    torch.testing.assert_close(out_a, out_b, rtol=0, atol=1e-5)
    assert torch.equal(mask_a, mask_b)


def test_mask_update_follows_the_rule() -> None:
    """New mask = 1 exactly where the window holds at least one valid input (checked by loops)."""
    layer = _layer(k=3, stride=2, padding=1)
    valid = _mask(13, 11, seed=3)
    _, new = layer(torch.rand(1, 3, 13, 11), valid)
    m = F.pad(valid[0, 0], (1, 1, 1, 1)).numpy()
    expect = np.zeros(new.shape[-2:], np.float32)
    for i in range(expect.shape[0]):
        for j in range(expect.shape[1]):
            expect[i, j] = float(m[2 * i : 2 * i + 3, 2 * j : 2 * j + 3].sum() > 0)
    np.testing.assert_array_equal(new[0, 0].numpy(), expect)
    assert new.shape == (1, 1, 7, 6)


def test_renormalisation_and_empty_windows() -> None:
    """Output = W·(X⊙M)·(window/valid) + b where any input is valid, exactly 0 elsewhere."""
    layer = _layer(c_in=2, c_out=1, k=3, padding=0)
    x = torch.rand(1, 2, 5, 5)
    valid = torch.ones(1, 2, 5, 5)
    valid[0, 0, 0, 0] = 0  # one of the 18 inputs of the top-left window is a hole
    out, _ = layer(x, valid)
    w, b = layer.weight[0], layer.bias[0]
    window = (x * valid)[0, :, :3, :3]
    expected = (w * window).sum() * 18 / 17 + b
    torch.testing.assert_close(out[0, 0, 0, 0], expected)
    hole = torch.zeros(1, 2, 5, 5)
    out, new = layer(x, hole)
    assert torch.count_nonzero(out) == 0 and torch.count_nonzero(new) == 0


def test_without_hole_equals_plain_convolution() -> None:
    layer = _layer(padding=0)
    x = torch.rand(2, 3, 10, 10)
    out, new = layer(x, torch.ones(2, 1, 10, 10))
    torch.testing.assert_close(out, F.conv2d(x, layer.weight, layer.bias))
    assert torch.all(new == 1)
    # With zero padding the border counts as hole; the interior still equals the convolution.
    padded = _layer(padding=1)
    out, _ = padded(x, torch.ones(2, 1, 10, 10))
    plain = F.conv2d(x, padded.weight, padded.bias, padding=1)
    torch.testing.assert_close(out[..., 1:-1, 1:-1], plain[..., 1:-1, 1:-1])
    assert not torch.allclose(out[..., 0, :], plain[..., 0, :])


def test_bf16_autocast_keeps_counts_exact() -> None:
    layer = _layer(c_in=8, c_out=8)
    x, valid = torch.rand(1, 8, 16, 16), _mask(16, 16, channels=8)
    ref, ref_mask = layer(x, valid)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, new = layer(x, valid)
    assert torch.equal(new, ref_mask)
    torch.testing.assert_close(out.float(), ref, rtol=0.05, atol=0.05)


def test_rejects_wrong_mask_channels() -> None:
    with pytest.raises(ValueError, match="channels"):
        _layer()(torch.rand(1, 3, 8, 8), torch.ones(1, 2, 8, 8))


def test_parts_with_one_mask_channel_each_equal_the_full_channel_mask() -> None:
    """The U-Net's compact form (list of parts, one mask channel per part) is the same layer."""
    layer = _layer(c_in=7, c_out=4)
    up, skip = torch.rand(2, 4, 12, 12), torch.rand(2, 3, 12, 12)
    m_up, m_skip = _mask(seed=1)[:, :1].expand(2, -1, -1, -1), _mask(seed=2).expand(2, -1, -1, -1)
    full = torch.cat([m_up.expand(-1, 4, -1, -1), m_skip.expand(-1, 3, -1, -1)], dim=1)
    ref, ref_mask = layer(torch.cat([up, skip], dim=1), full)
    out, new = layer([up, skip], torch.cat([m_up, m_skip], dim=1))
    torch.testing.assert_close(out, ref)
    assert torch.equal(new, ref_mask)
    with pytest.raises(ValueError, match="parts"):
        layer([up, skip], m_up)
