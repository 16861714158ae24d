"""How fast the app feels on an 8K photo, measured by driving the real widgets.

Prints three figures (medians over ``--repeat`` runs where it makes sense):

1. open an 8K JPEG until the canvas has finished its first paint, and the longest the
   GUI event loop went without running a 5 ms QTimer meanwhile (the file is decoded on a
   worker thread);
2. a brush segment, from the synthetic mouse-move event until the canvas
   has repainted, at zoom-to-fit and at 100%;
3. the longest the GUI event loop went without running a 5 ms QTimer while a
   Telea job on the 8K photo ran in the worker (from the click until the
   result was applied and shown; the mask, 5% of the photo in 4 regions, is
   set and drawn before the click), and for comparison the same with no job.

Usage::

    python scripts/bench_app.py [--photo PATH] [--repeat 3] [--window 1600x1000]

Without ``--photo`` an 8K (7680x4320) JPEG is synthesised in a temporary
folder. Runs offscreen unless a display is set (e.g. under ``xvfb-run``).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
from PySide6.QtCore import QEvent, QEventLoop, QPointF, QSettings, Qt, QTimer
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from app.main_window import MainWindow
from app.settings import Settings
from engine import imageio, synthetic

WIDTH, HEIGHT = 7680, 4320


class PaintProbe:
    """Counts the canvas's paint events and records when the last one ended."""

    def __init__(self, canvas) -> None:
        self.count = 0
        self.ended = 0.0
        original = canvas.paintEvent

        def paint(event) -> None:
            original(event)
            self.count += 1
            self.ended = time.perf_counter()

        canvas.paintEvent = paint

    def wait(self, after: int, timeout: float = 5.0) -> float:
        """Process events until a paint beyond ``after`` has ended; returns when it ended."""
        app = QApplication.instance()
        deadline = time.perf_counter() + timeout
        while self.count <= after:
            app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents)
            if time.perf_counter() > deadline:
                raise TimeoutError("the canvas did not repaint")
        return self.ended


def mouse(kind: QEvent.Type, pos: QPointF, buttons: Qt.MouseButton) -> QMouseEvent:
    button = Qt.MouseButton.LeftButton if kind != QEvent.Type.MouseMove else Qt.MouseButton.NoButton
    return QMouseEvent(kind, pos, pos, button, buttons, Qt.KeyboardModifier.NoModifier)


def bench_open(
    window: MainWindow, probe: PaintProbe, path: Path, repeat: int
) -> tuple[list[float], list[float]]:
    """Seconds from open to the first paint, and the longest event-loop stall, per run."""
    times, stalls = [], []
    set_document = window.set_document
    shown: list[int] = []  # the paint count when the photo reached the canvas

    def set_and_note(doc) -> None:
        set_document(doc)
        shown.append(probe.count)

    for _ in range(repeat):
        set_document(None)
        probe.wait(probe.count - 1)
        shown.clear()
        window.set_document = set_and_note  # the window keeps painting while the file loads
        ticks: list[float] = []
        timer = _tick_timer(ticks)
        timer.start()
        start = time.perf_counter()
        ticks.append(start)
        assert window.open_path(path)
        times.append(probe.wait(shown[0]) - start)
        window.set_document = set_document
        ticks.append(time.perf_counter())
        timer.stop()
        stalls.append(float(np.diff(ticks).max()))
    return times, stalls


def bench_brush(window: MainWindow, probe: PaintProbe, moves: int, step: float) -> list[float]:
    """Event-to-repaint times of ``moves`` brush segments of ``step`` screen pixels."""
    canvas = window.canvas
    app = QApplication.instance()
    cx, cy = canvas.width() / 2, canvas.height() / 2
    radius = min(cx, cy) * 0.6
    left = Qt.MouseButton.LeftButton

    def point(i: int) -> QPointF:
        # A circle walked at ``step`` px per event: every segment has a new direction.
        angle = i * step / radius
        return QPointF(cx + radius * np.cos(angle), cy + radius * np.sin(angle))

    before = probe.count
    app.sendEvent(canvas, mouse(QEvent.Type.MouseButtonPress, point(0), left))
    probe.wait(before)  # the press paints a dab: not part of the first segment
    for _ in range(5):
        app.processEvents()
    times = []
    for i in range(1, moves + 1):
        before = probe.count
        start = time.perf_counter()
        app.sendEvent(canvas, mouse(QEvent.Type.MouseMove, point(i), left))
        times.append(probe.wait(before) - start)
    app.sendEvent(canvas, mouse(QEvent.Type.MouseButtonRelease, point(moves), left))
    app.processEvents()
    return times


def bench_job(window: MainWindow, model_id: str) -> tuple[float, float, float, float]:
    """Event-loop gaps while ``model_id`` inpaints the photo.

    Returns (longest gap, mean gap, job seconds, when the longest gap ended
    relative to the arrival of the result; negative = before it).
    """
    doc = window.document
    h, w = doc.mask.shape
    mask = synthetic.hole_mask(h, w, ratio=0.05, regions=4, seed=3)
    doc.replace_mask(mask, "Benchmark mask")
    assert window.panel.models.select(model_id)
    app = QApplication.instance()
    # The user sees the mask drawn before clicking Inpaint.
    window.canvas.layers.flush()
    app.processEvents()
    ticks: list[float] = []
    timer = _tick_timer(ticks)
    loop = QEventLoop()
    arrived: list[float] = []
    window.controller.engine.event.connect(
        lambda e: arrived.append(time.perf_counter()) if e.kind == "sample" else None
    )
    window.controller.jobFinished.connect(loop.quit)
    window.controller.jobFailed.connect(loop.quit)
    timer.start()
    ticks.append(time.perf_counter())
    start = time.perf_counter()
    # Queue the click like a real one, so the loop is already running when it is handled.
    QTimer.singleShot(0, window.inpaint)
    QTimer.singleShot(120_000, loop.quit)  # a safety net: never hang
    loop.exec()
    app.processEvents()  # the repaint of the result
    ticks.append(time.perf_counter())
    timer.stop()
    gaps = np.diff(ticks)
    worst = int(gaps.argmax())
    when = ticks[worst + 1] - (arrived[0] if arrived else ticks[-1])
    return float(gaps.max()), float(gaps.mean()), time.perf_counter() - start, when


def _tick_timer(ticks: list[float]) -> QTimer:
    """A precise 5 ms timer appending each tick's time to ``ticks``: its gaps are loop stalls."""
    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(5)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    return timer


def bench_idle(seconds: float) -> float:
    """Longest gap between 5 ms timer ticks with nothing to do: the machine's own noise."""
    ticks: list[float] = []
    timer = _tick_timer(ticks)
    loop = QEventLoop()
    QTimer.singleShot(round(seconds * 1000), loop.quit)
    ticks.append(time.perf_counter())
    timer.start()
    loop.exec()
    timer.stop()
    return float(np.diff(ticks).max())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photo", type=Path, help="an 8K JPEG (default: synthesised)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--window", default="1600x1000", help="window size WxH")
    parser.add_argument("--brush", type=int, default=120, help="brush diameter, photo pixels")
    parser.add_argument("--moves", type=int, default=200, help="brush segments per zoom")
    parser.add_argument("--model", default="telea")
    args = parser.parse_args()

    app = QApplication.instance() or QApplication(sys.argv[:1])
    tmp = tempfile.TemporaryDirectory()
    photo = args.photo
    if photo is None:
        photo = Path(tmp.name) / "8k.jpg"
        imageio.save_image(photo, synthetic.photo_like(HEIGHT, WIDTH, seed=1), quality=92)
    settings = Settings(QSettings(str(Path(tmp.name) / "bench.ini"), QSettings.Format.IniFormat))
    window = MainWindow(settings=settings)
    window.ask = lambda title, question: True
    w, h = (int(v) for v in args.window.split("x"))
    window.resize(w, h)
    window.show()
    gc.freeze()  # as app.application.run does after building the window
    probe = PaintProbe(window.canvas)
    for _ in range(20):
        app.processEvents()
        time.sleep(0.01)

    opens, open_stalls = bench_open(window, probe, photo, args.repeat)
    doc = window.document
    canvas = window.canvas
    canvas.set_brush_size(args.brush)
    print(
        f"photo {photo.name}: {doc.width}x{doc.height}, {photo.stat().st_size / 1e6:.1f} MB; "
        f"canvas {canvas.width()}x{canvas.height()}, platform {app.platformName()}"
    )
    reads = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        imageio.load_image(photo)
        reads.append(time.perf_counter() - start)
    print(
        f"open to first paint: median {statistics.median(opens):.3f} s "
        f"(runs: {', '.join(f'{t:.3f}' for t in opens)}); of which decoding the file "
        f"(engine.imageio.load_image alone): median {statistics.median(reads):.3f} s; "
        f"longest event-loop stall meanwhile: median {statistics.median(open_stalls) * 1000:.1f} ms"
    )

    results = {}
    for name, action in (("fit", canvas.fit), ("100%", canvas.actual_size)):
        action()
        probe.wait(probe.count - 1)
        runs = [bench_brush(window, probe, args.moves, step=12.0) for _ in range(args.repeat)]
        times = np.array([t for run in runs for t in run]) * 1000
        results[name] = times
        print(
            f"brush {args.brush} px at {name} (scale {canvas.view.scale:.3f}): event to repaint "
            f"median {np.median(times):.2f} ms, p95 {np.percentile(times, 95):.2f} ms, "
            f"max {times.max():.2f} ms over {times.size} segments"
        )
    canvas.fit()
    gaps = [bench_job(window, args.model) for _ in range(args.repeat)]
    for gap, mean, seconds, when in gaps:
        print(
            f"{args.model} job on {doc.width}x{doc.height}: {seconds:.2f} s; longest event-loop "
            f"gap {gap * 1000:.1f} ms, ending {when * 1000:+.0f} ms from the result's arrival "
            f"(mean tick {mean * 1000:.1f} ms)"
        )
    print(
        f"longest event-loop gap, median of runs: "
        f"{statistics.median(g[0] for g in gaps) * 1000:.1f} ms"
    )
    idle = [bench_idle(gaps[0][2]) for _ in range(args.repeat)]
    print(
        f"for comparison, the idle event loop over as long: longest gap median "
        f"{statistics.median(idle) * 1000:.1f} ms (runs: "
        f"{', '.join(f'{g * 1000:.1f}' for g in idle)} ms)"
    )
    window.close()
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
