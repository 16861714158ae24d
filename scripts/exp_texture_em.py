"""Experiment: PatchMatch's EM inpainting schedule, every window at once in torch.

The texture stage (engine/texture.py) stays 16-22% behind pypatchmatch in deep-feature
distance. This script asks whether the gap is pypatchmatch's *schedule* or its *sequential
search*: it runs pypatchmatch's algorithm (Wexler et al. 2007 with PatchMatch, as in
pypatchmatch's C++ code) with everything done for all windows at once, the way a torch
stage on the engine's device has to work:

- a masked pyramid (6-tap kernel, a pixel stays a hole only if its whole footprint is)
  down to a few pixels; 7x7 windows; distance = mean over the window of the squared colour
  and gradient difference, a hole or out-of-image pixel costing the maximum;
- two fields per level (every window touching the hole finds its nearest window in the
  other image: coherence, target to source, and completeness, source to target), improved
  by propagation from the four neighbours (optionally at several jump lengths) and a
  random search with halving radius;
- votes in both directions weighted by pypatchmatch's similarity table (near uniform for
  good matches); the last round of a level votes straight into the finer level with the
  finer photo's pixels; 1 + 2 x level rounds, min(7, 1 + level) search passes.

Only the propagation differs from pypatchmatch: a scan carries a match along a whole row
in one pass, a parallel step one pixel (or one jump).

Usage::

    python scripts/exp_texture_em.py [--step 6] [--variants em,em-guide64,em-jump]

Scores every ``--step``-th validation case of bins (0.1, 0.2] ... (0.5, 0.6] (512 px, one
mask per bin) against HiFill and pypatchmatch; the cases' HiFill and PatchMatch fills are
cached in runs/exp-texture-em-cache.npz. Slow: about 25 s per case and variant on 2 cores.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

RADIUS = 3
SIDE = 2 * RADIUS + 1
# pypatchmatch's similarity of a normalised distance t, sampled at t = 0, 0.01, ..., 0.1.
SIMILARITY = torch.tensor([1.0, 0.99, 0.96, 0.83, 0.38, 0.11, 0.02, 0.005, 0.0006, 0.0001, 0, 0])
CHUNK = 16384


def similarity(t: torch.Tensor) -> torch.Tensor:
    x = (t * 100).clamp(0, 10)
    j = x.floor().long()
    return SIMILARITY[j] + (x - j) * (SIMILARITY[j + 1] - SIMILARITY[j])


def downsample(img: torch.Tensor, known: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Half size, hole pixels left out of every average; a hole only where nothing is known."""
    taps = torch.tensor([1.0, 5, 10, 10, 5, 1])
    kernel = (taps[:, None] * taps[None]).reshape(1, 1, 6, 6)
    h, w = known.shape
    num = F.conv2d(
        F.pad((img * known)[None], (2, 3, 2, 3)), kernel.expand(3, 1, 6, 6), stride=2, groups=3
    )
    den = F.conv2d(F.pad(known[None, None], (2, 3, 2, 3)), kernel, stride=2)
    num, den = num[0, :, : h // 2, : w // 2], den[0, 0, : h // 2, : w // 2]
    return num / den.clamp_min(1e-8), (den > 0).float()


def features(img: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """(9, h, w): colour and half central differences (a hole neighbour replaced by the centre)."""

    def neighbour(dy: int, dx: int) -> torch.Tensor:
        shifted = torch.roll(img, (dy, dx), (1, 2))
        return torch.where(torch.roll(known, (dy, dx), (0, 1)) > 0, shifted, img)

    gy = (neighbour(-1, 0) - neighbour(1, 0)) / 2
    gx = (neighbour(0, -1) - neighbour(0, 1)) / 2
    return torch.cat([img, gy, gx])


def window_table(f: torch.Tensor, known: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every pixel's window: (h*w, 49, 9) values and (h*w, 49) known flags."""
    c, h, w = f.shape
    pad = (RADIUS,) * 4
    values = F.unfold(F.pad(f[None], pad), SIDE)[0].reshape(c, SIDE * SIDE, h * w)
    flags = F.unfold(F.pad(known[None, None], pad), SIDE)[0].T
    return values.permute(2, 1, 0).contiguous(), flags.contiguous()


def window_cost(query, candidates, at: torch.Tensor) -> torch.Tensor:
    """Normalised distance of each query window to the candidate window ``at``."""
    out = []
    for s in range(0, len(at), CHUNK):
        a, ak = query[0][s : s + CHUNK], query[1][s : s + CHUNK]
        b, bk = candidates[0][at[s : s + CHUNK]], candidates[1][at[s : s + CHUNK]]
        both = ak * bk
        out.append(((1 - both) + both * ((a - b) ** 2).mean(2)).mean(1))
    return torch.cat(out)


class Field:
    """Nearest windows of the windows ``query`` (flat indices) in an image of the same size."""

    def __init__(self, h: int, w: int, query: torch.Tensor, match: torch.Tensor) -> None:
        self.h, self.w, self.query, self.match = h, w, query, match
        self.cost = torch.zeros(len(query))

    def improve(self, query, candidates, passes: int, gen, jumps) -> None:
        """Propagation from neighbours and random search, ``passes`` times: for all windows
        at once (neighbours ``jumps`` px away), or with ``jumps="scan"`` as pypatchmatch's
        scan, one anti-diagonal at a time, each taking its already-updated upper and left
        (then, backwards, lower and right) neighbours' matches."""
        q = self.query
        cost = window_cost(query, candidates, self.match)
        grid = torch.arange(self.h * self.w)  # windows off the hole map to themselves
        grid[q] = self.match
        if jumps == "scan":
            diag = q // self.w + q % self.w
            order = torch.argsort(diag, stable=True)
            lines = [g for g in torch.split(order, torch.bincount(diag[order]).tolist()) if len(g)]
            sweeps = [(lines, ((1, 0), (0, 1))), (lines[::-1], ((-1, 0), (0, -1)))]
        else:
            shifts = [s for j in jumps for s in ((j, 0), (-j, 0), (0, j), (0, -j))]
            sweeps = [([slice(None)], shifts)]
        for _ in range(passes):
            for groups, shifts in sweeps:
                for g in groups:
                    self._step(query, candidates, g, shifts, cost, grid, gen)
        self.cost = cost

    def _step(self, query, candidates, g, shifts, cost, grid, gen) -> None:
        """The windows ``g`` (of ``query``) try their neighbours' matches, shifted, then
        random ones around their own with halving radius; ``cost`` and ``grid`` (every
        pixel's match) are updated in place."""
        h, w = self.h, self.w
        gq, at_g = (query[0][g], query[1][g]), self.query[g]
        gy, gx = at_g // w, at_g % w
        m, c = self.match[g], cost[g]

        def keep(cy, cx, ok):
            at = cy.clamp(0, h - 1) * w + cx.clamp(0, w - 1)
            d = window_cost(gq, candidates, at)
            better = d < c if ok is None else ok & (d < c)
            return torch.where(better, at, m), torch.where(better, d, c)

        for dy, dx in shifts:
            ny, nx = gy - dy, gx - dx
            ok = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
            nm = grid[ny.clamp(0, h - 1) * w + nx.clamp(0, w - 1)]
            cy, cx = nm // w + dy, nm % w + dx
            ok &= (cy >= 0) & (cy < h) & (cx >= 0) & (cx < w)
            m, c = keep(cy, cx, ok)
            grid[at_g] = m
        radius = (min(h, w) - 1) // 2
        while radius > 0:
            shift = torch.randint(-radius, radius + 1, (2, len(m)), generator=gen)
            m, c = keep(m // w + shift[0], m % w + shift[1], None)
            radius //= 2
        self.match[g], cost[g] = m, c
        grid[at_g] = m


def vote(acc, wsum, shape, tpos, spos, weight, source, known, fine=None) -> None:
    """The window at ``tpos`` takes the source window at ``spos``: weighted votes for its
    pixels (hole pixels of the source do not vote). With ``fine`` = (photo, known) of the
    finer level, each vote is a 2x2 block of the finer photo."""
    h, w = shape
    d = torch.arange(-RADIUS, RADIUS + 1)
    dy, dx = d.repeat_interleave(SIDE), d.repeat(SIDE)
    ty, tx = (tpos // w)[:, None] + dy, (tpos % w)[:, None] + dx
    sy, sx = (spos // w)[:, None] + dy, (spos % w)[:, None] + dx
    ok = (ty >= 0) & (ty < h) & (tx >= 0) & (tx < w) & (sy >= 0) & (sy < h) & (sx >= 0) & (sx < w)
    ty, tx, sy, sx = ty[ok], tx[ok], sy[ok], sx[ok]
    ww = weight[:, None].expand(-1, SIDE * SIDE)[ok]
    if fine is None:
        blocks = [(sy * w + sx, ty * w + tx, source, known.flatten())]
    else:
        photo, fknown = fine
        fh, fw = fknown.shape
        blocks = []
        for uy in (0, 1):
            for ux in (0, 1):
                fsy, fsx, fty, ftx = 2 * sy + uy, 2 * sx + ux, 2 * ty + uy, 2 * tx + ux
                inside = (fsy < fh) & (fsx < fw) & (fty < fh) & (ftx < fw)
                blocks.append(
                    (
                        (fsy * fw + fsx)[inside],
                        (fty * fw + ftx)[inside],
                        photo,
                        fknown.flatten(),
                        inside,
                    )
                )
    for block in blocks:
        s, t, photo, flags = block[:4]
        wb = (ww if len(block) == 4 else ww[block[4]]) * flags[s]
        acc.index_add_(1, t, photo.flatten(1)[:, s] * wb)
        wsum.index_add_(0, t, wb)


def inpaint(
    image: np.ndarray, mask: np.ndarray, seed: int = 0, guide=None, guide_side=0, jumps=(1,)
):
    """pypatchmatch's inpainting, all windows at once. ``guide`` (a model's fill) replaces the
    hole at the largest level whose long side is at most ``guide_side``."""
    gen = torch.Generator().manual_seed(seed)
    img = torch.from_numpy(image).permute(2, 0, 1).float() / 255
    pyramid = [(img, torch.from_numpy(~mask).float())]
    while min(pyramid[-1][1].shape) > SIDE:
        pyramid.append(downsample(*pyramid[-1]))
    target = fields = None
    for level in range(len(pyramid) - 1, -1, -1):
        src, known = pyramid[level]
        h, w = known.shape
        if target is None:
            target = src.clone()
        finer = pyramid[level - 1][1].shape if level else None
        if (
            guide is not None
            and max(h, w) <= guide_side
            and (finer is None or max(finer) > guide_side)
        ):
            g = torch.from_numpy(guide).permute(2, 0, 1).float()[None] / 255
            target = torch.where(known > 0, target, F.interpolate(g, size=(h, w), mode="area")[0])
        touched = F.max_pool2d((1 - known)[None, None], SIDE, 1, RADIUS)[0, 0].flatten() > 0
        q = torch.nonzero(touched).flatten()
        if len(q) == 0:
            target = src.clone()
            if finer is not None:
                target = F.interpolate(target[None], size=finer, mode="nearest")[0]
            continue
        fields = [Field(h, w, q, _carried(q, h, w, f, gen)) for f in (fields or (None, None))]
        coherence, completeness = fields
        src_windows = window_table(features(src, known), known)
        src_query = (src_windows[0][q], src_windows[1][q])
        ones = torch.ones(h, w)
        rounds = 1 + 2 * level
        for r in range(rounds):
            tgt_windows = window_table(features(target, ones), ones)
            coherence.improve(
                (tgt_windows[0][q], tgt_windows[1][q]), src_windows, min(7, 1 + level), gen, jumps
            )
            completeness.improve(src_query, tgt_windows, min(7, 1 + level), gen, jumps)
            up = finer is not None and r == rounds - 1
            fine = pyramid[level - 1] if up else None
            new = (
                F.interpolate(target[None], size=finer, mode="nearest")[0] if up else target.clone()
            )
            fh, fw = new.shape[1:]
            acc, wsum = torch.zeros(3, fh * fw), torch.zeros(fh * fw)
            off = torch.nonzero(~touched).flatten()
            vote(acc, wsum, (h, w), off, off, torch.ones(len(off)), src, known, fine)
            vote(
                acc, wsum, (h, w), q, coherence.match, similarity(coherence.cost), src, known, fine
            )
            vote(
                acc,
                wsum,
                (h, w),
                completeness.match,
                q,
                similarity(completeness.cost),
                src,
                known,
                fine,
            )
            flat = new.flatten(1)
            has = wsum > 0
            flat[:, has] = acc[:, has] / wsum[has]
            target = flat.reshape(3, fh, fw)
    out = (target.clamp(0, 1) * 255 + 0.5).byte().permute(1, 2, 0).numpy()
    return np.where(mask[..., None], out, image)


def _carried(q, h, w, coarse: Field | None, gen) -> torch.Tensor:
    """A coarser level's matches scaled up (random matches at the coarsest level)."""
    if coarse is None:
        return torch.randint(h * w, (len(q),), generator=gen)
    grid = torch.arange(coarse.h * coarse.w)
    grid[coarse.query] = coarse.match
    fy, fx = h / coarse.h, w / coarse.w
    y, x = q // w, q % w
    m = grid[
        (y / fy).long().clamp(max=coarse.h - 1) * coarse.w + (x / fx).long().clamp(max=coarse.w - 1)
    ]
    my = (m // coarse.w * fy).long().clamp(max=h - 1)
    mx = (m % coarse.w * fx).long().clamp(max=w - 1)
    return my * w + mx


VARIANTS = {
    "em": {},
    "em-guide64": {"guide_side": 64},
    "em-guide128": {"guide_side": 128},
    "em-jump": {"jumps": (8, 4, 2, 1)},
    "em-scan": {"jumps": "scan"},
}


def parser_for(doc: str, variants: str) -> argparse.ArgumentParser:
    """The options every texture experiment takes (the cases, the cache, the variants)."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("data/starter"))
    parser.add_argument("--step", type=int, default=6)
    parser.add_argument("--variants", default=variants)
    parser.add_argument("--cache", type=Path, default=Path("runs/exp-texture-em-cache.npz"))
    parser.add_argument("--save", type=Path, help="write each case's fills here (PNG)")
    return parser


def compare(args: argparse.Namespace, inpaint, variants: dict[str, dict]) -> int:
    """Score HiFill, pypatchmatch and every variant of ``args.variants`` on every
    ``args.step``-th validation case of bins 1-5 (512 px): a variant's result is
    ``inpaint(image, mask, guide=HiFill's fill, **variants[name])``. Prints a row per case
    and a summary."""
    torch.set_num_threads(2)
    from training.evaluate import classical_model, composite, evaluation_cases, model_from_weights
    from training.quality import DeepFeatureDistance, detail_ratio

    cases = [c for c in evaluation_cases(args.data, 512, 1, "val") if 1 <= c.bin_index <= 5]
    cases = cases[:: args.step]
    cache = dict(np.load(args.cache)) if args.cache.exists() else {}
    if int(cache.get("step", 6)) != args.step or "hifill0" not in cache:
        # The cache holds the fills of one --step's cases (index i = i-th case).
        hifill = model_from_weights("hifill", Path("resources/weights/hifill.safetensors"))
        patchmatch = classical_model("patchmatch")
        cache = {"step": np.array(args.step)}
        for i, case in enumerate(cases):
            cache[f"hifill{i}"], cache[f"patchmatch{i}"] = (
                composite(hifill, case),
                composite(patchmatch, case),
            )
        args.cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(args.cache, **cache)
    distance = DeepFeatureDistance()
    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)
    names = ["hifill", "patchmatch", *args.variants.split(",")]
    rows: dict[str, list[tuple[float, ...]]] = {k: [] for k in names}
    for i, case in enumerate(cases):
        for name in names:
            start = time.perf_counter()
            if f"{name}{i}" in cache:
                out = cache[f"{name}{i}"]
            else:
                guide = cache[f"hifill{i}"]
                out = inpaint(case.image, case.mask, guide=guide, **variants[name])
            seconds = time.perf_counter() - start
            if args.save:
                cv2.imwrite(str(args.save / f"{i:02d}-{name}.png"), out[..., ::-1])
            l1 = float(np.abs(out.astype(np.float64) - case.image).mean() / 255)
            deep = distance(out, case.image)
            rows[name].append(
                (l1, deep, detail_ratio(out, case.image, case.mask), case.bin_index, seconds)
            )
        print(
            i,
            case.name,
            case.bin_index,
            " ".join(f"{k} {rows[k][-1][1]:.3f}" for k in names),
            flush=True,
        )
    for name, values in rows.items():
        a = np.array(values)
        per_bin = " ".join(
            f"{a[a[:, 3] == b, 1].mean():.3f}" for b in range(1, 6) if (a[:, 3] == b).any()
        )
        print(
            f"{name:14s} L1 {a[:, 0].mean():.4f} deep {a[:, 1].mean():.3f} "
            f"detail {a[:, 2].mean():.2f} {a[:, 4].mean():.1f} s/case | deep per bin {per_bin}"
        )
    return 0


def main() -> int:
    return compare(parser_for(__doc__, "em").parse_args(), inpaint, VARIANTS)


if __name__ == "__main__":
    raise SystemExit(main())
