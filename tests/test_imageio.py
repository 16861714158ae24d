"""Photo and mask I/O: every supported format and mode, metadata round trips, bad inputs."""

from __future__ import annotations

import os
import struct
import warnings
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms, ImageOps, JpegImagePlugin

from engine import (
    MAX_SIDE,
    ImageReadError,
    ImageTooLargeError,
    ImageWriteError,
    MaskMismatchError,
    imageio,
)
from engine.imageio import Photo, load_image, load_mask, save_image, save_mask

ORIENTATION = 0x0112
MAKE = 0x010F


def small_photo(h: int = 40, w: int = 60, seed: int = 0) -> np.ndarray:
    """RGB uint8: gradients with a little texture and a distinct top-left corner."""
    y, x = np.mgrid[0:h, 0:w]
    rng = np.random.default_rng(seed)
    image = np.stack([x * 255 // max(1, w - 1), y * 255 // max(1, h - 1), (x + y) % 32 * 8], -1)
    image = image + rng.integers(0, 8, image.shape)
    image[:8, :8] = (250, 10, 10)
    return np.clip(image, 0, 255).astype(np.uint8)


def exif_bytes(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    exif[MAKE] = "TestCam"
    return exif.tobytes()


def srgb_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def png_header(path: Path, width: int, height: int) -> Path:
    """A PNG file with only a header claiming ``width`` x ``height``: no pixel data at all."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return path


# ------------------------------------------------------------------ orientation


def test_exif_rotated_jpeg_comes_upright_and_saves_orientation_1(tmp_path):
    stored = small_photo(40, 64)
    path = tmp_path / "rotated.jpg"
    Image.fromarray(stored).save(path, quality=100, subsampling=0, exif=exif_bytes(6))

    photo = load_image(path)

    # Orientation 6: the camera was turned, the viewer rotates 90 degrees clockwise.
    upright = np.rot90(stored, k=-1)
    assert photo.size == (40, 64)
    assert photo.pixels.shape == upright.shape
    assert np.abs(photo.pixels.astype(int) - upright).mean() < 2
    np.testing.assert_allclose(photo.pixels[2, -3], (250, 10, 10), atol=12)  # corner moved
    kept = Image.Exif()
    kept.load(photo.exif)
    assert kept[ORIENTATION] == 1
    assert kept[MAKE] == "TestCam"

    saved = save_image(tmp_path / "out.jpg", photo.pixels, like=photo)
    with Image.open(saved) as im:
        assert im.getexif()[ORIENTATION] == 1
        assert im.getexif()[MAKE] == "TestCam"
    assert load_image(saved).size == (40, 64)  # not rotated a second time


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_orientation_matches_pil(tmp_path, orientation):
    stored = small_photo(24, 40)
    path = tmp_path / f"o{orientation}.png"
    Image.fromarray(stored).save(path, exif=exif_bytes(orientation))
    with Image.open(path) as im:
        expected = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    photo = load_image(path)
    np.testing.assert_array_equal(photo.pixels, expected)


def test_mask_gets_the_orientation_too(tmp_path):
    stored = np.zeros((20, 30), np.uint8)
    stored[0, 0] = 255
    path = tmp_path / "mask.png"
    Image.fromarray(stored).save(path, exif=exif_bytes(6))
    mask = load_mask(path, (30, 20))
    assert mask.shape == (30, 20)
    assert mask[0, -1] and mask.sum() == 1


# ------------------------------------------------------------------ colour modes


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    cmyk = np.zeros((16, 24, 4), np.uint8)
    cmyk[:, :8] = (255, 0, 0, 0)  # cyan
    cmyk[:, 8:16] = (0, 0, 0, 255)  # black
    path = tmp_path / "cmyk.jpg"
    Image.fromarray(cmyk, "CMYK").save(path, quality=100)

    photo = load_image(path)

    assert photo.pixels.dtype == np.uint8 and photo.pixels.shape == (16, 24, 3)
    assert photo.format == "JPEG"
    np.testing.assert_allclose(photo.pixels[8, 4], (0, 255, 255), atol=3)
    np.testing.assert_allclose(photo.pixels[8, 12], (0, 0, 0), atol=3)
    np.testing.assert_allclose(photo.pixels[8, 20], (255, 255, 255), atol=3)
    assert photo.icc_profile is None  # no RGB profile describes the converted pixels


def test_cmyk_with_a_broken_profile_falls_back_to_the_formula(tmp_path):
    broken = bytes(16) + b"CMYK" + bytes(200)
    path = tmp_path / "cmyk.tif"
    Image.new("CMYK", (8, 8), (0, 255, 0, 0)).save(path, icc_profile=broken)
    photo = load_image(path)
    np.testing.assert_array_equal(photo.pixels[0, 0], (255, 0, 255))
    assert photo.icc_profile is None


@pytest.mark.parametrize("suffix", [".png", ".tif"])
@pytest.mark.parametrize("dtype", ["<u2", ">u2"])
def test_16bit_grey_is_scaled_exactly(tmp_path, suffix, dtype):
    values = np.array([[0, 1, 128, 129, 257, 385, 32767, 32896, 65534, 65535]], np.uint16)
    path = tmp_path / f"grey16{suffix}"
    Image.fromarray(values.astype(dtype)).save(path)
    photo = load_image(path)
    expected = np.round(values / 257).astype(np.uint8)  # v * 255 / 65535
    for channel in range(3):
        np.testing.assert_array_equal(photo.pixels[..., channel], expected)
    assert photo.pixels[0, -1, 0] == 255  # scaled, not clipped at 255 of 65535


def test_16bit_rgb_png_is_scaled_not_clipped(tmp_path):
    levels = np.arange(0, 256, 17, dtype=np.uint16)
    rgb = np.stack([levels * 257, levels[::-1] * 257, np.full_like(levels, 1000)], -1)[None]
    path = tmp_path / "rgb16.png"
    cv2.imwrite(str(path), rgb[..., ::-1])  # cv2 writes 16-bit colour PNGs, BGR order
    photo = load_image(path)
    np.testing.assert_array_equal(photo.pixels[0, :, 0], levels)
    np.testing.assert_array_equal(photo.pixels[0, :, 1], levels[::-1])
    assert np.all(np.abs(photo.pixels[0, :, 2].astype(int) - round(1000 / 257)) <= 1)


def test_32bit_integer_and_float_grey(tmp_path):
    Image.fromarray(np.array([[0, 257, 65535]], np.int32)).save(tmp_path / "i.tif")
    Image.fromarray(np.array([[0.0, 0.5, 1.0]], np.float32)).save(tmp_path / "f.tif")
    np.testing.assert_array_equal(load_image(tmp_path / "i.tif").pixels[0, :, 0], [0, 1, 255])
    np.testing.assert_array_equal(load_image(tmp_path / "f.tif").pixels[0, :, 0], [0, 128, 255])


def test_rgba_png_keeps_alpha_aside(tmp_path):
    rgb = small_photo()
    alpha = np.tile(np.linspace(0, 255, 60).astype(np.uint8), (40, 1))
    path = tmp_path / "rgba.png"
    Image.fromarray(np.dstack([rgb, alpha])).save(path)
    photo = load_image(path)
    np.testing.assert_array_equal(photo.pixels, rgb)
    np.testing.assert_array_equal(photo.alpha, alpha)


@pytest.mark.parametrize(
    ("suffix", "keeps_alpha"),
    [(".png", True), (".tif", True), (".webp", True), (".jpg", False), (".bmp", False)],
)
def test_alpha_written_where_the_format_has_it(tmp_path, suffix, keeps_alpha):
    rgb = small_photo()
    alpha = np.zeros((40, 60), np.uint8)
    alpha[10:30, 20:50] = 255
    alpha[0] = 128
    out = save_image(tmp_path / f"out{suffix}", rgb, alpha=alpha, quality=100)
    back = load_image(out)
    if keeps_alpha:
        np.testing.assert_array_equal(back.alpha, alpha)
    else:
        assert back.alpha is None
    assert back.pixels.shape == rgb.shape


def test_save_takes_alpha_from_like(tmp_path):
    rgb = small_photo()
    alpha = np.full((40, 60), 77, np.uint8)
    photo = Photo(rgb, alpha=alpha)
    back = load_image(save_image(tmp_path / "out.png", photo.pixels, like=photo))
    np.testing.assert_array_equal(back.alpha, alpha)


def test_palette_png_with_transparency(tmp_path):
    image = Image.new("P", (4, 2))
    image.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255])
    image.putpixel((1, 0), 1)
    image.putpixel((2, 0), 2)
    path = tmp_path / "palette.png"
    image.save(path, transparency=0)
    photo = load_image(path)
    np.testing.assert_array_equal(photo.pixels[0, :3], [(255, 0, 0), (0, 255, 0), (0, 0, 255)])
    np.testing.assert_array_equal(photo.alpha, [[0, 255, 255, 0], [0, 0, 0, 0]])


def test_palette_png_without_transparency_has_no_alpha(tmp_path):
    image = Image.new("P", (3, 1))
    image.putpalette([10, 20, 30, 40, 50, 60])
    image.putpixel((2, 0), 1)
    image.save(tmp_path / "palette.png")
    photo = load_image(tmp_path / "palette.png")
    np.testing.assert_array_equal(photo.pixels[0], [(10, 20, 30), (10, 20, 30), (40, 50, 60)])
    assert photo.alpha is None


def test_grey_and_grey_alpha(tmp_path):
    grey = np.array([[0, 255], [128, 7]], np.uint8)
    alpha = np.array([[0, 10], [255, 20]], np.uint8)
    Image.fromarray(grey).save(tmp_path / "l.png")
    Image.merge("LA", [Image.fromarray(grey), Image.fromarray(alpha)]).save(tmp_path / "la.png")
    for name, expected_alpha in (("l.png", None), ("la.png", alpha)):
        photo = load_image(tmp_path / name)
        assert photo.pixels.shape == (2, 2, 3)
        for channel in range(3):
            np.testing.assert_array_equal(photo.pixels[..., channel], grey)
        if expected_alpha is None:
            assert photo.alpha is None
        else:
            np.testing.assert_array_equal(photo.alpha, expected_alpha)


def test_one_bit_image(tmp_path):
    image = Image.new("1", (3, 2))
    image.putpixel((0, 0), 1)
    image.save(tmp_path / "bits.bmp")
    photo = load_image(tmp_path / "bits.bmp")
    np.testing.assert_array_equal(photo.pixels[..., 1], [[255, 0, 0], [0, 0, 0]])


# ------------------------------------------------------------------ formats and metadata


@pytest.mark.parametrize(
    ("suffix", "fmt", "lossless"),
    [
        (".png", "PNG", True),
        (".tif", "TIFF", True),
        (".tiff", "TIFF", True),
        (".bmp", "BMP", True),
        (".webp", "WEBP", False),
        (".jpg", "JPEG", False),
        (".jpeg", "JPEG", False),
    ],
)
def test_round_trip(tmp_path, suffix, fmt, lossless):
    rgb = small_photo()
    out = save_image(tmp_path / f"out{suffix}", rgb)
    assert out == tmp_path / f"out{suffix}"
    photo = load_image(out)
    assert photo.format == fmt
    assert photo.path == out
    assert photo.pixels.dtype == np.uint8 and photo.pixels.shape == rgb.shape
    assert not photo.pixels.flags.writeable
    if lossless:
        np.testing.assert_array_equal(photo.pixels, rgb)
    else:  # lossy at quality 95; this texture is hard on WebP
        assert np.abs(photo.pixels.astype(int) - rgb).mean() < 8


def test_webp_at_quality_100_is_lossless(tmp_path):
    rgb = small_photo()
    np.testing.assert_array_equal(
        load_image(save_image(tmp_path / "out.webp", rgb, quality=100)).pixels, rgb
    )


def test_jpeg_subsampling_follows_quality(tmp_path):
    rgb = small_photo()
    with Image.open(save_image(tmp_path / "q95.jpg", rgb)) as im:
        assert JpegImagePlugin.get_sampling(im) == 0  # 4:4:4
    with Image.open(save_image(tmp_path / "q80.jpg", rgb, quality=80)) as im:
        assert JpegImagePlugin.get_sampling(im) == 2  # 4:2:0


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".tif", ".webp"])
def test_icc_profile_preserved(tmp_path, suffix):
    icc = srgb_profile()
    source = tmp_path / "source.png"
    Image.fromarray(small_photo()).save(source, icc_profile=icc)
    photo = load_image(source)
    assert photo.icc_profile == icc
    out = save_image(tmp_path / f"out{suffix}", photo.pixels, like=photo)
    with Image.open(out) as im:
        assert im.info.get("icc_profile") == icc
    assert load_image(out).icc_profile == icc


@pytest.mark.parametrize("suffix", [".webp", ".png"])
def test_exif_preserved_without_rotation(tmp_path, suffix):
    source = tmp_path / "source.jpg"
    Image.fromarray(small_photo()).save(source, exif=exif_bytes(1))
    photo = load_image(source)
    out = save_image(tmp_path / f"out{suffix}", photo.pixels, like=photo)
    with Image.open(out) as im:
        assert im.getexif()[MAKE] == "TestCam"


def test_png_of_a_jpeg_keeps_pixels_alpha_profile_and_exif(tmp_path):
    # What `main.py inpaint photo.jpg` writes by default: the JPEG's decoded pixels exactly,
    # with its ICC profile and EXIF; and an RGBA photo's alpha.
    icc = srgb_profile()
    source = tmp_path / "source.jpg"
    Image.fromarray(small_photo(300, 500)).save(source, exif=exif_bytes(1), icc_profile=icc)
    photo = load_image(source)
    back = load_image(save_image(tmp_path / "out.png", photo.pixels, like=photo))
    np.testing.assert_array_equal(back.pixels, photo.pixels)
    assert (back.icc_profile, back.exif, back.alpha) == (icc, photo.exif, None)
    alpha = np.random.default_rng(0).integers(0, 256, (300, 500), dtype=np.uint8)
    back = load_image(save_image(tmp_path / "rgba.png", photo.pixels, like=photo, alpha=alpha))
    np.testing.assert_array_equal(back.pixels, photo.pixels)
    np.testing.assert_array_equal(back.alpha, alpha)
    assert back.icc_profile == icc


def test_photo_is_read_only_and_knows_its_size():
    pixels = small_photo(10, 30)
    photo = Photo(pixels)
    assert photo.size == (30, 10)
    assert not photo.pixels.flags.writeable
    assert pixels.flags.writeable  # the caller's array is left alone


# ------------------------------------------------------------------ bad inputs


def read_error(path) -> str:
    with pytest.raises(ImageReadError) as info:
        load_image(path)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_missing_file(tmp_path):
    assert read_error(tmp_path / "nope.jpg") == "Cannot open 'nope.jpg': the file does not exist."


def test_directory(tmp_path):
    (tmp_path / "photos.jpg").mkdir()
    assert "'photos.jpg'" in read_error(tmp_path / "photos.jpg")
    assert "folder" in read_error(tmp_path / "photos.jpg")


def test_text_file_named_jpg(tmp_path):
    (tmp_path / "notes.jpg").write_text("not a picture")
    message = read_error(tmp_path / "notes.jpg")
    assert message.startswith("Cannot open 'notes.jpg': it is not a JPEG, PNG, TIFF, WebP or BMP")


def test_empty_file(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    assert read_error(tmp_path / "empty.png") == "Cannot open 'empty.png': the file is empty."


def test_unsupported_format(tmp_path):
    Image.fromarray(small_photo()).save(tmp_path / "anim.gif")
    assert "not a JPEG, PNG, TIFF, WebP or BMP" in read_error(tmp_path / "anim.gif")


def test_corrupt_bytes(tmp_path):
    (tmp_path / "noise.png").write_bytes(np.random.default_rng(1).bytes(4000))
    assert read_error(tmp_path / "noise.png").startswith("Cannot open 'noise.png': it is not a")


def test_corrupt_header(tmp_path):
    data = bytearray(save_image(tmp_path / "good.jpg", small_photo(64, 64)).read_bytes())
    data[300:800] = np.random.default_rng(2).bytes(500)  # the quantisation and Huffman tables
    (tmp_path / "bad.jpg").write_bytes(bytes(data))
    assert read_error(tmp_path / "bad.jpg").startswith("Cannot open 'bad.jpg': the ")


def test_corrupt_pixel_data(tmp_path):
    data = bytearray(save_image(tmp_path / "good.png", small_photo(64, 64)).read_bytes())
    start = data.index(b"IDAT") + 100
    data[start : start + 200] = np.random.default_rng(2).bytes(200)
    (tmp_path / "bad.png").write_bytes(bytes(data))
    message = read_error(tmp_path / "bad.png")
    assert message.startswith("Cannot open 'bad.png': the PNG data is corrupt (")


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_truncated_file(tmp_path, suffix):
    whole = save_image(tmp_path / f"whole{suffix}", small_photo(64, 64)).read_bytes()
    (tmp_path / f"cut{suffix}").write_bytes(whole[: len(whole) // 2])
    assert read_error(tmp_path / f"cut{suffix}") == (
        f"Cannot open 'cut{suffix}': the file is truncated (incompletely copied or downloaded?)."
    )


def test_too_large_is_refused_before_decoding(tmp_path):
    wide = tmp_path / "wide.png"
    Image.new("L", (MAX_SIDE + 1, 1)).save(wide)  # a real image, a few bytes on disk
    with pytest.raises(ImageTooLargeError, match=r"^'wide\.png' is 16385x1 pixels; .*16384"):
        load_image(wide)
    # Header only, no pixel data: refusing it proves nothing was decoded.
    header = png_header(tmp_path / "header.png", 20000, 100)
    with pytest.raises(ImageTooLargeError, match=r"'header\.png' is 20000x100 pixels"):
        load_image(header)
    with pytest.raises(ImageTooLargeError, match=r"'header\.png' is 20000x100 pixels"):
        load_mask(header, (100, 20000))


def test_huge_headers_give_our_error_not_pil_warnings(tmp_path):
    # Over 16384^2 pixels PIL warns (a decompression bomb?), over twice that it
    # refuses; neither may escape as anything but ImageTooLargeError.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ImageTooLargeError, match=r"'warn\.png' is 20000x20000 pixels"):
            load_image(png_header(tmp_path / "warn.png", 20000, 20000))
        with pytest.raises(ImageTooLargeError, match=r"'bomb\.png' has 900 megapixels"):
            load_image(png_header(tmp_path / "bomb.png", 30000, 30000))


def test_largest_supported_side_loads(tmp_path):
    Image.new("L", (MAX_SIDE, 2), 200).save(tmp_path / "long.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        photo = load_image(tmp_path / "long.png")
    assert photo.size == (MAX_SIDE, 2)


# ------------------------------------------------------------------ masks


def test_grey_mask_non_zero_is_hole(tmp_path):
    stored = np.zeros((10, 12), np.uint8)
    stored[2:4, 3:6] = 255
    stored[9, 11] = 1
    Image.fromarray(stored).save(tmp_path / "mask.png")
    mask = load_mask(tmp_path / "mask.png", (10, 12, 3))
    assert mask.dtype == np.bool_
    np.testing.assert_array_equal(mask, stored != 0)


def test_rgb_mask_any_channel_is_hole(tmp_path):
    stored = np.zeros((10, 12, 3), np.uint8)
    stored[1, 1] = (0, 0, 1)
    stored[5, 5] = (255, 0, 0)
    Image.fromarray(stored).save(tmp_path / "mask.png")
    mask = load_mask(tmp_path / "mask.png", (10, 12))
    assert mask.sum() == 2 and mask[1, 1] and mask[5, 5]


def test_opaque_rgba_mask_reads_colour(tmp_path):
    stored = np.zeros((10, 12, 4), np.uint8)
    stored[..., 3] = 255
    stored[3:5, 3:5, :3] = 255
    Image.fromarray(stored).save(tmp_path / "mask.png")
    np.testing.assert_array_equal(load_mask(tmp_path / "mask.png", (10, 12)), stored[..., 0] != 0)


@pytest.mark.parametrize("stroke", [(0, 0, 0), (255, 255, 255), (200, 30, 30)])
def test_transparent_mask_reads_alpha(tmp_path, stroke):
    # Strokes painted on a transparent layer; the transparent part is stored
    # as white so the colour channels alone would call everything a hole.
    stored = np.full((10, 12, 4), 255, np.uint8)
    stored[..., 3] = 0
    stored[2:6, 4:8] = (*stroke, 255)
    stored[8, 1] = (*stroke, 40)  # soft brush edge
    Image.fromarray(stored).save(tmp_path / "strokes.png")
    mask = load_mask(tmp_path / "strokes.png", (10, 12))
    np.testing.assert_array_equal(mask, stored[..., 3] != 0)


def test_mask_of_wrong_size(tmp_path):
    Image.new("L", (30, 20)).save(tmp_path / "small.png")
    with pytest.raises(MaskMismatchError) as info:
        load_mask(tmp_path / "small.png", (40, 60, 3))
    message = str(info.value)
    assert "'small.png'" in message and "30x20" in message and "60x40" in message


def test_save_mask_round_trip(tmp_path):
    mask = np.zeros((20, 30), bool)
    mask[5:9, 3:25] = True
    out = save_mask(tmp_path / "mask.png", mask)
    with Image.open(out) as im:
        assert im.mode == "L"
        np.testing.assert_array_equal(np.asarray(im), np.where(mask, 255, 0))
    np.testing.assert_array_equal(load_mask(out, mask.shape), mask)
    with pytest.raises(ImageWriteError, match="already exists"):
        save_mask(out, mask)
    with pytest.raises(ImageWriteError, match=r"'mask\.jpg'.*PNG"):
        save_mask(tmp_path / "mask.jpg", mask)


# ------------------------------------------------------------------ saving safely


def test_save_never_overwrites_without_permission(tmp_path):
    target = tmp_path / "photo.png"
    target.write_bytes(b"precious")
    with pytest.raises(
        ImageWriteError, match=r"^Cannot save 'photo\.png': the file already exists"
    ):
        save_image(target, small_photo())
    assert target.read_bytes() == b"precious"
    save_image(target, small_photo(), overwrite=True)
    np.testing.assert_array_equal(load_image(target).pixels, small_photo())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.png"]  # no temp files left


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_failed_save_keeps_the_existing_file(tmp_path, monkeypatch, suffix):
    target = tmp_path / f"photo{suffix}"
    target.write_bytes(b"precious")

    def broken_save(fp, *args, **params):
        fp.write(b"half a file")
        raise OSError(28, "No space left on device")

    # PNG goes through the engine's own writer, the other formats through PIL.
    if suffix == ".png":
        monkeypatch.setattr(imageio, "write_png", broken_save)
    else:
        monkeypatch.setattr(Image.Image, "save", lambda self, fp, **kw: broken_save(fp))
    with pytest.raises(
        ImageWriteError, match=rf"^Cannot save 'photo\{suffix}': the disk is full\.$"
    ):
        save_image(target, small_photo(), overwrite=True)
    assert target.read_bytes() == b"precious"
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


def test_unknown_extension(tmp_path):
    with pytest.raises(ImageWriteError, match=r"'out\.gif'.*'\.gif' is not supported"):
        save_image(tmp_path / "out.gif", small_photo())
    with pytest.raises(ImageWriteError, match="without extension"):
        save_image(tmp_path / "out", small_photo())
    assert list(tmp_path.iterdir()) == []


def test_save_into_missing_or_invalid_folder(tmp_path):
    with pytest.raises(ImageWriteError, match=r"'out\.png'.*does not exist"):
        save_image(tmp_path / "missing" / "out.png", small_photo())
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ImageWriteError, match=r"'out\.png'"):
        save_image(tmp_path / "file.txt" / "out.png", small_photo())
    (tmp_path / "folder.png").mkdir()
    with pytest.raises(ImageWriteError, match="folder"):
        save_image(tmp_path / "folder.png", small_photo(), overwrite=True)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root may write anywhere")
def test_save_into_unwritable_folder(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        with pytest.raises(ImageWriteError, match=r"'out\.png': permission denied"):
            save_image(locked / "out.png", small_photo())
    finally:
        locked.chmod(0o755)


def test_permission_denied_is_reported(tmp_path, monkeypatch):
    # Also where the chmod test above cannot run (as root, which may write anywhere).
    real_open = os.open

    def refuse(path, flags, *args, **kwargs):
        if Path(path).parent == tmp_path:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(ImageWriteError, match=r"^Cannot save 'out\.png': permission denied\.$"):
        save_image(tmp_path / "out.png", small_photo())


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_saved_file_gets_ordinary_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        out = save_image(tmp_path / "out.png", small_photo())
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o644


def test_save_rejects_bad_arrays(tmp_path):
    with pytest.raises(ImageWriteError, match="RGB uint8"):
        save_image(tmp_path / "out.png", small_photo().astype(np.float32))
    with pytest.raises(ImageWriteError, match="alpha"):
        save_image(tmp_path / "out.png", small_photo(), alpha=np.zeros((3, 3), np.uint8))
    with pytest.raises(ImageWriteError, match="quality"):
        save_image(tmp_path / "out.jpg", small_photo(), quality=0)
    with pytest.raises(ImageWriteError, match="WebP stores at most 16383"):
        save_image(tmp_path / "out.webp", np.zeros((1, MAX_SIDE, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []
