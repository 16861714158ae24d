"""The PNG writer (engine/png.py): what PIL and OpenCV read back, chunk by chunk."""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms

import engine.png as png
from engine.png import adler32_combine, write_png
from engine.synthetic import photo_like

MAKE = 0x010F


def photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Smooth gradients plus noise: rows that the Up filter does not zero out."""
    y, x = np.mgrid[0:h, 0:w]
    rng = np.random.default_rng(seed)
    image = np.stack([x * 7 % 256, y * 3 % 256, (x + y) % 256], -1) + rng.integers(0, 40, (h, w, 3))
    return (image % 256).astype(np.uint8)


def encode(pixels: np.ndarray, alpha: np.ndarray | None = None, **options: object) -> bytes:
    buffer = io.BytesIO()
    write_png(buffer, pixels, alpha, **options)
    return buffer.getvalue()


def chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, data) of every chunk, each one's CRC checked."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    found, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack_from(">I", data, pos + 8 + length)
        assert crc == zlib.crc32(kind + body), kind
        found.append((kind, body))
        pos += 12 + length
    return found


@pytest.fixture(params=["isal", "zlib"])
def deflate(request, monkeypatch):
    """Each test runs with ISA-L (the default) and with the standard library's zlib."""
    if request.param == "zlib":
        monkeypatch.setattr(png, "_deflate", zlib)
    else:
        pytest.importorskip("isal")
    return request.param


@pytest.mark.parametrize(
    ("h", "w", "segment_bytes", "threads"),
    [
        (1, 1, 1 << 21, 1),
        (1, 5, 1, 3),  # one row: one segment
        (7, 3, 1, 3),  # a segment per row, rows shorter than the 32 KiB window
        (40, 60, 600, 2),
        (64, 3000, 20000, 3),  # segments of 2 rows of 9 KB: the window spans 4 rows
        (300, 400, 1 << 21, None),
    ],
)
def test_pixels_come_back_exactly_in_pil_and_opencv(deflate, h, w, segment_bytes, threads):
    rgb = photo(h, w)
    data = encode(rgb, segment_bytes=segment_bytes, threads=threads)
    with Image.open(io.BytesIO(data)) as im:
        assert im.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(im), rgb)
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(bgr[..., ::-1], rgb)


def test_alpha_makes_an_rgba_file(deflate):
    rgb = photo(50, 70, seed=1)
    alpha = np.random.default_rng(2).integers(0, 256, (50, 70), dtype=np.uint8)
    data = encode(rgb, alpha, segment_bytes=1000, threads=2)
    with Image.open(io.BytesIO(data)) as im:
        assert im.mode == "RGBA"
        rgba = np.asarray(im)
    np.testing.assert_array_equal(rgba[..., :3], rgb)
    np.testing.assert_array_equal(rgba[..., 3], alpha)
    bgra = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(bgra[..., [2, 1, 0, 3]], rgba)


def test_any_memory_layout(deflate):
    rgb = photo(30, 40)
    view = rgb[::-1, 5:35]  # flipped and cropped: not contiguous
    with Image.open(io.BytesIO(encode(view, segment_bytes=200))) as im:
        np.testing.assert_array_equal(np.asarray(im), view)


def test_icc_profile_and_exif_as_pil_writes_them(deflate):
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[MAKE] = "TestCam"
    raw_exif = exif.tobytes()
    rgb = photo(20, 30)
    for given in (raw_exif, b"Exif\x00\x00" + raw_exif):  # JPEG's EXIF has the prefix
        data = encode(rgb, icc_profile=icc, exif=given)
        with Image.open(io.BytesIO(data)) as im:
            assert im.info["icc_profile"] == icc
            assert im.getexif()[MAKE] == "TestCam"
        ours = [kind for kind, _ in chunks(data)]
        assert ours[:3] == [b"IHDR", b"iCCP", b"eXIf"] and ours[-1] == b"IEND"
        assert set(ours[3:-1]) == {b"IDAT"}
        theirs = io.BytesIO()
        Image.fromarray(rgb).save(theirs, format="PNG", icc_profile=icc, exif=given)
        pil = dict(chunks(theirs.getvalue()))
        for kind in (b"IHDR", b"iCCP", b"eXIf"):
            assert dict(chunks(data))[kind] == pil[kind], kind


def test_the_idat_chunks_form_one_zlib_stream_with_its_checksum(deflate):
    rgb = photo(33, 50)
    data = encode(rgb, segment_bytes=500, threads=3)
    stream = b"".join(body for kind, body in chunks(data) if kind == b"IDAT")
    raw = zlib.decompress(stream)  # checks the Adler-32 at the end
    rows = np.frombuffer(raw, np.uint8).reshape(33, 1 + 50 * 3)
    assert (rows[:, 0] == 2).all()  # filter type Up on every row
    restored = np.cumsum(rows[:, 1:], axis=0, dtype=np.uint8)  # Up undone: mod-256 sums
    np.testing.assert_array_equal(restored.reshape(rgb.shape), rgb)


def test_the_file_is_about_as_small_as_pils(deflate):
    # Up for every row against PIL's per-row choice of filter, both at deflate level 1: on
    # the starter photos 0.90-0.95x PIL's size with ISA-L, 0.97-1.0x with zlib.
    rgb = photo_like(720, 1280, seed=1)
    theirs = io.BytesIO()
    Image.fromarray(rgb).save(theirs, format="PNG", compress_level=1)
    assert len(encode(rgb)) <= 1.1 * len(theirs.getvalue())


@pytest.mark.parametrize(
    ("len1", "len2"), [(0, 0), (0, 9), (9, 0), (1, 1), (100_000, 70_000), (65521 * 3 + 7, 65521)]
)
def test_adler32_combine_matches_zlib(len1, len2):
    rng = np.random.default_rng(len1 + len2)
    a, b = rng.bytes(len1), rng.bytes(len2)
    assert adler32_combine(zlib.adler32(a), zlib.adler32(b), len2) == zlib.adler32(a + b)
    ones = b"\xff" * len2  # the largest byte sums
    assert adler32_combine(zlib.adler32(a), zlib.adler32(ones), len2) == zlib.adler32(a + ones)
