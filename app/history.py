"""Undo and redo for the canvas model, without Qt.

Mask steps store only the region they changed, bit-packed (8 pixels a byte),
so a brush stroke on an 8K photo costs kilobytes, not the 33 MB of a full
mask. Photos are immutable arrays, so a photo step just keeps the photo
before and after it: undo and redo swap references and never copy 100 MB.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from app.geometry import Rect

if TYPE_CHECKING:
    from app.document import Document


@dataclass(frozen=True)
class PackedMask:
    """A bool array stored 8 pixels per byte."""

    shape: tuple[int, int]
    bits: np.ndarray

    @classmethod
    def pack(cls, values: np.ndarray) -> PackedMask:
        return cls(values.shape, np.packbits(values, axis=None))

    def unpack(self) -> np.ndarray:
        count = self.shape[0] * self.shape[1]
        return np.unpackbits(self.bits, count=count).view(bool).reshape(self.shape)

    @property
    def nbytes(self) -> int:
        return self.bits.nbytes


class Command:
    """One undoable step. ``label`` names it in the Edit menu ("Undo Brush stroke")."""

    label: str

    def undo(self, doc: Document) -> None:
        raise NotImplementedError

    def redo(self, doc: Document) -> None:
        raise NotImplementedError

    @property
    def nbytes(self) -> int:
        return 0


@dataclass(eq=False)
class MaskEdit(Command):
    """Mask pixels before and after, for one or more rectangles."""

    label: str
    patches: list[tuple[Rect, PackedMask, PackedMask]] = field(default_factory=list)

    @classmethod
    def from_regions(
        cls, label: str, regions: Sequence[tuple[Rect, np.ndarray, np.ndarray]]
    ) -> MaskEdit:
        return cls(label, [(r, PackedMask.pack(b), PackedMask.pack(a)) for r, b, a in regions])

    def undo(self, doc: Document) -> None:
        for rect, before, _ in reversed(self.patches):
            doc.write_mask(rect, before.unpack())

    def redo(self, doc: Document) -> None:
        for rect, _, after in self.patches:
            doc.write_mask(rect, after.unpack())

    @property
    def nbytes(self) -> int:
        return sum(b.nbytes + a.nbytes for _, b, a in self.patches)


@dataclass(eq=False)
class PhotoEdit(Command):
    """A new photo (an inpainting result) that differs from the previous one inside ``rect``.

    ``before`` and ``after`` are the whole read-only photos (shared with the
    document and the neighbouring steps, not copies). ``mask`` records the
    hole that was cleared with it, so undo brings the photo and the hole back
    together and the user can try another model. ``samples`` are the
    alternatives from the same job; ``after`` is one of them.
    """

    label: str
    rect: Rect
    before: np.ndarray
    after: np.ndarray
    mask: MaskEdit | None = None
    samples: list[np.ndarray] = field(default_factory=list)

    def undo(self, doc: Document) -> None:
        doc.replace_photo(self.before, self.rect)
        if self.mask is not None:
            self.mask.undo(doc)

    def redo(self, doc: Document) -> None:
        doc.replace_photo(self.after, self.rect)
        if self.mask is not None:
            self.mask.redo(doc)

    @property
    def nbytes(self) -> int:
        # ``before`` is the previous step's ``after``: count each photo once.
        return self.after.nbytes + (self.mask.nbytes if self.mask else 0)


class History:
    """A linear undo stack with a step and memory limit (oldest steps are dropped first).

    Args:
        max_steps: most steps kept.
        max_bytes: most bytes of pixel data kept across steps.
    """

    def __init__(self, max_steps: int = 200, max_bytes: int = 1 << 30) -> None:
        self._done: list[Command] = []
        self._undone: list[Command] = []
        self._max_steps = max_steps
        self._max_bytes = max_bytes
        # Number of applied steps when the photo was last saved; None = unreachable.
        self._clean: int | None = 0

    def push(self, command: Command) -> None:
        """Record a step that has already been applied; clears the redo list."""
        if self._clean is not None and self._clean > len(self._done):
            self._clean = None
        self._done.append(command)
        self._undone.clear()
        while len(self._done) > 1 and (
            len(self._done) > self._max_steps or sum(c.nbytes for c in self._done) > self._max_bytes
        ):
            self._done.pop(0)
            self._clean = None if self._clean in (None, 0) else self._clean - 1

    def undo(self, doc: Document) -> Command | None:
        if not self._done:
            return None
        command = self._done.pop()
        command.undo(doc)
        self._undone.append(command)
        return command

    def redo(self, doc: Document) -> Command | None:
        if not self._undone:
            return None
        command = self._undone.pop()
        command.redo(doc)
        self._done.append(command)
        return command

    @property
    def can_undo(self) -> bool:
        return bool(self._done)

    @property
    def can_redo(self) -> bool:
        return bool(self._undone)

    @property
    def undo_label(self) -> str:
        return self._done[-1].label if self._done else ""

    @property
    def redo_label(self) -> str:
        return self._undone[-1].label if self._undone else ""

    @property
    def top(self) -> Command | None:
        """The last applied step."""
        return self._done[-1] if self._done else None

    def photo_edits(self) -> list[PhotoEdit]:
        """Applied and undone photo steps, oldest first."""
        steps = self._done + self._undone[::-1]
        return [c for c in steps if isinstance(c, PhotoEdit)]

    def last_photo_edit(self) -> PhotoEdit | None:
        """The most recent applied step that changed the photo."""
        for command in reversed(self._done):
            if isinstance(command, PhotoEdit):
                return command
        return None

    def photo_changed_since_clean(self) -> bool:
        """Whether the photo differs from the last saved state (mask edits do not count)."""
        if self._clean is None:
            return True
        done = len(self._done)
        if done >= self._clean:
            steps = self._done[self._clean :]
        else:
            steps = self._undone[-(self._clean - done) :]
        return any(isinstance(c, PhotoEdit) for c in steps)

    def mark_clean(self) -> None:
        self._clean = len(self._done)
