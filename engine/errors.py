"""Typed errors of the engine.

Every error carries a message a user can read as it is: it names the file or
the model and says what is wrong. The app shows ``str(error)`` in a dialog and
the command line prints it on one line, so messages must not need a traceback
to make sense.
"""

from __future__ import annotations


class EngineError(Exception):
    """Base of every error the engine raises on purpose."""


class InvalidInputError(EngineError):
    """A request or argument is malformed (bad size, unknown option, ...)."""


class ImageReadError(InvalidInputError):
    """A file could not be read as an image: missing, corrupt, truncated, unsupported."""


class ImageTooLargeError(InvalidInputError):
    """An image is larger than the supported size."""


class MaskMismatchError(InvalidInputError):
    """A mask does not have the size of the photo it belongs to."""


class ImageWriteError(EngineError):
    """An image could not be written (format, permissions, existing file)."""


class UnknownModelError(InvalidInputError):
    """No model with that id is registered."""


class WeightsError(EngineError):
    """A model's weights file is missing, tampered with or unreadable."""


class DeviceError(EngineError):
    """The requested compute device is not available."""


class OutOfMemoryError(EngineError):
    """The job ran out of memory; nothing was changed."""


class JobCancelled(EngineError):
    """The job was cancelled by the user; nothing was changed."""

    def __init__(self, message: str = "Cancelled.") -> None:
        super().__init__(message)
