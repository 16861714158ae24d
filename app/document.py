"""The canvas model: one photo, its mask and their history, without Qt.

Widgets translate events into calls on a :class:`Document` and repaint the
rectangles it reports through :meth:`Document.subscribe`. The photo is a
read-only RGB uint8 ``(H, W, 3)`` array that is replaced, never written, so
it can be handed to the engine's worker thread as it is; the mask is a
writable bool ``(H, W)`` array (True = hole) that lives as long as the
document, so views may wrap its memory.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app import mask_ops
from app.geometry import Rect, bounding_rect
from app.history import Command, History, MaskEdit, PackedMask, PhotoEdit

# Side of the square tiles a stroke snapshots before touching them (undo data).
TILE = 256


@dataclass(frozen=True)
class Change:
    """What changed: the photo and/or the mask, inside ``rect`` (image pixels)."""

    rect: Rect
    photo: bool = False
    mask: bool = False


def _frozen(array: np.ndarray) -> np.ndarray:
    if array.flags.writeable:
        array = array.view()
        array.flags.writeable = False
    return array


class Document:
    """A photo being edited.

    Args:
        photo: RGB uint8 (H, W, 3).
        source: the ``engine.imageio.Photo`` it was read from (kept for saving
            with the same alpha, ICC profile and EXIF), or None (pasted image).
        path: the file it came from, or None.
    """

    def __init__(self, photo: np.ndarray, source: Any = None, path: Path | None = None) -> None:
        if photo.dtype != np.uint8 or photo.ndim != 3 or photo.shape[2] != 3:
            raise ValueError(f"expected an RGB uint8 (H, W, 3) photo, got {photo.shape}")
        self._photo = _frozen(photo)
        self.original = self._photo
        self.mask = np.zeros(photo.shape[:2], bool)
        self.source = source
        self.path = Path(path) if path is not None else None
        self.history = History()
        self._listeners: list[Callable[[Change], None]] = []

    # -- observation --------------------------------------------------------------------

    def subscribe(self, listener: Callable[[Change], None]) -> None:
        """Call ``listener(change)`` after every change of the photo or the mask."""
        self._listeners.append(listener)

    def unsubscribe(self, listener: Callable[[Change], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _notify(self, change: Change) -> None:
        for listener in list(self._listeners):
            listener(change)

    # -- properties ---------------------------------------------------------------------

    @property
    def photo(self) -> np.ndarray:
        """The current photo: read-only RGB uint8 (H, W, 3)."""
        return self._photo

    @property
    def width(self) -> int:
        return self._photo.shape[1]

    @property
    def height(self) -> int:
        return self._photo.shape[0]

    @property
    def bounds(self) -> Rect:
        return Rect(0, 0, self.width, self.height)

    @property
    def modified(self) -> bool:
        """The photo has changes that were not saved (mask edits alone do not count)."""
        return self.history.photo_changed_since_clean()

    def mark_saved(self, path: Path) -> None:
        self.path = Path(path)
        self.history.mark_clean()

    # -- low-level writes used by history commands -----------------------------------------

    def write_mask(self, rect: Rect, values: np.ndarray) -> None:
        """Overwrite the mask inside ``rect`` (no history step)."""
        self.mask[rect.slices] = values
        self._notify(Change(rect, mask=True))

    def replace_photo(self, photo: np.ndarray, rect: Rect) -> None:
        """Make ``photo`` (same size) current; it differs from the old one inside ``rect`` only."""
        self._photo = _frozen(photo)
        self._notify(Change(rect, photo=True))

    # -- mask editing ---------------------------------------------------------------------

    def begin_stroke(self, radius: float, erase: bool = False) -> Stroke:
        """Start a brush (or eraser) stroke of ``radius`` image pixels."""
        return Stroke(self, radius, erase)

    def push(self, command: Command) -> None:
        self.history.push(command)
        if isinstance(command, PhotoEdit):
            # Only the latest result keeps its alternatives around (they are full photos).
            for old in self.history.photo_edits()[:-1]:
                old.samples = []

    def set_mask_region(self, rect: Rect, values: np.ndarray, label: str) -> bool:
        """Set the mask inside ``rect`` to ``values`` as one undoable step; False if unchanged."""
        rect = rect.clip(self.width, self.height)
        if rect.empty:
            return False
        before = self.mask[rect.slices].copy()
        if np.array_equal(before, values):
            return False
        self.push(MaskEdit.from_regions(label, [(rect, before, values)]))
        self.write_mask(rect, values)
        return True

    def fill_rect(self, rect: Rect, erase: bool = False) -> bool:
        """Make every pixel of ``rect`` a hole (or known, with ``erase``)."""
        rect = rect.clip(self.width, self.height)
        if rect.empty:
            return False
        values = np.full((rect.height, rect.width), not erase)
        return self.set_mask_region(rect, values, "Erase rectangle" if erase else "Rectangle")

    def fill_polygon(self, points: Sequence[tuple[float, float]], erase: bool = False) -> bool:
        """Add (or with ``erase`` remove) the pixels whose centres a lasso polygon encloses."""
        rect, inside = mask_ops.polygon(self.mask.shape, points)
        if rect.empty:
            return False
        region = self.mask[rect.slices]
        values = region & ~inside if erase else region | inside
        return self.set_mask_region(rect, values, "Erase lasso" if erase else "Lasso")

    def grow_mask(self, pixels: int) -> bool:
        return self._apply(mask_ops.grow(self.mask, pixels), f"Grow mask {pixels} px")

    def shrink_mask(self, pixels: int) -> bool:
        return self._apply(mask_ops.shrink(self.mask, pixels), f"Shrink mask {pixels} px")

    def feather_mask(self, pixels: int) -> bool:
        return self._apply(mask_ops.feather(self.mask, pixels), f"Feather mask {pixels} px")

    def _apply(self, edit: tuple[Rect, np.ndarray] | None, label: str) -> bool:
        return edit is not None and self.set_mask_region(edit[0], edit[1], label)

    def invert_mask(self) -> bool:
        return self.set_mask_region(self.bounds, ~self.mask, "Invert mask")

    def clear_mask(self) -> bool:
        rect = bounding_rect(self.mask)
        if rect is None:
            return False
        return self.set_mask_region(rect, np.zeros((rect.height, rect.width), bool), "Clear mask")

    def replace_mask(self, mask: np.ndarray, label: str = "Import mask") -> bool:
        """Replace the whole mask (e.g. one read from a PNG); must have the photo's size."""
        if mask.shape != self.mask.shape:
            raise ValueError(f"mask is {mask.shape}, photo is {self.mask.shape}")
        return self.set_mask_region(self.bounds, mask.astype(bool, copy=False), label)

    # -- results --------------------------------------------------------------------------

    def apply_result(
        self, request_image: np.ndarray, request_mask: np.ndarray, result: np.ndarray, label: str
    ) -> PhotoEdit:
        """Make ``result`` (computed from ``request_image`` and ``request_mask``) the photo.

        One undoable step that also clears the job's hole from the mask, so the
        user can paint the next hole on the result; undo restores both.
        """
        hole = bounding_rect(request_mask)
        # The engine leaves pixels outside the hole bit-identical, so only the
        # hole's bounding box changes, unless the photo changed while the job
        # ran (an undo): then the result differs anywhere.
        rect = hole if request_image is self._photo and hole is not None else self.bounds
        step = PhotoEdit(label, rect, self._photo, _frozen(result), samples=[result])
        if hole is not None:
            # Clear the job's hole, keeping what was painted while it ran
            # (``mask > hole`` is ``mask & ~hole`` for bools, in one pass, in place).
            region = self.mask[hole.slices]
            before = PackedMask.pack(region)
            np.greater(region, request_mask[hole.slices], out=region)
            step.mask = MaskEdit("", [(hole, before, PackedMask.pack(region))])
        self.push(step)
        if hole is not None:
            self._notify(Change(hole, mask=True))
        self.replace_photo(step.after, rect)
        return step

    def can_replace_result(self, step: PhotoEdit) -> bool:
        """Whether ``step`` is still the latest applied photo change (its sample can be swapped)."""
        return self.history.last_photo_edit() is step

    def replace_result(self, step: PhotoEdit, result: np.ndarray) -> bool:
        """Swap the sample that ``step`` applied for another one of the same job."""
        if not self.can_replace_result(step):
            return False
        # Samples of one job differ only inside the hole's rectangle.
        step.after = _frozen(result)
        self.replace_photo(step.after, step.rect)
        return True

    def undo(self) -> Command | None:
        return self.history.undo(self)

    def redo(self) -> Command | None:
        return self.history.redo(self)


class Stroke:
    """A brush or eraser stroke in progress; call :meth:`finish` to record it for undo.

    Before a tile of the mask is first touched its content is copied, so undo
    data grows with the area the stroke covers, never with the photo.
    """

    def __init__(self, doc: Document, radius: float, erase: bool) -> None:
        self.doc = doc
        self.radius = float(radius)
        self.erase = erase
        self._last: tuple[float, float] | None = None
        self._before: dict[tuple[int, int], np.ndarray] = {}

    def add_point(self, x: float, y: float) -> Rect | None:
        """Extend the stroke to ``(x, y)`` (image coordinates); returns the rectangle it touched."""
        a = self._last if self._last is not None else (x, y)
        b = (x, y)
        self._last = b
        doc = self.doc
        rect = mask_ops.segment_rect(a, b, self.radius).clip(doc.width, doc.height)
        if rect.empty:
            return None
        cover = mask_ops.capsule(rect, a, b, self.radius)
        self._snapshot(rect)
        region = doc.mask[rect.slices]
        if self.erase:
            region &= ~cover
        else:
            region |= cover
        doc._notify(Change(rect, mask=True))
        return rect

    def _snapshot(self, rect: Rect) -> None:
        mask = self.doc.mask
        for ty in range(rect.y0 // TILE, (rect.y1 - 1) // TILE + 1):
            for tx in range(rect.x0 // TILE, (rect.x1 - 1) // TILE + 1):
                if (ty, tx) not in self._before:
                    tile = _tile_rect(ty, tx, mask.shape)
                    self._before[ty, tx] = mask[tile.slices].copy()

    def finish(self) -> MaskEdit | None:
        """Record the stroke as one undoable step (None if it changed nothing)."""
        mask = self.doc.mask
        regions = []
        for (ty, tx), before in self._before.items():
            tile = _tile_rect(ty, tx, mask.shape)
            after = mask[tile.slices]
            if not np.array_equal(before, after):
                regions.append((tile, before, after.copy()))
        self._before.clear()
        if not regions:
            return None
        edit = MaskEdit.from_regions("Eraser stroke" if self.erase else "Brush stroke", regions)
        self.doc.push(edit)
        return edit


def _tile_rect(ty: int, tx: int, shape: tuple[int, int]) -> Rect:
    h, w = shape
    return Rect(tx * TILE, ty * TILE, min(w, (tx + 1) * TILE), min(h, (ty + 1) * TILE))
