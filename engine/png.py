"""A fast PNG writer for 8-bit RGB and RGBA photos.

PIL's PNG encoder filters each row adaptively and deflates the whole image in one
thread: 1.56 s for an 8K photo at zlib level 1, most of the time of saving it. This
writer makes the same kind of file in 0.11 s (2 cores, ISA-L; 0.35 s with zlib), 7%
smaller (3% with zlib):

- every row gets the PNG "Up" filter (the difference to the row above), one numpy
  subtraction. With the same deflate it compresses as well as PIL's choice per row
  (0.97-1.0x its size on the starter photos, where "Sub" is 9% and no filter 24-87%
  larger);
- the filtered rows are deflated in segments of about 2 MB on a thread per core
  (numpy and the deflate release the GIL), pigz-style: each segment is a raw deflate
  stream primed with the 32 KiB before it as its dictionary (so the split costs
  almost nothing in size) and ended with a sync flush, the last one with a final
  block; together they form one zlib stream;
- the zlib checksum (Adler-32 of all filtered bytes) is combined from the
  segments' checksums (zlib's ``adler32_combine``, which Python does not expose);
- the deflate is Intel ISA-L's (``isal``) where installed: at its level 1, 3-4x
  faster than zlib's level 1 and smaller on photos; else the standard zlib.

The file has the chunks PIL writes for ``save_image``: IHDR, iCCP (the ICC
profile, zlib-compressed, named "ICC Profile"), eXIf, IDAT, IEND.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import BinaryIO

import numpy as np

try:  # the same API as zlib's
    from isal import isal_zlib as _deflate
except ImportError:  # pragma: no cover - isal is in requirements.txt; tests cover zlib too
    _deflate = zlib  # type: ignore[assignment]

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_UP = 2  # PNG filter type "Up"
_WINDOW = 32 * 1024  # deflate's window: the dictionary each segment is primed with
_SEGMENT_BYTES = 2 * 1024 * 1024
_LEVEL = 1
# zlib stream header: deflate with a 32 KiB window, "fastest" level flag (FCHECK
# makes the 16-bit value a multiple of 31).
_ZLIB_HEADER = b"\x78\x01"
_ADLER_BASE = 65521


def write_png(
    f: BinaryIO,
    pixels: np.ndarray,
    alpha: np.ndarray | None = None,
    icc_profile: bytes | None = None,
    exif: bytes | None = None,
    threads: int | None = None,
    segment_bytes: int = _SEGMENT_BYTES,
) -> None:
    """Write ``pixels`` (RGB uint8 ``(H, W, 3)``) as an 8-bit PNG to the open file ``f``.

    With ``alpha`` (uint8 ``(H, W)``, 255 = opaque) the file is RGBA. ``icc_profile``
    is stored in an iCCP chunk, ``exif`` (with or without its ``Exif\\0\\0`` prefix)
    in an eXIf chunk. ``threads`` defaults to the number of usable cores; each thread
    deflates segments of about ``segment_bytes`` filtered bytes.
    """
    h, w = pixels.shape[:2]
    rows = _Rows(pixels, alpha)
    f.write(_SIGNATURE)
    _write_chunk(f, b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2 if alpha is None else 6, 0, 0, 0))
    if icc_profile:
        _write_chunk(f, b"iCCP", b"ICC Profile\0\0" + zlib.compress(icc_profile))
    if exif:
        _write_chunk(f, b"eXIf", exif[6:] if exif.startswith(b"Exif\x00\x00") else exif)
    step = max(1, segment_bytes // rows.size)
    bounds = [(r0, min(h, r0 + step)) for r0 in range(0, h, step)]

    def segment(index: int) -> tuple[bytes, int, int]:
        """(raw deflate data, Adler-32, length) of segment ``index``'s filtered bytes."""
        r0, r1 = bounds[index]
        data = rows.filtered(r0, r1)
        options = {}
        if r0 > 0:  # prime the window with the bytes just before: what the decoder has seen
            above = max(0, r0 - -(-_WINDOW // rows.size))
            options["zdict"] = rows.filtered(above, r0).tobytes()[-_WINDOW:]
        compressor = _deflate.compressobj(_LEVEL, zlib.DEFLATED, -15, **options)
        last = index == len(bounds) - 1
        out = compressor.compress(data) + compressor.flush(
            _deflate.Z_FINISH if last else _deflate.Z_SYNC_FLUSH
        )
        return out, _deflate.adler32(data), data.size

    adler = 1
    for index, (out, part_adler, length) in enumerate(_in_order(segment, len(bounds), threads)):
        adler = adler32_combine(adler, part_adler, length)
        if index == 0:
            out = _ZLIB_HEADER + out
        if index == len(bounds) - 1:
            out += struct.pack(">I", adler)
        _write_chunk(f, b"IDAT", out)
    _write_chunk(f, b"IEND", b"")


class _Rows:
    """The image's rows as the file stores them, filtered, any block of them at a time."""

    def __init__(self, pixels: np.ndarray, alpha: np.ndarray | None) -> None:
        self.pixels, self.alpha = pixels, alpha
        self.width = pixels.shape[1] * (3 if alpha is None else 4)
        self.size = 1 + self.width  # bytes per row in the file: the filter type, then the row

    def raw(self, r0: int, r1: int) -> np.ndarray:
        """Rows ``r0:r1`` as uint8 ``(rows, W * channels)``: RGB or RGBA interleaved."""
        if self.alpha is None:
            return self.pixels[r0:r1].reshape(r1 - r0, self.width)
        block = np.empty((r1 - r0, self.width // 4, 4), np.uint8)
        block[..., :3] = self.pixels[r0:r1]
        block[..., 3] = self.alpha[r0:r1]
        return block.reshape(r1 - r0, self.width)

    def filtered(self, r0: int, r1: int) -> np.ndarray:
        """Rows ``r0:r1`` as the file has them: filter type Up, then each byte minus the
        one above it, mod 256 (the row above the first is zeros)."""
        out = np.empty((r1 - r0, self.size), np.uint8)
        out[:, 0] = _UP
        current = self.raw(r0, r1)
        if r0 > 0:
            np.subtract(current, self.raw(r0 - 1, r1 - 1), out=out[:, 1:])
        else:
            out[0, 1:] = current[0]
            np.subtract(current[1:], current[:-1], out=out[1:, 1:])
        return out


def _in_order(
    work: Callable[[int], tuple[bytes, int, int]], count: int, threads: int | None
) -> Iterator[tuple[bytes, int, int]]:
    """``work(0), work(1), ...`` in order, computed on ``threads`` threads."""
    if threads is None:
        threads = (
            len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        )
    threads = max(1, min(threads or 1, count))
    if threads == 1:
        yield from map(work, range(count))
        return
    with ThreadPoolExecutor(threads, thread_name_prefix="png") as pool:
        yield from pool.map(work, range(count))


def _write_chunk(f: BinaryIO, kind: bytes, data: bytes) -> None:
    f.write(struct.pack(">I", len(data)) + kind)
    f.write(data)
    f.write(struct.pack(">I", _deflate.crc32(data, _deflate.crc32(kind))))


def adler32_combine(adler1: int, adler2: int, length2: int) -> int:
    """The Adler-32 of ``a + b`` from ``adler32(a)``, ``adler32(b)`` and ``len(b)``.

    zlib's ``adler32_combine``: the checksum is ``(B << 16) | A`` with ``A = 1 + sum
    of the bytes`` and ``B = sum of the successive A``, both mod 65521; appending
    ``b`` adds its own sums, and every one of its ``len(b)`` steps also carries
    ``a``'s ``A`` into ``B``.
    """
    rem = length2 % _ADLER_BASE
    a1, b1 = adler1 & 0xFFFF, adler1 >> 16
    a2, b2 = adler2 & 0xFFFF, adler2 >> 16
    a = (a1 + a2 - 1) % _ADLER_BASE
    b = (b1 + b2 + rem * a1 - rem) % _ADLER_BASE
    return (b << 16) | a
