"""Reading and writing photos and masks.

Everything the engine computes on is RGB uint8 ``(H, W, 3)``; this module
turns the files people have into that and back:

- :func:`load_image` opens JPEG, PNG, TIFF, WebP and BMP, turns the pixels
  upright (EXIF orientation) and every colour mode into RGB uint8, and keeps
  what the pixels alone lose (alpha, ICC profile, EXIF) aside in a
  :class:`Photo` so :func:`save_image` can write it back.
- :func:`load_mask` reads a mask: any image the size of the photo, non-zero = hole.
- :func:`save_image` / :func:`save_mask` write atomically and never replace
  an existing file unless asked to.

Every failure is an :mod:`engine.errors` error whose text names the file and
says what is wrong in one line.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import struct
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, UnidentifiedImageError

from engine.errors import (
    ImageReadError,
    ImageTooLargeError,
    ImageWriteError,
    InvalidInputError,
    MaskMismatchError,
)
from engine.pipeline import MAX_SIDE, check_image_size
from engine.png import write_png

# PIL formats we open. (Camera JPEGs with extra preview frames open as PIL's
# "MPO" through the JPEG opener; they are JPEG files and reported as such.)
_READ_FORMATS = ("JPEG", "PNG", "TIFF", "WEBP", "BMP")
_FORMAT_NAMES = "JPEG, PNG, TIFF, WebP or BMP"

_WRITE_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
    ".bmp": "BMP",
}
_ALPHA_FORMATS = ("PNG", "TIFF", "WEBP")
# libwebp cannot store a side longer than this.
_WEBP_MAX_SIDE = 16383

# PIL modes of grey images deeper than 8 bits (16-bit, 32-bit integer, float).
_DEEP_GREY = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")

_ORIENTATION_TAG = 0x0112
# EXIF orientation -> the transposition that makes the pixels upright
# (the same table as PIL.ImageOps.exif_transpose).
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

# What PIL's plugins raise on malformed data besides OSError: parsers index
# past the end, unpack short structs, divide by zero sizes, ...
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    ZeroDivisionError,
    struct.error,
)

# PIL warns about images over ~89 Mpx and refuses those over twice that as
# possible decompression bombs, which is below the 16384 x 16384 photos we
# support (268 Mpx). Raise its limit to ours: the warning then only fires for
# images load_image rejects anyway, and their side is checked before any
# pixel is decoded, so the protection stays.
if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < MAX_SIDE * MAX_SIDE:
    Image.MAX_IMAGE_PIXELS = MAX_SIDE * MAX_SIDE


@dataclass(frozen=True, eq=False)
class Photo:
    """A photo as the engine sees it, plus what saving it back needs.

    Attributes:
        pixels: RGB uint8 ``(H, W, 3)``, upright, read-only.
        alpha: uint8 ``(H, W)`` opacity (255 = opaque) if the file had
            transparency, else None.
        icc_profile: the embedded RGB ICC profile (bytes), or None for sRGB.
        exif: the file's EXIF block with its orientation reset to 1 (the
            pixels are already upright), or None.
        format: PIL's name of the format the file was read in (``"JPEG"``,
            ``"PNG"``, ...); ``"PNG"`` for photos made in memory.
        path: the file it was read from, if any.
    """

    pixels: np.ndarray
    alpha: np.ndarray | None = None
    icc_profile: bytes | None = None
    exif: bytes | None = None
    format: str = "PNG"
    path: Path | None = None

    def __post_init__(self) -> None:
        pixels, alpha = self.pixels, self.alpha
        if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
            raise InvalidInputError(
                f"Photo pixels must be RGB uint8 (H, W, 3); got {pixels.dtype} {pixels.shape}."
            )
        if alpha is not None and (alpha.dtype != np.uint8 or alpha.shape != pixels.shape[:2]):
            raise InvalidInputError(
                f"Photo alpha must be uint8 {pixels.shape[:2]}; got {alpha.dtype} {alpha.shape}."
            )
        for name in ("pixels", "alpha"):
            array = getattr(self, name)
            if array is not None and array.flags.writeable:
                array = array.copy()
                array.flags.writeable = False
                object.__setattr__(self, name, array)

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` in pixels."""
        return self.pixels.shape[1], self.pixels.shape[0]


# --------------------------------------------------------------------- reading


def load_image(path: str | os.PathLike[str]) -> Photo:
    """Open a JPEG, PNG, TIFF, WebP or BMP file as an upright RGB uint8 photo.

    The EXIF orientation is applied to the pixels (and reset to 1 in the kept
    EXIF). Colour modes become RGB uint8: palette and grey are expanded,
    CMYK goes through its embedded ICC profile when it has one (the photo is
    then tagged sRGB), 16-bit grey is scaled (value / 257, rounded) rather
    than clipped, 32-bit integer grey is read as 16-bit when it fits and
    float grey as [0, 1] when it fits, otherwise both are stretched over
    their own range. 16-bit colour is reduced by PIL to its high byte.
    Transparency (alpha channel, transparent palette entries or colour key)
    becomes :attr:`Photo.alpha`.

    Raises:
        ImageTooLargeError: a side is longer than :data:`engine.MAX_SIDE`
            (checked from the header, before any pixel is decoded).
        ImageReadError: the file is missing, a folder, not an image in a
            supported format, corrupt or truncated.
    """
    path = Path(path)
    with warnings.catch_warnings():
        # A damaged EXIF block is skipped (tags PIL cannot read are dropped); PIL's warnings
        # about it would reach the user as lines naming PIL's own source files.
        warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
        photo = _read(path)
    return photo


def _read(path: Path) -> Photo:
    with _open(path) as im:
        fmt = "JPEG" if im.format == "MPO" else im.format
        orientation = _orientation(im)
        exif = _kept_exif(im, orientation)
        icc = im.info.get("icc_profile") or None
        pixels, alpha, icc = _to_rgb(_upright(im, orientation), icc, path.name)
    return Photo(pixels, alpha, icc, exif, fmt, path)


def load_mask(path: str | os.PathLike[str], shape: tuple[int, ...]) -> np.ndarray:
    """Read a mask for a photo of ``shape`` (``(H, W)`` or ``(H, W, C)``): bool, True = hole.

    Any image the photo's size: a pixel is a hole where it is non-zero (any
    RGB channel). An image with transparency that is not opaque everywhere is
    read by its alpha instead (hole = not fully transparent), so strokes
    painted on a transparent layer work whatever their colour. The EXIF
    orientation is applied as for photos.

    Raises:
        MaskMismatchError: the mask's size differs from ``shape``.
        ImageReadError, ImageTooLargeError: as :func:`load_image`.
    """
    path = Path(path)
    with _open(path) as im:
        im = _upright(im, _orientation(im))
        h, w = shape[:2]
        if (im.height, im.width) != (h, w):
            raise MaskMismatchError(
                f"The mask '{path.name}' is {im.width}x{im.height} pixels but the photo is "
                f"{w}x{h}; they must be the same size."
            )
        if im.mode in ("1", "L", *_DEEP_GREY) and not im.has_transparency_data:
            return np.asarray(im) != 0
        if im.has_transparency_data:
            rgba = np.asarray(im.convert("RGBA"))
            alpha = rgba[..., 3]
            if alpha.min() < 255:
                return alpha != 0
            rgb = rgba
        else:
            rgb = np.asarray(im if im.mode == "RGB" else im.convert("RGB"))
        return (rgb[..., 0] | rgb[..., 1] | rgb[..., 2]) != 0


@contextlib.contextmanager
def _open(path: Path):
    """The decoded first frame of ``path``, size-checked; errors name the file."""
    name = path.name or str(path)

    def fail(problem: str) -> ImageReadError:
        return ImageReadError(f"Cannot open '{name}': {problem}.")

    if path.is_dir():
        raise fail("it is a folder, not an image file")
    try:
        with warnings.catch_warnings():
            # Only images over MAX_SIDE x MAX_SIDE warn (see MAX_IMAGE_PIXELS
            # above); they are rejected just below with a clearer message.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path, formats=_READ_FORMATS)
    except FileNotFoundError:
        raise fail("the file does not exist") from None
    except Image.DecompressionBombError as exc:
        count = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{int(count[1]) / 1e6:.0f} megapixels" if count else "too many pixels"
        raise ImageTooLargeError(
            f"'{name}' has {size}; the largest supported side is {MAX_SIDE} px."
        ) from None
    except UnidentifiedImageError:
        empty = path.is_file() and path.stat().st_size == 0
        raise fail(
            "the file is empty"
            if empty
            else f"it is not a {_FORMAT_NAMES} image, or its header is damaged"
        ) from None
    except OSError as exc:
        if exc.errno is not None:  # the system could not read the file
            raise fail(_os_problem(exc)) from exc
        raise fail(f"the file is damaged or truncated ({_first_line(exc)})") from exc
    except _DECODE_ERRORS as exc:  # a plugin tripped over a malformed header
        raise fail(f"the file is damaged or truncated ({_first_line(exc)})") from exc
    with im:
        check_image_size((im.height, im.width), f"'{name}'")
        try:
            im.load()
        except _DECODE_ERRORS as exc:
            if "truncated" in str(exc).lower():
                raise fail("the file is truncated (incompletely copied or downloaded?)") from exc
            raise fail(f"the {im.format} data is corrupt ({_first_line(exc)})") from exc
        yield im


def _kept_exif(im: Image.Image, orientation: int) -> bytes | None:
    """The EXIF block to save with the upright pixels (orientation 1), or None.

    TIFF keeps its metadata as tags of the file itself, not as an EXIF block,
    so TIFF photos keep none.
    """
    raw = im.info.get("exif")
    if not raw or orientation == 1:
        return raw or None
    return _reset_orientation(raw)


def _orientation(im: Image.Image) -> int:
    """The EXIF orientation (1-8) of ``im``; 1 when absent, invalid or unreadable."""
    try:
        value = im.getexif().get(_ORIENTATION_TAG, 1)
    except _DECODE_ERRORS:
        return 1  # unreadable EXIF: show the pixels as stored
    return value if value in _UPRIGHT else 1


def _upright(im: Image.Image, orientation: int) -> Image.Image:
    method = _UPRIGHT.get(orientation)
    return im if method is None else im.transpose(method)


def _reset_orientation(exif: bytes) -> bytes:
    """``exif`` with its orientation tag set to 1.

    The value is patched in place so the rest of the block (maker notes with
    absolute offsets, ...) stays byte-identical; PIL rewrites the block only
    when the tag is not a plain SHORT in the first IFD.
    """
    start = 6 if exif.startswith(b"Exif\x00\x00") else 0
    order = {b"II": "<", b"MM": ">"}.get(exif[start : start + 2])
    if order is not None:
        try:
            (ifd,) = struct.unpack_from(order + "I", exif, start + 4)
            (count,) = struct.unpack_from(order + "H", exif, start + ifd)
            for i in range(count):
                entry = start + ifd + 2 + 12 * i
                tag, kind, n = struct.unpack_from(order + "HHI", exif, entry)
                if tag == _ORIENTATION_TAG and kind == 3 and n == 1:
                    patched = bytearray(exif)
                    struct.pack_into(order + "H", patched, entry + 8, 1)
                    return bytes(patched)
        except struct.error:
            pass
    rebuilt = Image.Exif()
    rebuilt.load(exif)
    rebuilt[_ORIENTATION_TAG] = 1
    return rebuilt.tobytes()


def _to_rgb(
    im: Image.Image, icc: bytes | None, name: str
) -> tuple[np.ndarray, np.ndarray | None, bytes | None]:
    """(RGB uint8 pixels, alpha or None, ICC profile that describes the RGB pixels or None)."""
    alpha = None
    if im.mode in _DEEP_GREY:
        values = np.asarray(im)
        key = im.info.get("transparency")
        if isinstance(key, int):  # 16-bit grey PNG with a transparent grey level
            alpha = np.where(values == key, np.uint8(0), np.uint8(255))
        grey = _grey_to_uint8(values)
        pixels = np.repeat(grey[..., None], 3, axis=2)
    elif im.mode == "CMYK":
        rgb, icc = _cmyk_to_rgb(im, icc)
        pixels = np.asarray(rgb)
    else:
        try:
            if im.has_transparency_data:
                im = im if im.mode == "RGBA" else im.convert("RGBA")
                alpha = np.asarray(im.getchannel("A"))
            pixels = np.asarray(im if im.mode == "RGB" else im.convert("RGB"))
        except ValueError as exc:
            raise ImageReadError(
                f"Cannot open '{name}': its colour mode {im.mode} is not supported ({exc})."
            ) from exc
    # A grey or CMYK profile does not describe RGB pixels; keep only RGB ones.
    if icc is not None and icc[16:20] != b"RGB ":
        icc = None
    return pixels, alpha, icc


def _grey_to_uint8(values: np.ndarray) -> np.ndarray:
    """High-bit-depth grey (uint16, int32 or float32) -> uint8, scaled, never clipped."""
    if values.dtype.kind == "u" and values.dtype.itemsize == 2:
        # Exact rounding of v * 255 / 65535 = v / 257.
        return ((values.astype(np.uint32) + 128) // 257).astype(np.uint8)
    values = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = float(values.min()), float(values.max())
    if values.dtype.kind == "f" and lo >= 0 and hi <= 1:
        lo, hi = 0.0, 1.0
    elif values.dtype.kind != "f" and lo >= 0 and hi <= 65535:
        lo, hi = 0.0, 65535.0
    scale = 255.0 / (hi - lo) if hi > lo else 0.0
    return np.round((values - lo) * scale).astype(np.uint8)


def _cmyk_to_rgb(im: Image.Image, icc: bytes | None) -> tuple[Image.Image, bytes | None]:
    """CMYK -> sRGB through the embedded CMYK profile, else PIL's plain formula."""
    if icc is not None and icc[16:20] == b"CMYK":
        from PIL import ImageCms

        try:
            srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            rgb = ImageCms.profileToProfile(
                im, source, srgb, ImageCms.Intent.PERCEPTUAL, outputMode="RGB"
            )
            return rgb, srgb.tobytes()
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # a broken profile: fall back to the formula
    return im.convert("RGB"), None


# --------------------------------------------------------------------- writing


def save_image(
    path: str | os.PathLike[str],
    pixels: np.ndarray,
    like: Photo | None = None,
    overwrite: bool = False,
    quality: int = 95,
    alpha: np.ndarray | None = None,
) -> Path:
    """Write RGB uint8 ``pixels`` (H, W, 3) in the format the extension names.

    PNG (fast compression), JPEG, TIFF (deflate), WebP and BMP. ``alpha``
    (uint8 (H, W), 255 = opaque, or bool; defaults to ``like.alpha`` when that
    has the right size) is written by PNG, TIFF and WebP and dropped by JPEG
    and BMP. The ICC profile and EXIF (orientation 1) of ``like`` go along
    where the format stores them (not BMP). ``quality`` (1-100) applies to
    JPEG (chroma subsampled 4:2:0 below 90, not at all from 90 up) and WebP
    (lossless at 100).

    The file is written to a temporary file in the same folder and moved into
    place, so a failed save never leaves a half-written file or destroys an
    existing one. Returns the path written.

    Raises:
        ImageWriteError: unknown extension, the file exists and ``overwrite``
            is false, the folder is missing or not writable, or encoding failed.
    """
    path = Path(path)
    fmt = _write_format(path)
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ImageWriteError(
            f"Cannot save '{path.name}': the pixels must be RGB uint8 (H, W, 3), "
            f"not {pixels.dtype} {pixels.shape}."
        )
    _check_size(path, fmt, pixels.shape)
    if not 1 <= quality <= 100:
        raise ImageWriteError(f"Cannot save '{path.name}': quality must be 1-100, not {quality}.")
    if alpha is None and like is not None and like.alpha is not None:
        alpha = like.alpha if like.alpha.shape == pixels.shape[:2] else None
    if alpha is not None:
        alpha = np.asarray(alpha)
        if alpha.shape != pixels.shape[:2] or alpha.dtype not in (np.uint8, np.bool_):
            raise ImageWriteError(
                f"Cannot save '{path.name}': the alpha must be uint8 {pixels.shape[:2]}, "
                f"not {alpha.dtype} {alpha.shape}."
            )
        if alpha.dtype == np.bool_:
            alpha = np.where(alpha, np.uint8(255), np.uint8(0))

    params: dict[str, object] = {}
    if like is not None and fmt != "BMP":
        if like.icc_profile:
            params["icc_profile"] = like.icc_profile
        if like.exif:
            params["exif"] = like.exif
    if fmt == "PNG":
        # Our own writer: 14x faster than PIL's at zlib level 1 on an 8K photo, and
        # the file is smaller (see engine/png.py).
        _write_atomically(
            path,
            overwrite,
            lambda f: write_png(f, pixels, alpha, params.get("icc_profile"), params.get("exif")),
        )
        return path
    image = Image.fromarray(np.ascontiguousarray(pixels))
    if alpha is not None and fmt in _ALPHA_FORMATS:
        image.putalpha(Image.fromarray(np.ascontiguousarray(alpha)))
    if fmt == "JPEG":
        params.update(quality=quality, subsampling=0 if quality >= 90 else 2)
    elif fmt == "WEBP":
        params.update(quality=quality, lossless=quality == 100)
    elif fmt == "TIFF":
        params.update(compression="tiff_adobe_deflate")
    _write_atomically(path, overwrite, lambda f: image.save(f, format=fmt, **params))
    return path


def save_mask(path: str | os.PathLike[str], mask: np.ndarray, overwrite: bool = False) -> Path:
    """Write a bool (H, W) mask (True = hole) as a greyscale PNG, 255 = hole, 0 = keep.

    Same rules as :func:`save_image`: atomic, and an existing file is only
    replaced with ``overwrite=True``. Returns the path written.
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ImageWriteError(
            f"Cannot save '{path.name}': masks are saved as PNG; use a .png file name."
        )
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ImageWriteError(f"Cannot save '{path.name}': a mask must be 2-D, not {mask.shape}.")
    image = Image.fromarray(np.where(mask != 0, np.uint8(255), np.uint8(0)))
    _write_atomically(path, overwrite, lambda f: image.save(f, format="PNG"))
    return path


def check_writable(
    path: str | os.PathLike[str], shape: tuple[int, ...] | None = None, overwrite: bool = False
) -> None:
    """Raise the :class:`ImageWriteError` that :func:`save_image` would raise for ``path``
    (an image of ``shape``, when known) for reasons known before the pixels exist: unknown
    extension, a folder of that name, an existing file without ``overwrite``, a missing or
    read-only folder, a size the format cannot store. Lets a caller refuse before a fill."""
    path = Path(path)
    problem = _destination_problem(path, overwrite)
    if problem is None:
        fmt = _write_format(path)
        if shape is not None:
            _check_size(path, fmt, shape)
    if problem is None and not os.access(path.parent, os.W_OK):
        problem = "permission denied"
    if problem is not None:
        raise ImageWriteError(f"Cannot save '{path.name}': {problem}.")


def _check_size(path: Path, fmt: str, shape: tuple[int, ...]) -> None:
    if fmt == "WEBP" and max(shape[:2]) > _WEBP_MAX_SIDE:
        raise ImageWriteError(
            f"Cannot save '{path.name}': WebP stores at most {_WEBP_MAX_SIDE} px per side; "
            "use PNG, JPEG or TIFF."
        )


_EXISTS = "the file already exists and is not replaced without permission to overwrite"


def _destination_problem(path: Path, overwrite: bool) -> str | None:
    """Why ``path`` cannot be written now, or None."""
    if path.is_dir():
        return "a folder of that name exists"
    if not overwrite and path.exists():
        return _EXISTS
    if not path.parent.is_dir():
        return f"the folder '{path.parent}' does not exist"
    return None


def _write_format(path: Path) -> str:
    fmt = _WRITE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        kind = f"file type '{path.suffix}'" if path.suffix else "a file name without extension"
        raise ImageWriteError(
            f"Cannot save '{path.name}': {kind} is not supported; "
            "use .png, .jpg, .tif, .webp or .bmp."
        )
    return fmt


def _write_atomically(path: Path, overwrite: bool, write: Callable[[BinaryIO], None]) -> None:
    """Run ``write`` on a temporary file next to ``path`` and move it into place."""

    def fail(problem: str) -> ImageWriteError:
        return ImageWriteError(f"Cannot save '{path.name}': {problem}.")

    problem = _destination_problem(path, overwrite)
    if problem is not None:
        raise fail(problem)
    folder = path.parent
    temp = folder / f".{path.name}.{uuid.uuid4().hex[:12]}.tmp"
    try:
        # os.open with 0o666 gives the file the permissions the user's umask
        # allows, like any other new file (tempfile would make it 0o600).
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        with os.fdopen(os.open(temp, flags, 0o666), "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if not overwrite and path.exists():  # appeared while we were writing
            raise fail(_EXISTS)
        os.replace(temp, path)
    except OSError as exc:
        raise fail(_os_problem(exc)) from exc
    except (ValueError, KeyError, TypeError) as exc:  # PIL refused the data or an option
        raise fail(_first_line(exc)) from exc
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temp)


# --------------------------------------------------------------------- helpers


def _os_problem(exc: OSError) -> str:
    """An OSError in plain words, without the path (the message names the file already)."""
    if isinstance(exc, PermissionError):
        return "permission denied"
    plain = {
        errno.ENOSPC: "the disk is full",
        errno.EROFS: "the disk is read-only",
        errno.ENAMETOOLONG: "the file name is too long",
        errno.ENOTDIR: "a part of the path is not a folder",
    }
    if exc.errno in plain:
        return plain[exc.errno]
    return (exc.strerror or _first_line(exc)).rstrip(".")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__).rstrip(".")
