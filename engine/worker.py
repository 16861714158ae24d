"""The engine's worker thread for the desktop app (the only engine module that uses Qt).

One long-lived ``QThread`` owns the :class:`~engine.pipeline.Engine`, hence
the compute device and the loaded models. The GUI thread talks to it through
:class:`EngineThread`: it submits jobs (an :class:`~engine.jobs.InpaintRequest`
carries its job id) and model loads, and receives signals that all carry the
job id. Arrays cross threads as read-only numpy arrays.

Cancelling sets the job's :class:`~engine.jobs.CancelToken`; the engine
checks it between stages, crops and samples. The thread is never terminated:
:meth:`EngineThread.shutdown` cancels everything and joins it.
"""

from __future__ import annotations

import logging
import os
import threading
import traceback

from PySide6.QtCore import QObject, QThread, Signal, Slot

from engine.errors import EngineError, JobCancelled
from engine.jobs import CancelToken, InpaintRequest, Progress, next_job_id
from engine.pipeline import Engine
from engine.registry import get_spec

log = logging.getLogger(__name__)

# How much nicer than the GUI thread the worker runs (Linux niceness, inherited
# by the threads it starts): on a machine with few cores the scheduler then
# serves the event loop first and a busy model never makes the window stutter.
WORKER_NICENESS = 5


def _lower_thread_priority() -> None:
    """Make the calling thread (not the process) nicer, where the OS allows it."""
    if not hasattr(os, "setpriority"):
        return
    try:
        # On Linux PRIO_PROCESS with who=0 addresses the calling thread only.
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + WORKER_NICENESS)
    except OSError as exc:  # not permitted or not supported: run at normal priority
        log.debug("could not lower the worker's priority: %s", exc)


class EngineWorker(QObject):
    """Lives in the worker thread and runs one job at a time, in submission order.

    Signals (all carry the job id first):
        started(job_id)
        progress(job_id, Progress)
        sample(job_id, index, image): a finished sample, before ``finished``.
        finished(job_id, InpaintResult)
        loaded(job_id, model_id): a model load asked for by :meth:`EngineThread.preload`.
        failed(job_id, message): a readable one-line reason.
        cancelled(job_id)
    """

    started = Signal(int)
    progress = Signal(int, object)
    sample = Signal(int, int, object)
    finished = Signal(int, object)
    loaded = Signal(int, str)
    failed = Signal(int, str)
    cancelled = Signal(int)

    def __init__(self, engine: Engine | None = None) -> None:
        super().__init__()
        # Created on first use, i.e. in the worker thread, like the models it loads.
        self._engine = engine
        # Python and OS ids of the thread that runs the jobs (for tests and diagnostics).
        self.thread_id: int | None = None
        self.native_thread_id: int | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = Engine()
        return self._engine

    def _enter_thread(self) -> None:
        if self.thread_id != threading.get_ident():
            self.thread_id = threading.get_ident()
            self.native_thread_id = threading.get_native_id()
            if self.thread_id != threading.main_thread().ident:
                _lower_thread_priority()

    @Slot(object, object)
    def run_job(self, request: InpaintRequest, token: CancelToken) -> None:
        job_id = request.job_id
        self._enter_thread()

        def on_progress(progress: Progress) -> None:
            self.progress.emit(job_id, progress)

        def on_sample(index: int, image) -> None:
            self.sample.emit(job_id, index, image)

        self._guarded(
            job_id,
            token,
            lambda: self.finished.emit(
                job_id, self.engine.run(request, token, on_progress, on_sample)
            ),
        )

    @Slot(int, str, str, object)
    def load_model(self, job_id: int, model_id: str, device: str, token: CancelToken) -> None:
        self._enter_thread()

        def load() -> None:
            label = get_spec(model_id).label
            self.progress.emit(job_id, Progress(job_id, "loading", 0.0, f"Loading {label}…"))
            self.engine.load(model_id, device)
            self.progress.emit(job_id, Progress(job_id, "loading", 1.0, f"{label} is ready"))
            self.loaded.emit(job_id, model_id)

        self._guarded(job_id, token, load)

    def _guarded(self, job_id: int, token: CancelToken, work) -> None:
        if token.cancelled:
            self.cancelled.emit(job_id)
            return
        self.started.emit(job_id)
        try:
            work()
        except JobCancelled:
            self.cancelled.emit(job_id)
        except EngineError as exc:
            self.failed.emit(job_id, str(exc))
        except Exception as exc:  # a bug: report it and keep the thread alive
            log.error("job %s failed:\n%s", job_id, traceback.format_exc())
            self.failed.emit(job_id, f"Unexpected error ({type(exc).__name__}): {exc}")


class EngineThread(QObject):
    """The GUI side's handle on the worker thread.

    Re-emits the worker's signals in the thread that created it (the GUI
    thread). Create it once per window; call :meth:`shutdown` before the
    window goes away.

    Args:
        engine: the engine to use (a new one by default).
        parent: Qt parent.
    """

    started = Signal(int)
    progress = Signal(int, object)
    sample = Signal(int, int, object)
    finished = Signal(int, object)
    loaded = Signal(int, str)
    failed = Signal(int, str)
    cancelled = Signal(int)

    # Queued into the worker thread.
    _run = Signal(object, object)
    _load = Signal(int, str, str, object)

    def __init__(self, engine: Engine | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._tokens: dict[int, CancelToken] = {}
        self._thread = QThread()
        self._thread.setObjectName("engine-worker")
        self._worker = EngineWorker(engine)
        self._worker.moveToThread(self._thread)
        self._run.connect(self._worker.run_job)
        self._load.connect(self._worker.load_model)
        w = self._worker
        w.started.connect(self.started)
        w.progress.connect(self.progress)
        w.sample.connect(self.sample)
        # A job's last message: forget its token before passing the message on.
        w.finished.connect(self._relay_finished)
        w.loaded.connect(self._relay_loaded)
        w.failed.connect(self._relay_failed)
        w.cancelled.connect(self._relay_cancelled)
        self._thread.start()

    @property
    def worker(self) -> EngineWorker:
        return self._worker

    def submit(self, request: InpaintRequest) -> int:
        """Queue an inpainting job; returns its id (``request.job_id``)."""
        self._require_running()
        token = CancelToken()
        self._tokens[request.job_id] = token
        self._run.emit(request, token)
        return request.job_id

    def preload(self, model_id: str, device: str = "auto") -> int:
        """Load a model in the worker ahead of time; returns the load's job id."""
        self._require_running()
        job_id = next_job_id()
        token = CancelToken()
        self._tokens[job_id] = token
        self._load.emit(job_id, model_id, device, token)
        return job_id

    def cancel(self, job_id: int) -> None:
        """Ask a queued or running job to stop; it ends with ``cancelled`` (or had finished)."""
        token = self._tokens.get(job_id)
        if token is not None:
            token.cancel()

    def cancel_all(self) -> None:
        for token in self._tokens.values():
            token.cancel()

    @property
    def pending(self) -> list[int]:
        """Ids of jobs submitted and not yet finished, failed or cancelled."""
        return list(self._tokens)

    def is_running(self) -> bool:
        return self._thread.isRunning()

    def shutdown(self, timeout_ms: int = 60_000) -> bool:
        """Cancel every job, stop the thread and wait for it; True if it stopped in time.

        The current job stops at its next cancellation check; a single long
        OpenCV or torch call cannot be interrupted, hence the generous timeout.
        """
        self.cancel_all()
        self._thread.quit()
        stopped = self._thread.wait(timeout_ms)
        if not stopped:
            log.warning("engine worker did not stop within %d ms", timeout_ms)
        return stopped

    def _require_running(self) -> None:
        if not self._thread.isRunning():
            raise RuntimeError("the engine thread has been shut down")

    @Slot(int, object)
    def _relay_finished(self, job_id: int, result: object) -> None:
        self._tokens.pop(job_id, None)
        self.finished.emit(job_id, result)

    @Slot(int, str)
    def _relay_loaded(self, job_id: int, model_id: str) -> None:
        self._tokens.pop(job_id, None)
        self.loaded.emit(job_id, model_id)

    @Slot(int, str)
    def _relay_failed(self, job_id: int, message: str) -> None:
        self._tokens.pop(job_id, None)
        self.failed.emit(job_id, message)

    @Slot(int)
    def _relay_cancelled(self, job_id: int) -> None:
        self._tokens.pop(job_id, None)
        self.cancelled.emit(job_id)
