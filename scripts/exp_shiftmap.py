"""Experiment: the hole as a few coherent copies of the photo (offset statistics + MRF).

The texture stage (engine/texture.py) and every parallel patch search measured so far stay
about 30% behind pypatchmatch in deep-feature distance, because averaging the votes of many
independent matches blurs, while pypatchmatch's sequential scan rebuilds the hole from a few
large coherent copies (docs/measurements.md, session 12). This script builds such copies
directly, the way He and Sun (2012, "Statistics of Patch Offsets for Image Completion") do,
with every step done for all pixels at once in torch:

1. At a working size (long side ``work``), a sample of the known windows finds its nearest
   known window at least ``tau`` away; the histogram of those offsets, smoothed, gives the
   ``labels`` dominant offsets (repetitions of the photo's texture and structure).
2. Every hole pixel takes one of them: a labelling minimising an MRF energy, solved by
   min-sum loopy belief propagation on the 4-connected grid of hole pixels. Unary: the
   source pixel must be known; a known neighbour should agree with what the offset copies
   there; optionally (``guide``) the blurred source should look like the model's blurred fill
   (the model gives the structure, the photo the texture). Pairwise (shift-map's seam cost):
   the two offsets' copies should agree at both pixels of an edge, truncated.
3. The labels are scaled up to the photo and every hole pixel copies the photo's pixel at
   its offset; optionally (``band``) the low frequencies below ``band`` px come from the
   model's fill (which hides the copies' seams in colour and keeps the structure).

Usage::

    python scripts/exp_shiftmap.py [--step 6] [--variants sm,sm-guide,sm-guide-band]

Scores the same cases as scripts/exp_texture_em.py (every ``--step``-th validation case of
bins (0.1, 0.2] ... (0.5, 0.6], 512 px) against HiFill and pypatchmatch, sharing its cache.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

BIG = 1e4  # an impossible label (source outside the photo or in the hole)
# The four neighbours (dy, dx); direction d and d ^ 1 are opposite.
STEPS = ((0, 1), (0, -1), (1, 0), (-1, 0))


def _windows(img: torch.Tensor) -> torch.Tensor:
    """7x7 windows of ``img`` [C, H, W] as [C * 49, H - 6, W - 6]."""
    c, h, w = img.shape
    return F.unfold(img[None], 7).view(c * 49, h - 6, w - 6)


def _peaks(off: torch.Tensor, h: int, w: int, count: int) -> torch.Tensor:
    """The ``count`` highest peaks of the smoothed histogram of offsets [n, 2]."""
    hist = torch.zeros(2 * h + 1, 2 * w + 1)
    hist.index_put_((off[:, 0] + h, off[:, 1] + w), torch.ones(len(off)), accumulate=True)
    hist = torch.from_numpy(cv2.GaussianBlur(hist.numpy(), (0, 0), 2**0.5))
    peak = (hist == F.max_pool2d(hist[None, None], 9, 1, 4)[0, 0]) & (hist > 0)
    score = torch.where(peak, hist, torch.zeros(()))
    top = score.flatten().topk(min(count, int(peak.sum()))).indices
    return torch.stack([top // (2 * w + 1) - h, top % (2 * w + 1) - w], 1)


def candidate_offsets(
    img: torch.Tensor,
    known: torch.Tensor,
    guide: torch.Tensor | None,
    labels: int,
    guided: int,
    tau: int,
    samples: int,
    gen,
) -> torch.Tensor:
    """Offsets (dy, dx) to copy from: the ``labels`` most frequent ones between similar known
    7x7 windows (He and Sun 2012), plus the ``guided`` most frequent ones by which the model's
    fill in the hole is best matched by known windows."""
    _, h, w = img.shape
    win = _windows(img)
    ok = F.max_pool2d((~known).float()[None, None], 7, 1).view(h - 6, w - 6) == 0
    pos = ok.nonzero()
    if len(pos) < 16:
        return torch.zeros(1, 2, dtype=torch.long)
    feats = win[:, pos[:, 0], pos[:, 1]].T
    mean = feats.mean(0)
    _, _, v = torch.pca_lowrank(feats - mean, q=min(16, feats.shape[1]), center=False, niter=2)
    feats = (feats - mean) @ v
    norms = (feats * feats).sum(1)

    def nearest(query: torch.Tensor, at: torch.Tensor, near: int) -> torch.Tensor:
        found = []
        for q, a in zip(query.split(1024), at.split(1024), strict=True):
            d = (q * q).sum(1, keepdim=True) + norms[None] - 2 * q @ feats.T
            if near > 0:
                d[(a[:, None] - pos[None]).abs().amax(-1) < near] = float("inf")
            found.append(pos[d.argmin(1)] - a)
        return torch.cat(found)

    pick = torch.randperm(len(pos), generator=gen)[:samples]
    out = [_peaks(nearest(feats[pick], pos[pick], tau), h, w, labels)]
    if guide is not None and guided > 0:
        filled = _windows(torch.where(known, img, guide))
        touch = F.max_pool2d((~known).float()[None, None], 7, 1).view(h - 6, w - 6) > 0
        at = touch.nonzero()
        at = at[torch.randperm(len(at), generator=gen)[:samples]]
        query = (filled[:, at[:, 0], at[:, 1]].T - mean) @ v
        out.append(_peaks(nearest(query, at, 0), h, w, guided))
    return torch.unique(torch.cat(out), dim=0)


def shifted(img: torch.Tensor, known: torch.Tensor, ys, xs, off):
    """Colours [n, K, C] the K offsets copy to pixels (ys, xs) and whether they are valid."""
    _, h, w = img.shape
    sy, sx = ys[:, None] + off[None, :, 0], xs[:, None] + off[None, :, 1]
    inside = (sy >= 0) & (sy < h) & (sx >= 0) & (sx < w)
    sy, sx = sy.clamp(0, h - 1), sx.clamp(0, w - 1)
    valid = inside & known[sy, sx]
    return img[:, sy, sx].permute(1, 2, 0), valid


def solve(
    img: torch.Tensor,
    known: torch.Tensor,
    off: torch.Tensor,
    guide: torch.Tensor | None,
    weight: float,
    cap: float,
    iters: int,
) -> torch.Tensor:
    """Label index per hole pixel (row-major order of ``~known``) by loopy min-sum BP."""
    _, h, w = img.shape
    hole = ~known
    ys, xs = hole.nonzero(as_tuple=True)
    n, k = len(ys), len(off)
    index = torch.full((h, w), -1, dtype=torch.long)
    index[ys, xs] = torch.arange(n)
    col, valid = shifted(img, known, ys, xs, off)
    unary = torch.where(valid, 0.0, BIG)
    if guide is not None:
        filled = torch.where(known, img, guide)
        blur_src = torch.from_numpy(
            cv2.GaussianBlur(filled.permute(1, 2, 0).numpy(), (0, 0), 1.5)
        ).permute(2, 0, 1)
        blur_guide = torch.from_numpy(
            cv2.GaussianBlur(guide.permute(1, 2, 0).numpy(), (0, 0), 1.5)
        ).permute(2, 0, 1)
        src, _ = shifted(blur_src, known, ys, xs, off)
        unary = unary + weight * (src - blur_guide[:, ys, xs].T[:, None]).square().sum(-1)
    neighbours = []
    for dy, dx in STEPS:
        ny, nx = ys + dy, xs + dx
        inside = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
        ny, nx = ny.clamp(0, h - 1), nx.clamp(0, w - 1)
        j = torch.where(inside, index[ny, nx], torch.full_like(ys, -2))
        # A known neighbour: what each offset copies there should be the photo's pixel.
        edge_known = inside & known[ny, nx]
        if edge_known.any():
            at = edge_known.nonzero(as_tuple=True)[0]
            there, ok = shifted(img, known, ny[at], nx[at], off)
            cost = (there - img[:, ny[at], nx[at]].T[:, None]).square().sum(-1)
            unary[at] += torch.where(ok, cost.clamp(max=cap), cap)
        neighbours.append(j)
    # Pairwise costs of the edges right and down (each edge once), [E, K, K].
    diff = (col[:, :, None] - col[:, None]).square().sum(-1)
    both = valid[:, :, None] & valid[:, None]
    diff = torch.where(both, diff, cap)
    edges = []
    for d in (0, 2):
        i = (neighbours[d] >= 0).nonzero(as_tuple=True)[0]
        j = neighbours[d][i]
        edges.append((i, j, (diff[i] + diff[j]).clamp(max=cap)))
    del diff
    # msg[d][i]: the message node i receives from its neighbour in direction d.
    msg = [torch.zeros(n, k) for _ in STEPS]
    for _ in range(iters):
        belief = unary + sum(msg)
        new = [torch.zeros(n, k) for _ in STEPS]
        for d, (i, j, cost) in zip((0, 2), edges, strict=True):
            # i -> j (j is i's neighbour in direction d; j receives it from direction d ^ 1).
            h_i = belief[i] - msg[d][i]
            m = (h_i[:, :, None] + cost).amin(1)
            new[d ^ 1][j] = m - m.amin(1, keepdim=True)
            h_j = belief[j] - msg[d ^ 1][j]
            m = (h_j[:, None, :] + cost).amin(2)
            new[d][i] = m - m.amin(1, keepdim=True)
        msg = [0.5 * a + 0.5 * b for a, b in zip(msg, new, strict=True)]
    return (unary + sum(msg)).argmin(1), (ys, xs)


def inpaint(
    image: np.ndarray,
    mask: np.ndarray,
    guide: np.ndarray | None = None,
    work: int = 256,
    labels: int = 32,
    guided: int = 0,
    weight: float = 0.0,
    cap: float = 0.5,
    iters: int = 30,
    band: float = 0.0,
    seed: int = 0,
) -> np.ndarray:
    """``image`` (uint8 RGB) with ``mask``'s hole rebuilt from copies of the photo."""
    gen = torch.Generator().manual_seed(seed)
    image = np.where(mask[..., None], 0, image).astype(np.uint8)  # never read the truth
    h, w = mask.shape
    f = max(1, round(max(h, w) / work))
    small = cv2.resize(image, (w // f, h // f), interpolation=cv2.INTER_AREA)
    hole_small = (
        F.max_pool2d(torch.from_numpy(mask).float()[None, None], f, f)[0, 0, : h // f, : w // f] > 0
    )
    img = torch.from_numpy(small).permute(2, 0, 1).float() / 255
    known = ~hole_small
    tau = max(h // f, w // f) // 15
    g = None
    if guide is not None:
        gs = cv2.resize(guide, (w // f, h // f), interpolation=cv2.INTER_AREA)
        g = torch.from_numpy(gs).permute(2, 0, 1).float() / 255
    off = candidate_offsets(img, known, g, labels, guided, tau, 8000, gen)
    label, (ys, xs) = solve(img, known, off, g if weight > 0 else None, weight, cap, iters)
    grid = torch.zeros(h // f, w // f, 2, dtype=torch.long)
    grid[ys, xs] = off[label]
    grid = grid.repeat_interleave(f, 0).repeat_interleave(f, 1)
    grid = F.pad(
        grid.permute(2, 0, 1), (0, w - grid.shape[1], 0, h - grid.shape[0]), mode="replicate"
    )
    py, px = np.nonzero(mask)
    sy = np.clip(py + f * grid[0].numpy()[py, px], 0, h - 1)
    sx = np.clip(px + f * grid[1].numpy()[py, px], 0, w - 1)
    out = image.copy()
    out[py, px] = image[sy, sx]
    bad = np.zeros_like(mask)
    bad[py, px] = mask[sy, sx]  # no label could reach a known pixel: the model's fill there
    if bad.any():
        out[bad] = (
            guide[bad]
            if guide is not None
            else cv2.inpaint(out, bad.astype(np.uint8), 3, cv2.INPAINT_TELEA)[bad]
        )
    if band > 0 and guide is not None:
        o, gd = out.astype(np.float32), guide.astype(np.float32)
        low = cv2.GaussianBlur(gd, (0, 0), band) - cv2.GaussianBlur(o, (0, 0), band)
        o[mask] += low[mask]
        out = np.clip(np.rint(o), 0, 255).astype(np.uint8)
    out[~mask] = image[~mask]
    return out


VARIANTS = {
    "sm": {},
    "sm-guide": {"weight": 1.0},
    "sm-guide-band": {"weight": 1.0, "band": 4.0},
    "sm-guide4": {"weight": 4.0},
    "sm-guide4-band": {"weight": 4.0, "band": 4.0},
    "sm-band": {"band": 4.0},
    "sm128-g30-l64": {"work": 128, "guided": 32, "weight": 30.0, "band": 4.0},
    "sm128-g100-l64": {"work": 128, "guided": 32, "weight": 100.0, "band": 4.0},
    "sm128-g30-l64-nb": {"work": 128, "guided": 32, "weight": 30.0},
}


def main() -> int:
    from exp_texture_em import compare, parser_for

    return compare(parser_for(__doc__, "sm,sm-guide,sm-guide-band").parse_args(), inpaint, VARIANTS)


if __name__ == "__main__":
    raise SystemExit(main())
