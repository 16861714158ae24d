"""The command line through a real subprocess on real files: its interface is public."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.synthetic import hole_mask, photo_like
from main import EXIT_INTERRUPTED, output_paths

ROOT = Path(__file__).resolve().parent.parent


def run_cli(
    *args: str | Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "main.py"), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, **env} if env else None,
    )


def write_pair(
    folder: Path, stem: str, mask_folder: Path | None = None, seed: int = 0
) -> tuple[Path, Path, np.ndarray, np.ndarray]:
    """A 128x96 photo-like PNG and its mask (two blobs, ~10% hole)."""
    image = photo_like(96, 128, seed=seed)
    mask = hole_mask(96, 128, 0.1, 2, seed=seed)
    mask_folder = mask_folder or folder
    for f in (folder, mask_folder):
        f.mkdir(parents=True, exist_ok=True)
    image_path = folder / f"{stem}.png"
    mask_path = mask_folder / (f"{stem}.png" if mask_folder != folder else f"{stem}.mask.png")
    Image.fromarray(image).save(image_path)
    Image.fromarray(mask.astype(np.uint8) * 255).save(mask_path)
    return image_path, mask_path, image, mask


def assert_filled(path: Path, image: np.ndarray, mask: np.ndarray) -> None:
    out = np.asarray(Image.open(path).convert("RGB"))
    assert out.shape == image.shape
    assert np.array_equal(out[~mask], image[~mask]), "known pixels changed"
    # The hole was not left as it was: the fill differs from the original hole content.
    assert not np.array_equal(out[mask], image[mask])


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *words: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_inpaint_file_writes_next_to_input_and_never_overwrites(tmp_path: Path) -> None:
    image_path, mask_path, image, mask = write_pair(tmp_path, "photo")
    proc = run_cli("inpaint", image_path, "--mask", mask_path, "--model", "telea")
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "photo.inpainted.png"
    assert_filled(out, image, mask)
    before = out.read_bytes()

    again = run_cli("inpaint", image_path, "--mask", mask_path, "--model", "navier-stokes")
    assert_one_line_error(again, "photo.inpainted.png", "--overwrite")
    assert out.read_bytes() == before

    forced = run_cli(
        "inpaint", image_path, "--mask", mask_path, "--model", "navier-stokes", "--overwrite"
    )
    assert forced.returncode == 0, forced.stderr
    assert out.read_bytes() != before
    assert image_path.exists() and np.array_equal(np.asarray(Image.open(image_path)), image)


def test_inpaint_folders_paired_by_stem(tmp_path: Path) -> None:
    photos, masks, out_dir = tmp_path / "photos", tmp_path / "masks", tmp_path / "out"
    cases = {}
    for i, stem in enumerate(["a", "b"]):
        _, _, image, mask = write_pair(photos, stem, mask_folder=masks, seed=i)
        cases[stem] = (image, mask)
    proc = run_cli("inpaint", photos, "--mask", masks, "-o", out_dir, "--model", "telea")
    assert proc.returncode == 0, proc.stderr
    for stem, (image, mask) in cases.items():
        assert_filled(out_dir / f"{stem}.inpainted.png", image, mask)


def test_samples_get_numbered_outputs(tmp_path: Path) -> None:
    image_path, mask_path, image, mask = write_pair(tmp_path, "photo")
    proc = run_cli(
        "inpaint",
        image_path,
        "--mask",
        mask_path,
        "--model",
        "telea",
        "--samples",
        "2",
        "-o",
        tmp_path / "result_{i}.png",
    )
    assert proc.returncode == 0, proc.stderr
    for i in (1, 2):
        assert_filled(tmp_path / f"result_{i}.png", image, mask)


def test_output_path_naming() -> None:
    photo = Path("/p/photo.jpg")
    assert output_paths(photo, None, False, 1) == [Path("/p/photo.inpainted.png")]
    assert output_paths(photo, None, False, 2) == [
        Path("/p/photo-1.inpainted.png"),
        Path("/p/photo-2.inpainted.png"),
    ]
    assert output_paths(photo, Path("/o/x.jpg"), False, 2) == [
        Path("/o/x-1.jpg"),
        Path("/o/x-2.jpg"),
    ]
    assert output_paths(photo, Path("/o"), True, 1) == [Path("/o/photo.inpainted.png")]


@pytest.mark.parametrize("problem", ["corrupt", "mask-size", "model", "missing"])
def test_bad_input_exits_2_with_one_line(tmp_path: Path, problem: str) -> None:
    image_path, mask_path, _, _ = write_pair(tmp_path, "photo")
    model = "telea"
    if problem == "corrupt":
        image_path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
        words = ["photo.png"]
    elif problem == "mask-size":
        Image.fromarray(np.zeros((10, 10), np.uint8)).save(mask_path)
        words = ["photo.mask.png", "10x10"]
    elif problem == "model":
        model = "no-such-model"
        words = ["no-such-model", "telea"]
    else:
        image_path = tmp_path / "nothing.jpg"
        words = ["nothing.jpg"]
    proc = run_cli("inpaint", image_path, "--mask", mask_path, "--model", model)
    assert_one_line_error(proc, *words)
    assert not (tmp_path / "photo.inpainted.png").exists()


def test_models_json_lists_the_registry() -> None:
    proc = run_cli("models", "--json")
    assert proc.returncode == 0, proc.stderr
    models = {m["id"]: m for m in json.loads(proc.stdout)}
    assert models["telea"]["available"] is True
    assert models["telea"]["needs_weights"] is False
    for m in models.values():
        assert m["available"] == (m["reason"] is None)


def test_bench_refuses_a_model_it_does_not_know() -> None:
    # A typo must not give an empty table and exit 0.
    proc = run_cli("bench", "--models", "telea", "nope", "--sizes", "512", "--repeat", "1")
    assert proc.returncode == 2
    assert "Unknown model 'nope'" in proc.stderr and "Traceback" not in proc.stderr


def test_bench_prints_a_row_per_case() -> None:
    proc = run_cli("bench", "--models", "telea", "--sizes", "512", "--repeat", "1")
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in proc.stdout.splitlines() if line.startswith("telea")]
    assert len(rows) == 1 and "512x512" in rows[0]


def test_bench_prints_each_model_as_a_multiple_of_telea_in_the_same_run() -> None:
    proc = run_cli(
        "bench", "--models", "navier-stokes", "telea", "--sizes", "512", "--repeat", "1"
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    start = lines.index("# median as a multiple of telea's at the same size, this run")
    times = {line.split()[0]: float(line.split()[5]) for line in lines[2:start]}
    ratio = lines[start + 1].split()
    assert ratio[:2] == ["navier-stokes", "512x512"] and len(lines) == start + 2
    expected = times["navier-stokes"] / times["telea"]
    assert abs(float(ratio[2].rstrip("x")) - expected) <= 0.01 + 0.01 * expected


def test_texture_flag_fills_with_a_learned_model_and_refuses_a_classical_one(tmp_path):
    image_path, mask_path, image, mask = write_pair(tmp_path, "photo")
    out = tmp_path / "out.png"
    proc = run_cli("inpaint", image_path, "--mask", mask_path, "-o", out, "--texture")
    assert proc.returncode == 0, proc.stderr
    assert "hifill + texture" in proc.stderr
    assert_filled(out, image, mask)
    proc = run_cli(
        "inpaint", image_path, "--mask", mask_path, "-o", tmp_path / "t.png",
        "--model", "telea", "--texture",
    )  # fmt: skip
    assert_one_line_error(proc, "learned models")


def test_patchmatch_is_listed_and_fills_without_weights(tmp_path):
    proc = run_cli("models")
    assert proc.returncode == 0
    assert any(line.startswith("patchmatch ") for line in proc.stdout.splitlines())
    image_path, mask_path, image, mask = write_pair(tmp_path, "photo")
    out = tmp_path / "out.png"
    proc = run_cli("inpaint", image_path, "--mask", mask_path, "-o", out, "--model", "patchmatch")
    assert proc.returncode == 0, proc.stderr
    assert_filled(out, image, mask)


def test_a_mask_over_the_whole_photo_is_refused_not_written_back_unchanged(tmp_path):
    image_path, _, image, _ = write_pair(tmp_path, "photo")
    mask_path = tmp_path / "all.png"
    Image.fromarray(np.full(image.shape[:2], 255, np.uint8)).save(mask_path)
    for model in ("telea", "navier-stokes"):
        out = tmp_path / f"{model}.png"
        proc = run_cli("inpaint", image_path, "--mask", mask_path, "-o", out, "--model", model)
        assert_one_line_error(proc, "covers the whole photo")
        assert not out.exists()


@pytest.mark.parametrize(
    "model, extra",
    [
        ("pconv", ["--seed", "99999999999999999999999"]),
        ("dfnet", ["--seed", "18446744073709551615", "--samples", "2"]),
        ("telea", ["--seed", "-1"]),
        ("telea", ["--seed", "4294967295", "--samples", "2"]),
    ],
)
def test_seeds_out_of_range_are_refused_up_front_in_file_and_folder_mode(tmp_path, model, extra):
    image_path, mask_path, _, _ = write_pair(tmp_path / "in", "a", tmp_path / "masks")
    proc = run_cli("inpaint", image_path, "--mask", mask_path, "--model", model, *extra)
    assert_one_line_error(proc, "seed")
    proc = run_cli(
        "inpaint", tmp_path / "in", "--mask", tmp_path / "masks", "-o", tmp_path / "out",
        "--model", model, *extra,
    )  # fmt: skip
    assert_one_line_error(proc, "seed")
    assert not list((tmp_path / "out").glob("*")) if (tmp_path / "out").exists() else True


@pytest.mark.parametrize("text", ["[]", '{"hifill": "abc"}', "7"])
def test_a_manifest_of_the_wrong_shape_is_a_clear_error(tmp_path, text):
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "manifest.json").write_text(text)
    shutil.copy(ROOT / "resources" / "weights" / "hifill.safetensors", weights)
    env = {"INPAINT_STUDIO_WEIGHTS": str(weights)}
    assert_one_line_error(run_cli("models", env=env), "weights manifest")
    image_path, mask_path, _, _ = write_pair(tmp_path, "photo")
    proc = run_cli("inpaint", image_path, "--mask", mask_path, env=env)
    assert_one_line_error(proc, "weights manifest")


def test_an_unknown_strategy_is_refused_even_with_an_empty_mask(tmp_path):
    image_path, _, image, _ = write_pair(tmp_path, "photo")
    empty = tmp_path / "empty.png"
    Image.fromarray(np.zeros(image.shape[:2], np.uint8)).save(empty)
    proc = run_cli("inpaint", image_path, "--mask", empty, "--strategy", "bogus")
    assert_one_line_error(proc, "'bogus'")


def test_a_missing_gpu_is_an_error_for_classical_models_too(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    image_path, mask_path, _, _ = write_pair(tmp_path, "photo")
    proc = run_cli(
        "inpaint", image_path, "--mask", mask_path, "--model", "telea", "--device", "cuda"
    )
    assert_one_line_error(proc, "CUDA")


def test_without_the_default_models_weights_the_cli_says_which_model_ran(tmp_path):
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "manifest.json").write_text("{}")
    image_path, mask_path, image, mask = write_pair(tmp_path, "photo")
    out = tmp_path / "out.png"
    proc = run_cli(
        "inpaint", image_path, "--mask", mask_path, "-o", out,
        env={"INPAINT_STUDIO_WEIGHTS": str(weights)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "HiFill, the default model, cannot run" in proc.stderr
    assert (
        "hifill.safetensors is not installed" in proc.stderr and "using OpenCV Telea" in proc.stderr
    )
    assert_filled(out, image, mask)


def test_models_reports_a_tampered_weights_file_as_unavailable(tmp_path):
    weights = tmp_path / "weights"
    shutil.copytree(ROOT / "resources" / "weights", weights)
    with open(weights / "hifill.safetensors", "ab") as f:
        f.write(b"tampered")
    proc = run_cli("models", "--json", env={"INPAINT_STUDIO_WEIGHTS": str(weights)})
    assert proc.returncode == 0, proc.stderr
    rows = {r["id"]: r for r in json.loads(proc.stdout)}
    assert (
        not rows["hifill"]["available"]
        and "does not match the manifest" in rows["hifill"]["reason"]
    )
    assert rows["pconv"]["available"]


def test_a_photo_name_used_twice_in_a_folder_is_an_error_naming_both(tmp_path):
    write_pair(tmp_path / "in", "a", tmp_path / "masks")
    Image.fromarray(photo_like(96, 128, seed=3)).save(tmp_path / "in" / "a.jpg")
    proc = run_cli("inpaint", tmp_path / "in", "--mask", tmp_path / "masks", "-o", tmp_path / "out")
    assert_one_line_error(proc, "'a.jpg'", "'a.png'")


def test_folder_mode_can_run_twice_with_its_default_output_location(tmp_path):
    for stem in ("a", "b"):
        write_pair(tmp_path / "in", stem, tmp_path / "masks", seed=len(stem))
    for extra in ([], ["--overwrite"]):
        proc = run_cli(
            "inpaint", tmp_path / "in", "--mask", tmp_path / "masks", "--model", "telea", *extra
        )
        assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "in").iterdir()) == [
        "a.inpainted.png", "a.png", "b.inpainted.png", "b.png",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "output, words",
    [
        ("out.xyz", ["'.xyz' is not supported"]),
        ("missing/out.png", ["does not exist"]),
        ("existing", ["a folder of that name exists"]),
        ("wide.webp", ["WebP stores at most"]),
    ],
)
def test_output_problems_are_found_before_the_model_runs(
    tmp_path, monkeypatch, capsys, output, words
):
    import main as cli
    from engine.pipeline import Engine

    (tmp_path / "existing").mkdir()
    width = 16384 if output.endswith(".webp") else 128  # the widest photo the engine takes
    image = np.zeros((16, width, 3), np.uint8)
    mask = np.zeros((16, width), np.uint8)
    mask[4:8, 4:8] = 255
    Image.fromarray(image).save(tmp_path / "photo.png")
    Image.fromarray(mask).save(tmp_path / "mask.png")

    def ran(*_: object, **__: object) -> None:
        raise AssertionError("the model ran before the output was checked")

    monkeypatch.setattr(Engine, "run", ran)
    argv = ["inpaint", str(tmp_path / "photo.png"), "--mask", str(tmp_path / "mask.png")]
    assert cli.main([*argv, "--model", "telea", "-o", str(tmp_path / output)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and all(w in err[0] for w in words), err


@pytest.mark.parametrize("delay", [0.1, 0.2, 0.35])
def test_ctrl_c_at_start_up_prints_no_traceback(tmp_path, delay):
    import signal
    import time

    image_path, mask_path, _, _ = write_pair(tmp_path, "photo")
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "main.py"),
            "inpaint",
            str(image_path),
            "--mask",
            str(mask_path),
        ],
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert "Traceback" not in err, err
    assert proc.returncode in (EXIT_INTERRUPTED, -signal.SIGINT, 0), (proc.returncode, err)


@pytest.mark.parametrize("orderly_report", [False, True])
def test_ctrl_c_ends_the_process_even_when_a_thread_is_stuck(orderly_report):
    # A Ctrl+C inside the import machinery can leave a lock held that the photo-reading
    # thread then waits on forever; the interpreter's exit would wait on that thread. The
    # user sees one "interrupted" line whether or not the orderly exit said it first.
    report = "    main._report_interrupted()\n" if orderly_report else ""
    script = (
        "import signal, sys, threading, time\n"
        "import main\n"
        "main.INTERRUPT_GRACE_S = 0.5\n"
        "signal.signal(signal.SIGINT, main._on_interrupt)\n"
        "threading.Thread(target=threading.Event().wait).start()\n"
        "try:\n"
        "    signal.raise_signal(signal.SIGINT)\n"
        "except KeyboardInterrupt:\n"
        f"{report}"
        "    sys.exit(7)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=30
    )
    assert proc.returncode == EXIT_INTERRUPTED, (proc.returncode, proc.stderr)
    assert proc.stderr.strip() == "interrupted"


@pytest.mark.parametrize("interrupted", [False, True])
def test_an_error_caused_by_ctrl_c_reads_as_interrupted(monkeypatch, capsys, interrupted):
    # A Ctrl+C inside numpy's C import surfaces as an ImportError chained to it; after a
    # Ctrl+C the user sees "interrupted" and exit code 130, without it the error as it is.
    import threading

    import main as cli

    def broken_import(argv=None):
        raise ImportError("PyCapsule_Import could not import module")

    monkeypatch.setattr(cli, "main", broken_import)
    monkeypatch.setattr(cli, "_reported", threading.Lock())
    monkeypatch.setattr(cli, "_interrupt_received", threading.Event())
    if interrupted:
        cli._interrupt_received.set()
        assert cli.run_script([]) == EXIT_INTERRUPTED
        assert capsys.readouterr().err.strip() == "interrupted"
    else:
        with pytest.raises(ImportError):
            cli.run_script([])
        assert capsys.readouterr().err == ""


def test_a_jpeg_with_broken_exif_opens_without_pil_warnings(tmp_path):
    image = photo_like(96, 128, seed=4)
    broken = (
        b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x05\x00\x0f\x01\x02\x00\x40\x00\x00\x00P\x00\x00\x00"
    )
    Image.fromarray(image).save(tmp_path / "photo.jpg", exif=broken)
    mask = hole_mask(96, 128, 0.1, 2, seed=0)
    Image.fromarray(mask.astype(np.uint8) * 255).save(tmp_path / "mask.png")
    proc = run_cli(
        "inpaint", tmp_path / "photo.jpg", "--mask", tmp_path / "mask.png", "--model", "telea"
    )
    assert proc.returncode == 0, proc.stderr
    assert "Warning" not in proc.stderr and "PIL" not in proc.stderr, proc.stderr


def test_a_folder_and_a_file_are_named_when_they_do_not_pair(tmp_path):
    _, mask_path, _, _ = write_pair(tmp_path / "in", "a", tmp_path / "masks")
    proc = run_cli("inpaint", tmp_path / "in", "--mask", mask_path)
    assert_one_line_error(proc, f"'{tmp_path / 'in'}' is a folder", f"'{mask_path}' a file")


def test_models_says_when_shipped_weights_are_below_the_quality_bar(tmp_path):
    weights = tmp_path / "weights"
    shutil.copytree(ROOT / "resources" / "weights", weights)
    manifest = json.loads((weights / "manifest.json").read_text())
    manifest["pconv"]["metrics"].update(meets_quality_bar=False, gap="L1 +3% against Telea")
    (weights / "manifest.json").write_text(json.dumps(manifest))
    env = {"INPAINT_STUDIO_WEIGHTS": str(weights)}
    rows = {r["id"]: r for r in json.loads(run_cli("models", "--json", env=env).stdout)}
    assert rows["pconv"]["available"] and rows["pconv"]["below_bar"] == "L1 +3% against Telea"
    assert rows["hifill"]["below_bar"] is None
    proc = run_cli("models", env=env)
    assert "ready; below the quality bar: L1 +3% against Telea" in proc.stdout


def test_samples_writes_n_files_and_a_seed_recreates_one_of_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from test_pluralistic import TINY, _net
    from weights_util import install_untrained

    weights = tmp_path / "weights"
    weights.mkdir()
    install_untrained(weights, monkeypatch, "pluralistic", _net(), TINY)
    env = {"INPAINT_STUDIO_WEIGHTS": str(weights)}
    photo, mask_path, image, mask = write_pair(tmp_path, "garden")
    out = tmp_path / "fill-{i}.png"
    proc = run_cli(
        "inpaint", photo, "--mask", mask_path, "-o", out, "--model", "pluralistic",
        "--samples", "3", "--seed", "10", env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    files = [tmp_path / f"fill-{i}.png" for i in (1, 2, 3)]
    for f in files:
        assert_filled(f, image, mask)
    fills = [np.asarray(Image.open(f).convert("RGB")) for f in files]
    assert not np.array_equal(fills[0], fills[1])
    again = tmp_path / "again.png"
    proc = run_cli(
        "inpaint", photo, "--mask", mask_path, "-o", again, "--model", "pluralistic",
        "--seed", "11", "--samples", "1", env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert np.array_equal(np.asarray(Image.open(again).convert("RGB")), fills[1])
