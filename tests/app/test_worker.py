"""The engine worker thread: jobs, samples, progress, cancellation, failures, shutdown."""

from __future__ import annotations

import os
import sys
import threading

import numpy as np
import pytest

from engine.jobs import InpaintRequest, InpaintResult
from engine.worker import EngineThread


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
    samples: list[tuple[int, int]] = []
    progress: list[float] = []
    engine_thread.sample.connect(lambda job, i, img: samples.append((job, i)))
    engine_thread.progress.connect(lambda job, p: progress.append(p.fraction))
    with qtbot.waitSignal(engine_thread.finished, timeout=20_000) as blocker:
        engine_thread.submit(req)
    job_id, result = blocker.args
    assert job_id == req.job_id
    assert isinstance(result, InpaintResult) and len(result.images) == 2
    assert samples == [(req.job_id, 0), (req.job_id, 1)]
    assert progress and progress[-1] == pytest.approx(1.0)
    assert engine_thread.worker.thread_id != threading.get_ident()
    image = result.images[0]
    assert not image.flags.writeable
    np.testing.assert_array_equal(image[~req.mask], req.image[~req.mask])
    assert engine_thread.pending == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread niceness is Linux's")
def test_worker_runs_nicer_than_the_gui_thread(qtbot, engine_thread) -> None:
    with qtbot.waitSignal(engine_thread.finished, timeout=20_000):
        engine_thread.submit(request())
    worker = engine_thread.worker.native_thread_id
    gui = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert os.getpriority(os.PRIO_PROCESS, worker) >= gui + 1


def test_cancel_a_running_job(qtbot, engine_thread) -> None:
    # 40 samples of ~0.1 s each; cancel as soon as the first one arrives.
    req = request(samples=40, size=800)
    finished: list[int] = []
    samples: list[int] = []
    engine_thread.finished.connect(lambda job, result: finished.append(job))

    def on_sample(job: int, index: int, image: np.ndarray) -> None:
        samples.append(index)
        engine_thread.cancel(job)

    engine_thread.sample.connect(on_sample)
    with qtbot.waitSignal(engine_thread.cancelled, timeout=30_000) as blocker:
        engine_thread.submit(req)
    assert blocker.args == [req.job_id]
    assert not finished
    assert 1 <= len(samples) < 40
    # The worker keeps working after a cancellation.
    with qtbot.waitSignal(engine_thread.finished, timeout=20_000):
        engine_thread.submit(request())


def test_cancel_a_queued_job_before_it_starts(qtbot, engine_thread) -> None:
    first, second = request(samples=3, size=600), request()
    started: list[int] = []
    engine_thread.started.connect(started.append)
    engine_thread.submit(first)
    engine_thread.submit(second)
    engine_thread.cancel(second.job_id)
    with qtbot.waitSignal(engine_thread.cancelled, timeout=20_000) as blocker:
        pass
    assert blocker.args == [second.job_id]
    assert second.job_id not in started


def test_failure_becomes_a_readable_message_and_the_worker_goes_on(
    qtbot,
    engine_thread,
) -> None:
    with qtbot.waitSignal(engine_thread.failed, timeout=10_000) as blocker:
        engine_thread.submit(request(model="no-such-model"))
    _, message = blocker.args
    assert "Unknown model 'no-such-model'" in message
    with qtbot.waitSignal(engine_thread.finished, timeout=20_000):
        engine_thread.submit(request())


def test_preload_loads_in_the_worker(qtbot, engine_thread) -> None:
    with qtbot.waitSignal(engine_thread.loaded, timeout=10_000) as blocker:
        job_id = engine_thread.preload("navier-stokes")
    assert blocker.args == [job_id, "navier-stokes"]
    assert engine_thread.worker.engine.is_loaded("navier-stokes", "auto")


def test_shutdown_cancels_and_joins(qtbot) -> None:
    thread = EngineThread()
    thread.submit(request(samples=40, size=800))
    assert thread.shutdown(30_000)
    assert not thread.is_running()
    with pytest.raises(RuntimeError):
        thread.submit(request())
