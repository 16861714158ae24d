"""The engine worker thread: jobs, samples, progress, cancellation, failures, shutdown."""

from __future__ import annotations

import os
import sys
import threading

import numpy as np
import pytest

from app.worker import EngineThread
from engine.jobs import InpaintRequest, InpaintResult
from engine.runner import JobEvent


def events(thread: EngineThread, kind: str) -> list[JobEvent]:
    """Collects the thread's events of one kind as they arrive."""
    found: list[JobEvent] = []
    thread.event.connect(lambda e: found.append(e) if e.kind == kind else None)
    return found


def wait_for(qtbot, thread: EngineThread, kind: str, timeout: int = 20_000):
    """A qtbot blocker for the next event of ``kind`` (its ``args[0]`` is the event)."""
    return qtbot.waitSignal(thread.event, timeout=timeout, check_params_cb=lambda e: e.kind == kind)


@pytest.fixture
def engine_thread(qtbot):
    thread = EngineThread()
    yield thread
    assert thread.shutdown(30_000)
    assert not thread.is_running()


def request(samples: int = 1, model: str = "telea", size: int = 200) -> InpaintRequest:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (size * 3 // 4, size, 3), dtype=np.uint8)
    mask = np.zeros(image.shape[:2], bool)
    mask[size // 4 : size // 2, size // 4 : size // 2] = True
    return InpaintRequest(image, mask, model, samples=samples)


def test_job_runs_in_the_worker_thread_and_reports_samples_then_result(
    qtbot,
    engine_thread,
) -> None:
    req = request(samples=2)
    samples = events(engine_thread, "sample")
    progress = events(engine_thread, "progress")
    with wait_for(qtbot, engine_thread, "finished") as blocker:
        engine_thread.submit(req)
    (event,) = blocker.args
    result = event.result
    assert event.job_id == req.job_id and event.terminal
    assert isinstance(result, InpaintResult) and len(result.images) == 2
    assert [(e.job_id, e.index) for e in samples] == [(req.job_id, 0), (req.job_id, 1)]
    assert progress and progress[-1].progress.fraction == pytest.approx(1.0)
    assert engine_thread.worker.thread_id != threading.get_ident()
    image = result.images[0]
    assert not image.flags.writeable
    np.testing.assert_array_equal(image[~req.mask], req.image[~req.mask])
    assert engine_thread.pending == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread niceness is Linux's")
def test_worker_runs_nicer_than_the_gui_thread(qtbot, engine_thread) -> None:
    with wait_for(qtbot, engine_thread, "finished"):
        engine_thread.submit(request())
    worker = engine_thread.worker.native_thread_id
    gui = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert os.getpriority(os.PRIO_PROCESS, worker) >= gui + 1


def test_cancel_a_running_job(qtbot, engine_thread) -> None:
    # 40 samples of ~0.1 s each; cancel as soon as the first one arrives.
    req = request(samples=40, size=800)
    finished = events(engine_thread, "finished")
    samples: list[int] = []

    def on_sample(event: JobEvent) -> None:
        if event.kind == "sample":
            samples.append(event.index)
            engine_thread.cancel(event.job_id)

    engine_thread.event.connect(on_sample)
    with wait_for(qtbot, engine_thread, "cancelled", 30_000) as blocker:
        engine_thread.submit(req)
    assert blocker.args[0].job_id == req.job_id
    assert not finished
    assert 1 <= len(samples) < 40
    # The worker keeps working after a cancellation.
    with wait_for(qtbot, engine_thread, "finished"):
        engine_thread.submit(request())


def test_cancel_a_queued_job_before_it_starts(qtbot, engine_thread) -> None:
    first, second = request(samples=3, size=600), request()
    started = events(engine_thread, "started")
    engine_thread.submit(first)
    engine_thread.submit(second)
    engine_thread.cancel(second.job_id)
    with wait_for(qtbot, engine_thread, "cancelled") as blocker:
        pass
    assert blocker.args[0].job_id == second.job_id
    assert second.job_id not in [e.job_id for e in started]


def test_failure_becomes_a_readable_message_and_the_worker_goes_on(
    qtbot,
    engine_thread,
) -> None:
    with wait_for(qtbot, engine_thread, "failed", 10_000) as blocker:
        engine_thread.submit(request(model="no-such-model"))
    assert "Unknown model 'no-such-model'" in blocker.args[0].message
    with wait_for(qtbot, engine_thread, "finished"):
        engine_thread.submit(request())


def test_preload_loads_in_the_worker(qtbot, engine_thread) -> None:
    with wait_for(qtbot, engine_thread, "loaded", 10_000) as blocker:
        job_id = engine_thread.preload("navier-stokes")
    event = blocker.args[0]
    assert (event.job_id, event.model_id) == (job_id, "navier-stokes")
    assert engine_thread.worker.engine.is_loaded("navier-stokes", "auto")


def test_shutdown_cancels_and_joins(qtbot) -> None:
    thread = EngineThread()
    thread.submit(request(samples=40, size=800))
    assert thread.shutdown(30_000)
    assert not thread.is_running()
    with pytest.raises(RuntimeError):
        thread.submit(request())


def test_the_engine_package_imports_no_qt() -> None:
    import subprocess

    modules = "engine, engine.runner, engine.pipeline, engine.highres.cra, engine.texture"
    code = f"import sys, {modules}; print('PySide6' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
