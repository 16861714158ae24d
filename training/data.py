"""Training and validation images: any folder of photos, split by file.

If the folder holds a ``manifest.json`` written by ``fetch-data`` its split is used;
otherwise every image under the folder is assigned to train or validation by a hash of its
relative path (the same rule), so any folder of images (e.g. Places2) works as ``--data``.

Training samples are random crops at random scales with horizontal flips, each with a fresh
irregular mask; everything is drawn from one ``numpy.random.Generator`` so a seed fixes the
whole stream.
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from training.fetch import IMAGE_SUFFIXES, split_of
from training.masks import training_mask


def list_split(root: Path, split: str) -> list[Path]:
    """Image files of ``split`` ('train', 'val' or 'test') under ``root``, sorted."""
    root = Path(root)
    manifest = root / "manifest.json"
    if manifest.is_file():
        files = json.loads(manifest.read_text())["files"]
        return [root / e["file"] for e in files if e["split"] == split]
    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    return [p for p in paths if split_of(p.relative_to(root).as_posix()) == split]


def read_rgb(path: Path, max_side: int | None = None) -> np.ndarray:
    """RGB uint8 (H, W, 3); downscaled (area) so its longer side is at most ``max_side``."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise OSError(f"cannot read image {path}")
    if max_side and max(bgr.shape[:2]) > max_side:
        f = max_side / max(bgr.shape[:2])
        size = (max(1, round(bgr.shape[1] * f)), max(1, round(bgr.shape[0] * f)))
        bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(bgr[:, :, ::-1])


@dataclass
class Batch:
    """A training batch: ``image`` (N, 3, H, W) float [0, 1], ``mask`` (N, 1, H, W) 1 = hole."""

    image: torch.Tensor
    mask: torch.Tensor

    def to(self, device: torch.device | str, channels_last: bool = False) -> Batch:
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        # non_blocking only overlaps when the source is pinned (see BatchPrefetcher).
        return Batch(
            self.image.to(device, memory_format=fmt, non_blocking=True),
            self.mask.to(device, memory_format=fmt, non_blocking=True),
        )

    def pin_memory(self) -> Batch:
        return Batch(self.image.pin_memory(), self.mask.pin_memory())


class CropSampler:
    """Random crops with masks from images kept in memory.

    Args:
        files: image paths.
        crop: side of the square crops.
        max_side: images are kept at most this large (decoding photos every step is slow).
        min_scale: smallest random downscale of an image before cropping (1 = never smaller
            than stored); a crop never needs upscaling beyond ``crop``.
        masks: the config's ``masks`` section (see :func:`training.masks.training_mask`).
        extra: more image sets, each ``(files, share)``: that share of the crops is drawn
            from it (e.g. textures beside the photos), the rest from ``files``. Without
            extras the random stream is exactly that of a single set.
    """

    def __init__(
        self,
        files: list[Path],
        crop: int,
        max_side: int = 1024,
        min_scale: float = 0.25,
        masks: dict | None = None,
        extra: list[tuple[list[Path], float]] = (),
    ) -> None:
        if not files:
            raise ValueError("no training images found")
        self.images = [read_rgb(p, max_side) for p in files]
        self.extra = []
        for extra_files, share in extra:
            if not extra_files:
                raise ValueError("an extra image set is empty")
            self.extra.append(([read_rgb(p, max_side) for p in extra_files], float(share)))
        if sum(share for _, share in self.extra) >= 1:
            raise ValueError("the extra sets' shares must add up to less than 1")
        self.crop = crop
        self.min_scale = min_scale
        self.masks = masks or {}

    @classmethod
    def from_config(cls, data: dict, crop: int, masks: dict | None = None) -> CropSampler:
        """The training sampler of a config's ``data`` section: ``root``'s train split plus
        every ``extra`` entry (``{"root": ..., "share": ...}``)."""
        return cls(
            list_split(Path(data["root"]), "train"),
            crop,
            int(data.get("max_side", 1024)),
            float(data.get("min_scale", 0.25)),
            masks,
            [(list_split(Path(e["root"]), "train"), e["share"]) for e in data.get("extra", [])],
        )

    def _pool(self, rng: np.random.Generator) -> list[np.ndarray]:
        if not self.extra:
            return self.images
        u = rng.random()
        for images, share in self.extra:
            if u < share:
                return images
            u -= share
        return self.images

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One (RGB uint8 crop x crop x 3, bool mask crop x crop) pair."""
        pool = self._pool(rng)
        image = pool[int(rng.integers(len(pool)))]
        h, w = image.shape[:2]
        c = self.crop
        # The scale shrinks the photo so a crop covers more context; never below crop size.
        lo = max(self.min_scale, c / min(h, w))
        scale = float(np.exp(rng.uniform(np.log(lo), 0.0))) if lo < 1 else c / min(h, w)
        win = min(round(c / scale), h, w)
        y, x = int(rng.integers(0, h - win + 1)), int(rng.integers(0, w - win + 1))
        patch = image[y : y + win, x : x + win]
        if win != c:
            interp = cv2.INTER_AREA if win > c else cv2.INTER_LINEAR
            patch = cv2.resize(patch, (c, c), interpolation=interp)
        if rng.random() < 0.5:
            patch = patch[:, ::-1]
        mask = training_mask(c, c, rng, self.masks)
        return np.ascontiguousarray(patch), mask

    def batch(self, rng: np.random.Generator, size: int) -> Batch:
        pairs = [self.sample(rng) for _ in range(size)]
        image = torch.from_numpy(np.stack([p[0] for p in pairs])).permute(0, 3, 1, 2)
        mask = torch.from_numpy(np.stack([p[1] for p in pairs]))[:, None]
        return Batch(image.float().div_(255.0), mask.float())


class BatchPrefetcher:
    """Draws the batches of steps ``start``, ``start + 1``, ... in a background thread, up to
    ``depth`` ahead of the training loop, so a GPU never waits for crops and masks (numpy and
    OpenCV release the GIL while they work).

    The thread draws from its own copy of ``rng``; every batch comes with that generator's
    state after drawing it, which the trainer copies into its own generator when it takes the
    batch. The stream of batches and every checkpoint's RNG state are therefore exactly those
    of drawing in the loop, and a resumed run continues the same stream.

    Args:
        draw: ``draw(step, rng) -> Batch``, called in step order from the thread only.
        rng: the trainer's generator at step ``start`` (copied, not used).
        start: the first step to draw.
        depth: batches kept ready.
        pin: pin the batches' memory so copies to a GPU run asynchronously.
    """

    def __init__(
        self,
        draw: Callable[[int, np.random.Generator], Batch],
        rng: np.random.Generator,
        start: int,
        depth: int = 4,
        pin: bool = False,
    ) -> None:
        self._draw = draw
        self._rng = np.random.default_rng()
        self._rng.bit_generator.state = rng.bit_generator.state
        self._pin = pin
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(start,), daemon=True)
        self._thread.start()

    def _run(self, step: int) -> None:
        try:
            while not self._stop.is_set():
                batch = self._draw(step, self._rng)
                if self._pin:
                    batch = batch.pin_memory()
                item = (step, batch, self._rng.bit_generator.state)
                while not self._stop.is_set():
                    try:
                        self._queue.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                step += 1
        except BaseException as exc:  # handed to the training loop, which raises it
            self._queue.put((None, exc, None))

    def get(self, step: int) -> tuple[Batch, dict]:
        """The batch of ``step`` and the generator state after it was drawn."""
        got, batch, state = self._queue.get()
        if got is None:
            raise RuntimeError("drawing a training batch failed") from batch
        if got != step:
            raise RuntimeError(f"prefetched batch of step {got} arrived for step {step}")
        return batch, state

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.get_nowait()
        self._thread.join(timeout=10)


def center_square(image: np.ndarray, size: int) -> np.ndarray:
    """Resize so the shorter side is ``size`` (area filter), then crop the centre square."""
    h, w = image.shape[:2]
    f = size / min(h, w)
    nh, nw = max(size, round(h * f)), max(size, round(w * f))
    interp = cv2.INTER_AREA if f < 1 else cv2.INTER_CUBIC
    resized = cv2.resize(image, (nw, nh), interpolation=interp)
    y, x = (nh - size) // 2, (nw - size) // 2
    return np.ascontiguousarray(resized[y : y + size, x : x + size])
