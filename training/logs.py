"""Training logs: a CSV of loss means and a loss-curve PNG drawn with OpenCV (no matplotlib)."""

from __future__ import annotations

import csv
import os
import platform
from pathlib import Path

import cv2
import numpy as np
import torch


def machine_description(device: torch.device, world: int = 1) -> str:
    """One line naming the hardware a run trained on, e.g. for the weights manifest."""
    if device.type == "cuda":
        what = torch.cuda.get_device_name(device)
    else:
        cpu = platform.processor() or platform.machine()
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
        what = f"{cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} torch thread(s)"
    return f"{world} x {what}" if world > 1 else what


class CsvLog:
    """Appends rows ``step, time_s, lr, <loss terms>``; a row with other columns than the
    last header (e.g. a loss term switched on by ``train.loss_schedule``) starts a new header
    line, so the file stays readable by :func:`read_log`."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fields: list[str] | None = None
        if self.path.is_file():
            for line in self.path.read_text().splitlines():
                if line.startswith("step,"):
                    self._fields = line.split(",")

    def write(self, step: int, elapsed: float, lr: float, values: dict[str, float]) -> None:
        row = {"step": step, "time_s": round(elapsed, 1), "lr": lr}
        row.update({k: round(v, 6) for k, v in sorted(values.items())})
        with open(self.path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(row))
            if list(row) != self._fields:
                writer.writeheader()
                self._fields = list(row)
            writer.writerow(row)


def read_log(path: Path) -> list[dict[str, float]]:
    """The rows of a :class:`CsvLog` file as dicts (each under the header above it)."""
    rows: list[dict[str, float]] = []
    fields: list[str] = []
    with open(path, newline="") as f:
        for record in csv.reader(f):
            if record and record[0] == "step":
                fields = record
            elif record:
                rows.append({k: float(v) for k, v in zip(fields, record, strict=False) if v})
    return rows


COLOURS = [
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
]  # fmt: skip


def plot_losses(csv_path: Path, png_path: Path, size: tuple[int, int] = (900, 500)) -> None:
    """Draw every loss column of the log against the step (log10 y axis) as a PNG."""
    rows = read_log(csv_path)
    if len(rows) < 2:
        return
    keys = list(dict.fromkeys(k for r in rows for k in r if k not in ("step", "time_s", "lr")))
    w, h = size
    left, right, top, bottom = 70, 160, 20, 40
    img = np.full((h, w, 3), 255, np.uint8)
    steps = np.array([r["step"] for r in rows])
    series = {k: np.array([max(r.get(k, np.nan), 1e-8) for r in rows]) for k in keys}
    all_v = np.log10(np.concatenate([v[np.isfinite(v)] for v in series.values()]))
    lo, hi = float(all_v.min()), float(all_v.max()) + 1e-6
    s0, s1 = float(steps.min()), float(steps.max()) + 1e-6

    def xy(s: float, v: float) -> tuple[int, int]:
        x = left + (s - s0) / (s1 - s0) * (w - left - right)
        y = top + (1 - (np.log10(v) - lo) / (hi - lo)) * (h - top - bottom)
        return int(x), int(y)

    cv2.rectangle(img, (left, top), (w - right, h - bottom), (0, 0, 0), 1)
    for e in range(int(np.floor(lo)), int(np.ceil(hi)) + 1):
        if lo <= e <= hi:
            y = xy(s0, 10.0**e)[1]
            cv2.line(img, (left, y), (w - right, y), (220, 220, 220), 1)
            cv2.putText(img, f"1e{e}", (5, y + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
    cv2.putText(img, f"step {int(s0)}", (left, h - 15), cv2.FONT_HERSHEY_SIMPLEX, 0.4, 0, 1)
    cv2.putText(img, f"{int(s1)}", (w - right - 40, h - 15), cv2.FONT_HERSHEY_SIMPLEX, 0.4, 0, 1)
    for i, k in enumerate(keys):
        colour = COLOURS[i % len(COLOURS)][::-1]
        pts = [xy(s, v) for s, v in zip(steps, series[k], strict=True) if np.isfinite(v)]
        if len(pts) > 1:
            cv2.polylines(img, [np.array(pts, np.int32)], False, colour, 1, cv2.LINE_AA)
        cv2.putText(img, k, (w - right + 8, top + 14 + 16 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    colour, 1, cv2.LINE_AA)  # fmt: skip
    cv2.imwrite(str(png_path), img)
