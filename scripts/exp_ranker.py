"""How much can ranking Pluralistic's draws help at all? (#16)

    python scripts/exp_ranker.py [--split val] [--draws 5] [--ranker RANKER.pt]

Draws ``--draws`` candidates per case at the working size (256; one mask per bin from
(0.1, 0.2] up) as the app draws them (the shipped temperature, each colour-corrected) and
prints, per bin, the deep-feature distance and L1 of the first draw, of the shipped
ranker's pick, of another ranker's pick (``--ranker``: a state dict under "ranker"; the
shipped one without), of the medoid (the draw closest to the others in the hole) and of
the draw closest to the photo (an oracle: what the best possible ranker would reach).
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import numpy as np
import torch

from engine.models.pluralistic import composite
from engine.models.torch_base import known_error_correction
from training.evaluate import evaluation_cases, model_from_weights
from training.masks import BINS, bin_label
from training.quality import DeepFeatureDistance

WEIGHTS = Path("resources/weights/pluralistic.safetensors")


def draws(model, image: torch.Tensor, hole: torch.Tensor, k: int, generator) -> torch.Tensor:
    """k composites (k*N, 3, H, W) as the app makes them: prior at the model's temperature,
    colour-corrected; image (N, 3, H, W) already zeroed in the hole."""
    net = model.net
    features, mu, std = net.visible(image, hole)
    n = image.shape[0]
    eps = torch.randn((k, *mu.shape), generator=generator) * model.temperature
    z = (mu[None] + std[None] * eps).flatten(0, 1)
    feats = [f.repeat(k, 1, 1, 1) for f in features]
    holes, images = hole.repeat(k, 1, 1, 1), image.repeat(k, 1, 1, 1)
    fills = net.generator(z, feats, holes)[0][-1]
    fills = known_error_correction(fills, images, holes)
    assert fills.shape[0] == k * n
    return composite(fills, images, holes)


def medoid(comps: torch.Tensor, hole: torch.Tensor) -> int:
    flat = (comps * hole).flatten(1)
    dist = torch.cdist(flat, flat, p=1).sum(1)
    return int(dist.argmin())


@torch.no_grad()
def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = model_from_weights("pluralistic", WEIGHTS)
    shipped = model.net.ranker.eval()
    other = copy.deepcopy(shipped)
    if args.ranker:
        other.load_state_dict(torch.load(args.ranker, weights_only=True)["ranker"])
    other.eval()
    metric = DeepFeatureDistance()
    cases = [c for c in evaluation_cases(Path(args.data), 256, 1, args.split) if c.bin_index > 0]
    pickers = ["first", "shipped", "other", "medoid", "oracle"]
    results = {p: {b: [] for b in range(1, len(BINS))} for p in pickers}
    l1s = {p: {b: [] for b in range(1, len(BINS))} for p in pickers}
    corr = []
    for i, case in enumerate(cases):
        image = torch.from_numpy(case.image).permute(2, 0, 1)[None].float() / 255
        hole = torch.from_numpy(case.mask)[None, None].float()
        gen = torch.Generator().manual_seed(i)
        comps = draws(model, image * (1 - hole), hole, args.draws, gen)
        outs = (comps.clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).numpy()
        deep = np.array([metric(o, case.image) for o in outs])
        l1 = np.abs(outs.astype(np.float32) - case.image).mean((1, 2, 3)) / 255
        holes = hole.expand(len(comps), -1, -1, -1)
        s_ship = shipped.score(comps, holes).numpy()
        s_new = other.score(comps, holes).numpy()
        picks = {
            "first": 0,
            "shipped": int(s_ship.argmax()),
            "other": int(s_new.argmax()),
            "medoid": medoid(comps, hole),
            "oracle": int(deep.argmin()),
        }
        for p, j in picks.items():
            results[p][case.bin_index].append(deep[j])
            l1s[p][case.bin_index].append(l1[j])
        # Rank agreement of the ranker's score with closeness (higher score, lower deep).
        corr.append(np.corrcoef(np.argsort(np.argsort(-s_new)), np.argsort(np.argsort(deep)))[0, 1])
    labels = [bin_label(BINS[b]) for b in range(1, len(BINS))]
    print(f"{len(cases)} cases, {args.draws} draws each, split {args.split}")
    print("| pick | deep all | L1 all | " + " | ".join(labels) + " |")
    for p in pickers:
        alld = np.mean([v for b in results[p].values() for v in b])
        alll = np.mean([v for b in l1s[p].values() for v in b])
        per = " | ".join(f"{np.mean(results[p][b]):.3f}" for b in range(1, len(BINS)))
        print(f"| {p} | {alld:.4f} | {alll:.4f} | {per} |")
    print(f"mean Spearman (score vs closeness to the photo): {np.nanmean(corr):.3f}")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default="data/starter")
    p.add_argument("--ranker", default=None)
    p.add_argument("--draws", type=int, default=5)
    p.add_argument("--split", default="val")
    p.add_argument("--threads", type=int, default=1)
    return p.parse_args()


if __name__ == "__main__":
    main()
