"""DeepFill's contextual attention, network and model class (untrained weights: flow only)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from weights_util import install_untrained

from engine.jobs import InpaintRequest
from engine.layers.contextual_attention import ContextualAttention
from engine.models.catalog import DEEPFILL
from engine.models.deepfill import DeepFillConfig, DeepFillModel, DeepFillNet, cell_scores
from engine.pipeline import Engine

TINY = DeepFillConfig(channels=4)


def _copy_scene(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random features (1, 8, 48, 48) whose 16 x 16 block at (24, 24) is an exact copy of the
    block at (0, 0), and a mask with that copy as the hole."""
    feats = torch.randn(1, 8, 48, 48, generator=torch.Generator().manual_seed(seed))
    feats[..., 24:40, 24:40] = feats[..., 0:16, 0:16]
    mask = torch.zeros(1, 1, 48, 48)
    mask[..., 24:40, 24:40] = 1
    return feats, mask


def test_attention_selects_an_exact_copy_and_reproduces_it():
    feats, mask = _copy_scene()
    out, weights = ContextualAttention()(feats, mask)
    # Downscaled grid 24 x 24: hole position (12 + i, 12 + j) copies (i, j).
    for i, j in [(1, 1), (3, 5), (6, 6)]:
        row = weights[0, (12 + i) * 24 + 12 + j]
        assert int(row.argmax()) == i * 24 + j
        assert float(row.max()) > 0.99
    # Away from the copy's edges every pasted patch comes from the same shift: exact copy.
    inner = out[..., 28:36, 28:36]
    assert torch.allclose(inner, feats[..., 4:12, 4:12], atol=1e-3)


def test_patches_touching_the_hole_get_zero_weight():
    feats, mask = _copy_scene(1)
    weights = ContextualAttention().weights(feats, mask)[0]
    grid = torch.zeros(24, 24, dtype=torch.bool)
    grid[11:21, 11:21] = True  # the hole (12..19) and the ring whose 3x3 window touches it
    assert torch.all(weights[:, grid.flatten()] == 0)
    assert torch.allclose(weights.sum(1), torch.ones(24 * 24))
    assert bool((weights[:, ~grid.flatten()] > 0).any())


def test_each_batch_item_attends_with_its_own_mask():
    feats, mask = _copy_scene(2)
    other = torch.zeros_like(mask)
    other[..., 0:16, 30:46] = 1
    layer = ContextualAttention()
    batch_out, batch_w = layer(torch.cat([feats, feats]), torch.cat([mask, other]))
    for k, m in enumerate((mask, other)):
        out, w = layer(feats, m)
        assert torch.allclose(batch_out[k : k + 1], out, atol=1e-5)
        assert torch.allclose(batch_w[k : k + 1], w, atol=1e-6)
    assert not torch.allclose(batch_w[0], batch_w[1])


def test_fuse_prefers_coherent_matches():
    """Two background patches match the hole's centre patch exactly: one inside a copied
    block (its neighbours match the centre's neighbours too), one an isolated copy of just
    that 3x3 window. Unfused they tie; fused, the coherent one wins."""
    feats = torch.randn(1, 8, 48, 48, generator=torch.Generator().manual_seed(3))
    feats[..., 24:40, 24:40] = feats[..., 0:16, 0:16]  # coherent copy of a whole block
    # Full-res rows/cols 28..33 are downscaled positions 14..16: the centre (15, 15)'s window.
    feats[..., 28:34, 0:6] = feats[..., 28:34, 28:34]  # centred on position (15, 1)
    mask = torch.zeros(1, 1, 48, 48)
    mask[..., 24:40, 24:40] = 1
    centre, coherent, isolated = 15 * 24 + 15, 3 * 24 + 3, 15 * 24 + 1
    plain = ContextualAttention(fuse=False).weights(feats, mask)[0, centre]
    assert abs(float(plain[coherent] - plain[isolated])) < 1e-3
    assert float(plain[coherent] + plain[isolated]) > 0.99
    fused = ContextualAttention(fuse=True).weights(feats, mask)[0, centre]
    assert float(fused[coherent]) > 0.99


def test_network_shapes_finite_and_gradients_reach_both_branches():
    net = DeepFillNet(TINY)
    image = torch.rand(2, 3, 64, 96)
    mask = torch.zeros(2, 1, 64, 96)
    mask[0, :, 10:40, 20:60] = 1
    mask[1, :, 30:60, 50:90] = 1
    coarse, refined, weights = net(image, mask)
    assert coarse.shape == refined.shape == (2, 3, 64, 96)
    assert weights.shape == (2, 8 * 12, 8 * 12)
    assert torch.isfinite(refined).all() and refined.min() >= 0 and refined.max() <= 1
    refined.sum().backward()
    for branch in (net.refine.hallucinate, net.refine.attend_in, net.coarse):
        grads = [p.grad for p in branch.parameters()]
        assert all(g is not None for g in grads)
        assert sum(float(g.abs().sum()) for g in grads) > 0


def test_hole_content_does_not_matter():
    net = DeepFillNet(TINY).eval()
    image = torch.rand(1, 3, 64, 64)
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 16:48, 16:48] = 1
    other = image.clone()
    other[..., 16:48, 16:48] = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(net(image, mask)[1], net(other, mask)[1])


def test_cell_scores_pool_positions_to_cells():
    weights = torch.softmax(torch.randn(16, 16), dim=1)  # a 4 x 4 grid of positions
    cells = cell_scores(weights, (4, 4), 2)  # 2 x 2 cells
    assert cells.shape == (4, 4)
    assert torch.allclose(cells.sum(1), torch.ones(4))
    grid = torch.arange(16).reshape(4, 4)
    cell_of = (grid // 8) * 2 + (grid % 4) // 2  # position -> cell, row-major
    cell_of = cell_of.flatten()
    want = torch.zeros(4, 4)
    for f in range(16):
        for b in range(16):
            want[cell_of[f], cell_of[b]] += weights[f, b] / 4
    assert torch.allclose(cells, want, atol=1e-6)


@pytest.fixture
def untrained_weights(tmp_path, monkeypatch):
    torch.manual_seed(0)
    return install_untrained(tmp_path, monkeypatch, "deepfill", DeepFillNet(TINY), TINY)


def test_model_returns_its_attention_on_cra_cells(untrained_weights):
    model = DeepFillModel(DEEPFILL, "cpu")
    model.load(untrained_weights)
    image = np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    mask = np.zeros((64, 96), bool)
    mask[10:30, 20:50] = True
    fill, attention = model.predict_with_attention(image, mask, 0)
    assert fill.shape == image.shape and fill.dtype == np.uint8
    assert attention is not None and attention.cell == 16
    assert attention.scores.shape == (24, 24)
    assert torch.allclose(attention.scores.sum(1), torch.ones(24), atol=1e-5)
    assert np.array_equal(model.predict(image, mask, 0), fill)
    # Attention from near the hole only: the hole cells' rows, all cra reads, are the same
    # as those of attention from everywhere.
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    m = torch.from_numpy(mask)[None, None].float()
    with torch.no_grad():
        weights = model.net(x * (1 - m), m)[2]
    whole = cell_scores(weights[0], (8, 12), 2)
    holes = torch.from_numpy(mask.reshape(4, 16, 6, 16).any(axis=(1, 3)).reshape(-1))
    assert torch.allclose(attention.scores[holes], whole[holes], atol=1e-5)


def test_engine_runs_deepfill_with_cra(untrained_weights):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (600, 1100, 3), dtype=np.uint8)
    mask = np.zeros((600, 1100), bool)
    mask[200:330, 400:700] = True
    result = Engine().run(InpaintRequest(image, mask, "deepfill", device="cpu"))
    assert result.strategy == "cra"
    out = result.images[0]
    assert out.shape == image.shape
    assert np.array_equal(out[~mask], image[~mask])


def test_picker_marks_weights_below_the_quality_bar(untrained_weights, qtbot):
    from app.panels import ModelPicker

    manifest = json.loads((untrained_weights.parent / "manifest.json").read_text())
    manifest["deepfill"]["metrics"] = {"meets_quality_bar": False, "gap": "L1 +9% against Telea"}
    (untrained_weights.parent / "manifest.json").write_text(json.dumps(manifest))
    picker = ModelPicker()
    qtbot.addWidget(picker)
    item = picker.model().item(picker.findData("deepfill"))
    assert item.isEnabled() and item.text() == "DeepFill (below the bar)"
    assert "L1 +9% against Telea" in item.toolTip()
    assert picker.select("deepfill")


def test_fuse_equals_the_public_codes_transposed_form():
    # The public code fuses in row-major order, transposes both axes to column-major order,
    # fuses again and transposes back; the fast form never transposes and must agree bit
    # for bit (including the steps from the bottom of one column to the top of the next).
    from engine.layers.contextual_attention import _diagonal_sum, _fuse

    def reference(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        n, length = x.shape[0], h * w

        def transpose(t: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
            t = t.reshape(n, rows, cols, rows, cols).permute(0, 2, 1, 4, 3)
            return t.reshape(n, length, length)

        return transpose(_diagonal_sum(transpose(_diagonal_sum(x, 3), h, w), 3), w, h)

    gen = torch.Generator().manual_seed(0)
    for h, w in [(4, 5), (3, 7), (8, 8), (2, 2)]:
        x = torch.randn(2, h * w, h * w, generator=gen)
        assert torch.equal(_fuse(x, (h, w), 3), reference(x, h, w))


def test_fused_rows_are_the_rows_of_the_whole_fused_map():
    from engine.layers.contextual_attention import _fuse, _fused_rows

    gen = torch.Generator().manual_seed(1)
    for h, w in [(1, 6), (5, 1), (4, 5), (7, 3), (12, 12)]:
        windows = torch.randn(6, h * w, generator=gen)
        kernels = torch.randn(6, h * w, generator=gen)
        whole = _fuse((windows.t() @ kernels)[None], (h, w), 3)[0]
        for share in (0.2, 0.6, 1.0):
            rows = (torch.rand(h * w, generator=gen) < share).nonzero().squeeze(1)
            fused = _fused_rows(windows, kernels, rows, (h, w))
            assert torch.allclose(fused, whole[rows], atol=1e-5)


def test_attention_asked_for_some_positions_pastes_the_same_there_and_itself_elsewhere():
    feats, mask = _copy_scene(4)
    # A known block twice as bright as its neighbour matches it as well as itself (cosine):
    # attending from there pastes a mix of the two, a position not asked for only itself.
    feats[..., 0:16, 16:32] = 2 * feats[..., 0:16, 0:16]
    layer = ContextualAttention()
    full, _ = layer(feats, mask)
    queries = torch.zeros(1, 24 * 24, dtype=torch.bool)
    queries.view(24, 24)[8:24, 8:24] = True  # the hole (12..19) and around it
    part, weights = layer(feats, mask, queries)
    assert weights is None
    # Pixels pasted from asked positions only (rows/cols 2 * 9 .. 2 * 24 - 2) match ...
    assert torch.allclose(part[..., 18:46, 18:46], full[..., 18:46, 18:46], atol=1e-5)
    # ... pixels away from them keep their features, where a full paste mixes.
    assert torch.allclose(part[..., 1:14, 1:14], feats[..., 1:14, 1:14], atol=1e-6)
    assert not torch.allclose(full[..., 1:14, 1:14], feats[..., 1:14, 1:14], atol=0.1)


def test_a_fill_attending_only_near_the_hole_is_the_same_in_the_hole():
    net = DeepFillNet(TINY).eval()
    image = torch.rand(1, 3, 192, 192, generator=torch.Generator().manual_seed(5))
    mask = torch.zeros(1, 1, 192, 192)
    mask[..., 80:112, 72:120] = 1  # grid 24 x 24: 4 positions around it leave 2/3 out
    asked = []
    net.refine.attention.register_forward_hook(lambda _m, args, _out: asked.append(args[2]))
    with torch.no_grad():
        _, full, _ = net(image, mask)
        _, near, weights = net(image, mask, near_hole=4)
    assert weights is None
    hole = mask[0, 0] > 0
    assert torch.allclose(near[0][:, hole], full[0][:, hole], atol=1e-5)
    assert asked[0] is None and 0.2 < float(asked[1].float().mean()) < 0.5
