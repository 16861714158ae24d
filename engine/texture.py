"""Texture from the photo itself: rebuild a model's fill from the photo's own patches.

A learned model at working size gets the hole's structure right (where the horizon
runs, which colour goes where) but averages its texture away: grass, rock and fruit
come back as soft patches. This stage keeps the model's structure and replaces its
pixels with the photo's: a coarse-to-fine patch search and voting (Wexler, Shechtman
and Irani 2007; Barnes et al. 2009, PatchMatch) that starts from the model's fill.

- A pyramid of the photo (the model's fill in the hole) from the working size down to
  about :data:`COARSEST` px. At every level a source patch is a ``PATCH`` x ``PATCH``
  window that lies wholly in the known part; a target is every window that touches the
  hole.
- Coarsest level: each target window is matched exactly against every source window
  (one matrix product), compared on a mix of the current estimate and the model's fill
  (the guide: it keeps the model's structure while the copies take over the texture).
  Each hole pixel is then the vote of the source pixels its windows matched, weighted
  by how well each window matched; a few rounds of match and vote.
- Each finer level starts from the coarser match, scaled up (coherent copies stay
  coherent), votes, and improves the match: exactly while the level is small, else by
  PatchMatch's propagation (a neighbour's match, shifted) and random search around the
  current match, all targets at once. The guide's weight halves at each finer level.
- The result keeps the model's fill below a scale of about 2 px (Gaussian sigma) and
  takes only the copies' detail above it: on validation photos this beat the copies
  alone in deep-feature distance, L1 and SSIM (the copies alone drift from the model's
  structure wherever the photo holds no exact match).
- Only hole pixels change; known pixels are never touched (the strategies composite).

Everything runs in torch on the engine's device, deterministic per seed; a cancel is
honoured between pyramid levels.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from engine.highres.common import downscale_mask
from engine.jobs import CancelToken
from engine.models.base import InpaintModel

# Window side compared and voted at every level.
PATCH = 5
# Long side (px) the coarsest level is brought down to, at most.
COARSEST = 64
# Exact matching while targets x sources stays below this (else PatchMatch).
EXACT_BUDGET = 3.2e7
# Rows of the exact distance matrix per chunk (bounds its memory).
EXACT_CHUNK = 4096


@dataclass(frozen=True)
class TextureSettings:
    """The knobs of :func:`refine_texture`.

    Attributes:
        coarse_rounds: match-and-vote rounds at the coarsest level.
        rounds: match-and-vote rounds at every finer level.
        search_iters: PatchMatch iterations per round (levels too large for exact matching).
        random_tries: random-search candidates per PatchMatch iteration.
        guide: weight of the model's fill against the current estimate at the coarsest
            level (0 = the estimate alone); halves at each finer level.
        detail_sigma: the result keeps the model's fill below this scale (Gaussian sigma,
            px) and takes only the copies' detail above it; 0 = the copies alone.
        components: windows are compared on this many main components of the level's
            source windows (0 = all 3*PATCH*PATCH values): half the time, the same fills.
    """

    coarse_rounds: int = 3
    rounds: int = 2
    search_iters: int = 2
    random_tries: int = 3
    guide: float = 1.0
    detail_sigma: float = 2.0
    components: int = 12


DEFAULT_SETTINGS = TextureSettings()


def _level_shapes(h: int, w: int) -> list[tuple[int, int]]:
    """Pyramid level shapes from the coarsest to (h, w), halving the sides."""
    shapes = [(h, w)]
    while max(shapes[-1]) > COARSEST and min(shapes[-1]) >= 2 * PATCH:
        ph, pw = shapes[-1]
        shapes.append(((ph + 1) // 2, (pw + 1) // 2))
    return shapes[::-1]


class _Level:
    """One pyramid level: its pixels, hole, targets and source windows, all flattened."""

    def __init__(
        self,
        photo: np.ndarray,
        mask: np.ndarray,
        shape: tuple[int, int],
        device: torch.device,
        components: int = 0,
    ) -> None:
        h, w = shape
        self.h, self.w = h, w
        small = (
            photo
            if photo.shape[:2] == shape
            else cv2.resize(photo, (w, h), interpolation=cv2.INTER_AREA)
        )
        # A level pixel is a hole if it covers any hole pixel.
        hole = mask if mask.shape == shape else downscale_mask(mask, (w, h))
        r = PATCH // 2
        kernel = np.ones((PATCH, PATCH), np.uint8)
        touched = cv2.dilate(hole.view(np.uint8), kernel).astype(bool)
        valid = ~touched
        valid[:r], valid[h - r :], valid[:, :r], valid[:, w - r :] = False, False, False, False
        self.device = device
        self.pixels = torch.from_numpy(small.reshape(-1, 3).astype(np.float32) / 255).to(device)
        self.hole = torch.from_numpy(np.flatnonzero(hole)).to(device)
        self.targets = torch.from_numpy(np.flatnonzero(touched)).to(device)
        self.sources = torch.from_numpy(np.flatnonzero(valid)).to(device)
        self.valid = torch.from_numpy(valid.reshape(-1)).to(device)
        dy, dx = torch.meshgrid(torch.arange(PATCH), torch.arange(PATCH), indexing="ij")
        self._offsets = (dy * (w + 2 * r) + dx).flatten().to(device)
        self._basis = None
        if components and len(self.sources):
            # The main components of the source windows (a sample of them is enough).
            sample = self.windows(self.pixels, self.sources[:: max(1, len(self.sources) // 20000)])
            self._mean = sample.mean(0)
            centred = sample - self._mean
            _, vectors = torch.linalg.eigh(centred.T @ centred)
            self._basis = vectors[:, -components:]
            # Every window projected at once: a convolution with the components as kernels.
            kernels = self._basis.T.reshape(components, PATCH, PATCH, 3).permute(0, 3, 1, 2)
            grid = F.pad(self.pixels.T.reshape(1, 3, h, w), (r, r, r, r), mode="replicate")
            # Channels last, so each position's values are one contiguous row: the search
            # gathers whole rows.
            grid = grid.contiguous(memory_format=torch.channels_last)
            projected = F.conv2d(grid, kernels.contiguous()).permute(0, 2, 3, 1)
            self.source_windows = projected.reshape(h * w, components) - self._mean @ self._basis
        else:
            self.source_windows = self.windows(self.pixels)

    @functools.cached_property
    def covering(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """For every window offset d (rows) and hole pixel q (columns): the window centred at
        q - d that covers q at offset d (flat index), whether it lies in the level, and d as a
        flat shift."""
        r = PATCH // 2
        qy, qx = self.coords(self.hole)
        d = torch.arange(-r, r + 1, device=self.device)
        dy, dx = d.repeat_interleave(PATCH)[:, None], d.repeat(PATCH)[:, None]
        covering, inside = self.flat(qy - dy, qx - dx)
        return covering, inside, dy * self.w + dx

    def _project(self, windows: torch.Tensor) -> torch.Tensor:
        return windows if self._basis is None else (windows - self._mean) @ self._basis

    def features(self, pixels: torch.Tensor, at: torch.Tensor) -> torch.Tensor:
        """What windows are compared on: :meth:`windows`, projected on the source windows'
        main components when the level has a basis."""
        return self._project(self.windows(pixels, at))

    def windows(self, pixels: torch.Tensor, at: torch.Tensor | None = None) -> torch.Tensor:
        """(len(at), 3*PATCH*PATCH): the window centred on each pixel ``at`` (flat indices;
        all pixels if None), edges replicated."""
        r = PATCH // 2
        # Padded in the pixels' own layout (an NCHW view with channels-last strides): each
        # padded pixel's values stay contiguous, so whole rows are gathered, with no transpose.
        grid = pixels.view(1, self.h, self.w, 3).permute(0, 3, 1, 2)
        padded = F.pad(grid, (r, r, r, r), mode="replicate").permute(0, 2, 3, 1).reshape(-1, 3)
        at = torch.arange(self.h * self.w, device=self.device) if at is None else at
        y, x = self.coords(at)
        corner = y * (self.w + 2 * r) + x  # the window's top-left in the padded grid
        return _rows(padded, corner[:, None] + self._offsets).flatten(1)

    def coords(self, flat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return flat // self.w, flat % self.w

    def flat(self, y: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Flat indices of (y, x) clamped into the level, and whether each was inside."""
        inside = (y >= 0) & (y < self.h) & (x >= 0) & (x < self.w)
        return y.clamp(0, self.h - 1) * self.w + x.clamp(0, self.w - 1), inside


def _exact_match(level: _Level, query: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Best source window (flat index) and its squared distance for each target window."""
    src = _rows(level.source_windows, level.sources)
    src_sq = (src * src).sum(1)
    best, dist = [], []
    for chunk in query.split(EXACT_CHUNK):
        # |c|^2 - 2 c.s + |s|^2 in place: the same sums in the same order as written out.
        d = torch.mm(chunk, src.T).mul_(-2).add_((chunk * chunk).sum(1, keepdim=True))
        d.add_(src_sq)
        value, index = d.min(1)
        best.append(level.sources[index])
        dist.append(value.clamp_min(0))
    return torch.cat(best), torch.cat(dist)


def _rows(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``table[index]`` for a 2-D ``table`` and an index of any shape: ``index_select`` on
    the flattened index, several times faster than advanced indexing on the CPU."""
    return table.index_select(0, index.flatten()).view(*index.shape, table.shape[1])


def _distance(level: _Level, query: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """Squared distance between each query window and its source window's features;
    ``source`` is (N,) or (K, N) for K candidates per query."""
    diff = _rows(level.source_windows, source).sub_(query)  # a fresh tensor: in place
    return diff.mul_(diff).sum(-1)


def _patchmatch(
    level: _Level,
    query: torch.Tensor,
    match: torch.Tensor,
    settings: TextureSettings,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Improve ``match`` (flat source index per target) by propagation and random search."""
    dist = _distance(level, query, match)
    grid = torch.zeros(level.h * level.w, dtype=torch.long, device=level.device)
    ty, tx = level.coords(level.targets)
    radius0 = max(level.h, level.w) / 2
    for _ in range(settings.search_iters):
        grid[level.targets] = match
        cys, cxs, oks = [], [], []
        for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
            # The neighbour's match shifted back: a coherent copy grows.
            n, inside = level.flat(ty + dy, tx + dx)
            sy, sx = level.coords(grid.take(n))
            cys.append(sy - dy)
            cxs.append(sx - dx)
            oks.append(inside)
        sy, sx = level.coords(match)
        radius = radius0
        for _ in range(settings.random_tries):
            r = max(1, int(radius))
            shift = torch.randint(-r, r + 1, (2, len(match)), generator=generator)
            shift = shift.to(level.device)
            cys.append(sy + shift[0])
            cxs.append(sx + shift[1])
            radius /= 4
        # Every candidate at once; the first of the lowest distances wins, the current
        # match on a tie (what trying them one by one with a strict "<" gives).
        cand, inside = level.flat(torch.stack(cys), torch.stack(cxs))
        ok = inside & level.valid.take(cand)
        ok[: len(oks)] &= torch.stack(oks)
        d = _distance(level, query, cand).masked_fill_(~ok, float("inf"))
        d = torch.cat([dist[None], d])
        dist, best = d.min(0)
        cand = torch.cat([match[None], cand])
        match = cand.gather(0, best[None])[0]
    return match, dist


def _vote(level: _Level, match: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
    """New hole pixels: each the weighted mean of what the windows covering it copied.

    A window's weight falls with its match distance (relative to the median), so a
    well-matched copy wins over a poor one instead of being averaged with it.
    """
    scale = dist.median().clamp_min(1e-6)
    weight = torch.zeros(level.h * level.w, device=level.device)
    # Clamped so a pixel whose every window matched poorly still gets a (flat) vote.
    weight[level.targets] = torch.exp(-(dist / scale).clamp_max(30))
    grid = torch.zeros(level.h * level.w, dtype=torch.long, device=level.device)
    grid[level.targets] = match
    covering, inside, shift = level.covering
    w = weight.take(covering) * inside  # (offsets, hole pixels)
    source = (grid.take(covering) + shift).clamp_(0, level.h * level.w - 1)
    acc = _rows(level.pixels, source).mul_(w[..., None]).sum(0)
    return acc / w.sum(0)[:, None].clamp_min(1e-12)


def _upsample_match(coarse: _Level, match: torch.Tensor, fine: _Level, g) -> torch.Tensor:
    """The coarse match carried to the fine level's targets as offsets scaled up."""
    grid = torch.zeros(coarse.h * coarse.w, dtype=torch.long, device=coarse.device)
    grid[coarse.targets] = match
    fy, fx = fine.coords(fine.targets)
    fh, fw = fine.h / coarse.h, fine.w / coarse.w
    cy = (fy / fh).long().clamp(0, coarse.h - 1)
    cx = (fx / fw).long().clamp(0, coarse.w - 1)
    sy, sx = coarse.coords(grid[cy * coarse.w + cx])
    cand, inside = fine.flat(
        fy + torch.round((sy - cy) * fh).long(), fx + torch.round((sx - cx) * fw).long()
    )
    ok = inside & fine.valid[cand]
    fallback = fine.sources[
        torch.randint(len(fine.sources), (len(cand),), generator=g).to(fine.device)
    ]
    return torch.where(ok, cand, fallback)


def _blur(pixels: torch.Tensor, h: int, w: int, sigma: float) -> torch.Tensor:
    """Gaussian blur of (h*w, 3) pixels (separable, edges reflected)."""
    radius = max(1, int(3 * sigma + 0.5))
    taps = torch.arange(-radius, radius + 1, dtype=pixels.dtype, device=pixels.device)
    kernel = torch.exp(-(taps**2) / (2 * sigma**2))
    kernel = (kernel / kernel.sum()).repeat(3, 1, 1)
    grid = pixels.T.reshape(1, 3, h, w)
    grid = F.conv2d(
        F.pad(grid, (radius, radius, 0, 0), mode="reflect"), kernel[:, :, None], groups=3
    )
    grid = F.conv2d(
        F.pad(grid, (0, 0, radius, radius), mode="reflect"), kernel[:, :, :, None], groups=3
    )
    return grid.reshape(3, -1).T


def refine_texture(
    image: np.ndarray,
    mask: np.ndarray,
    fill: np.ndarray,
    seed: int = 0,
    cancel: CancelToken | None = None,
    device: str = "cpu",
    settings: TextureSettings = DEFAULT_SETTINGS,
) -> np.ndarray:
    """The model's ``fill`` with its hole rebuilt from the photo's own patches.

    Args:
        image: RGB uint8 (h, w, 3) at working size; hole pixels are ignored.
        mask: bool (h, w), True = hole.
        fill: RGB uint8 (h, w, 3), the model's fill (only hole pixels are used).
        seed: the random search's seed (same seed, same result).
        cancel: checked between pyramid levels.
        device: torch device to run on.

    Returns:
        RGB uint8 (h, w, 3): known pixels of ``image``, hole pixels rebuilt. ``fill``
        itself when the photo has no window to copy from.
    """
    h, w = mask.shape
    photo = np.where(mask[..., None], fill, image)
    dev = torch.device(device)
    generator = torch.Generator().manual_seed(int(seed) % 2**63)
    levels = []
    for shape in _level_shapes(h, w):
        level = _Level(photo, mask, shape, dev, settings.components)
        if len(level.sources) == 0 or len(level.hole) == 0:
            return fill
        levels.append(level)
    with torch.inference_mode():
        estimate = None
        match = dist = None
        guide = settings.guide
        for i, level in enumerate(levels):
            if cancel is not None:
                cancel.check()
            model_fill = level.pixels  # the model's fill in the hole at this level
            fill_windows = level.features(model_fill, level.targets)
            estimate = model_fill.clone()
            if match is None:
                rounds = settings.coarse_rounds
            else:
                match = _upsample_match(levels[i - 1], match, level, generator)
                dist = _distance(level, fill_windows, match)
                estimate[level.hole] = _vote(level, match, dist)
                rounds = settings.rounds
            guide_windows = fill_windows if guide > 0 else None
            # The coarsest level is always matched exactly (there is no match to improve yet).
            exact = match is None or len(level.targets) * len(level.sources) <= EXACT_BUDGET
            for _ in range(rounds):
                query = level.features(estimate, level.targets)
                if guide_windows is not None:
                    query = (query + guide * guide_windows) / (1 + guide)
                if exact:
                    match, dist = _exact_match(level, query)
                else:
                    match, dist = _patchmatch(level, query, match, settings, generator)
                estimate[level.hole] = _vote(level, match, dist)
            guide /= 2
        assert estimate is not None
        if settings.detail_sigma > 0:
            # Two bands: the model's structure below the scale, the copies' texture above.
            finest = levels[-1]
            low = _blur(finest.pixels, h, w, settings.detail_sigma)
            high = estimate - _blur(estimate, h, w, settings.detail_sigma)
            estimate[finest.hole] = (low + high)[finest.hole]
        out = (estimate.clamp(0, 1) * 255 + 0.5).to(torch.uint8).reshape(h, w, 3).cpu().numpy()
    return np.where(mask[..., None], out, image)


class TextureRefined(InpaintModel):
    """A model whose every fill goes through :func:`refine_texture` (same spec and device).

    Works under every high-resolution strategy, since they all ask the model for fills at
    working size; ``cra`` keeps the inner model's attention scores and copies residuals
    cell by cell (``texture``).
    """

    texture = True

    def __init__(self, inner: InpaintModel, settings: TextureSettings = DEFAULT_SETTINGS) -> None:
        super().__init__(inner.spec, inner.device)
        self.inner = inner
        self.settings = settings
        self.parallel_views = inner.parallel_views

    def _refine(self, image, mask, fill, seed, cancel=None) -> np.ndarray:
        return refine_texture(image, mask, fill, seed, cancel, self.device, self.settings)

    def predict(self, image: np.ndarray, mask: np.ndarray, seed: int) -> np.ndarray:
        return self._refine(image, mask, self.inner.predict(image, mask, seed), seed)

    def generate(
        self,
        image: np.ndarray,
        mask: np.ndarray,
        seeds: Sequence[int],
        cancel: CancelToken | None = None,
        attention: bool = False,
    ) -> Iterator[Any]:
        draws = self.inner.generate(image, mask, seeds, cancel, attention)
        for seed, item in zip(seeds, draws, strict=True):
            if attention:
                fill, scores = item
                yield self._refine(image, mask, fill, seed, cancel), scores
            else:
                yield self._refine(image, mask, item, seed, cancel)
