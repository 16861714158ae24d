"""The app's engine thread: one long-lived ``QThread`` that drives :class:`engine.runner.JobRunner`.

The worker thread owns the engine, hence the compute device and the loaded models. The
GUI thread talks to it through :class:`EngineThread`: it submits jobs (an
:class:`~engine.jobs.InpaintRequest` carries its job id) and model loads, and receives one
signal, ``event``, carrying a :class:`~engine.runner.JobEvent`: the only message that
crosses the thread boundary. Arrays cross as read-only numpy arrays.

Cancelling sets the job's :class:`~engine.jobs.CancelToken`; the engine checks it between
stages, crops and samples. The thread is never terminated: :meth:`EngineThread.shutdown`
cancels everything and joins it.
"""

from __future__ import annotations

import logging
import os
import threading

from PySide6.QtCore import QObject, QThread, Signal, Slot

from engine.jobs import CancelToken, InpaintRequest, next_job_id
from engine.pipeline import Engine
from engine.runner import JobEvent, JobRunner

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
    """Lives in the worker thread and runs one job at a time, in submission order."""

    event = Signal(object)

    def __init__(self, engine: Engine | None = None) -> None:
        super().__init__()
        self.runner = JobRunner(engine)
        # Python and OS ids of the thread that runs the jobs (for tests and diagnostics).
        self.thread_id: int | None = None
        self.native_thread_id: int | None = None

    @property
    def engine(self) -> Engine:
        return self.runner.engine

    def _enter_thread(self) -> None:
        if self.thread_id != threading.get_ident():
            self.thread_id = threading.get_ident()
            self.native_thread_id = threading.get_native_id()
            if self.thread_id != threading.main_thread().ident:
                _lower_thread_priority()

    @Slot(object, object)
    def run_job(self, request: InpaintRequest, token: CancelToken) -> None:
        self._enter_thread()
        self.runner.run_job(request, token, self.event.emit)

    @Slot(int, str, str, object)
    def load_model(self, job_id: int, model_id: str, device: str, token: CancelToken) -> None:
        self._enter_thread()
        self.runner.load_model(job_id, model_id, device, token, self.event.emit)


class EngineThread(QObject):
    """The GUI side's handle on the worker thread.

    Re-emits the worker's events in the thread that created it (the GUI thread). Create it
    once per window; call :meth:`shutdown` before the window goes away.

    Args:
        engine: the engine to use (a new one by default).
        parent: Qt parent.
    """

    event = Signal(object)

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
        self._worker.event.connect(self._relay)
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

    @Slot(object)
    def _relay(self, event: JobEvent) -> None:
        if event.terminal:  # a job's last message: forget its token before passing it on
            self._tokens.pop(event.job_id, None)
        self.event.emit(event)
