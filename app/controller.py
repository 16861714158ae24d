"""Runs inpainting jobs for the window: requests out, samples and results in.

Owns the :class:`app.worker.EngineThread`. Every event from the worker
(:class:`engine.runner.JobEvent`) carries a job id; events about jobs other than the
current one are ignored (a job the user cancelled, or one for a photo that has been
closed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from app.document import Document
from app.history import PhotoEdit
from app.worker import EngineThread
from engine.errors import EngineError
from engine.jobs import InpaintRequest, InpaintResult, Progress
from engine.registry import get_spec
from engine.runner import JobEvent


@dataclass
class _Job:
    request: InpaintRequest
    doc: Document
    label: str
    step: PhotoEdit | None = None
    samples: list[np.ndarray] = field(default_factory=list)


class InpaintController(QObject):
    """Sends the document's photo and mask to the engine and applies what comes back.

    Signals:
        busyChanged(bool): a job started or ended.
        progressChanged(percent, message): percent is -1 while the amount is unknown.
        sampleArrived(index, image): a sample of the current job, as it arrives.
        jobFinished(InpaintResult)
        jobFailed(message)
        jobCancelled()
        modelLoaded(model_id)
    """

    busyChanged = Signal(bool)
    progressChanged = Signal(int, str)
    sampleArrived = Signal(int, object)
    jobFinished = Signal(object)
    jobFailed = Signal(str)
    jobCancelled = Signal()
    modelLoaded = Signal(str)
    loadFailed = Signal(str)

    def __init__(self, engine_thread: EngineThread | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.engine = engine_thread if engine_thread is not None else EngineThread(parent=self)
        self._job: _Job | None = None
        self._load_id: int | None = None
        self._last_step: PhotoEdit | None = None
        self._last_doc: Document | None = None
        self.engine.event.connect(self._on_event)

    @property
    def busy(self) -> bool:
        return self._job is not None

    @property
    def job_id(self) -> int | None:
        return self._job.request.job_id if self._job else None

    @property
    def step(self) -> PhotoEdit | None:
        """The history step holding the current (or last) job's applied sample."""
        return self._last_step

    def start(
        self,
        doc: Document,
        model_id: str,
        samples: int = 1,
        strategy: str = "auto",
        texture: bool = False,
    ) -> int:
        """Inpaint ``doc``'s mask with ``model_id``; returns the job id.

        Raises :class:`EngineError` (e.g. an empty mask) and RuntimeError when
        a job is already running.
        """
        if self._job is not None:
            raise RuntimeError("a job is already running")
        if not doc.mask.any():
            raise EngineError("Paint over what to remove first: the mask is empty.")
        spec = get_spec(model_id)
        request = InpaintRequest(
            image=doc.photo,
            mask=doc.mask,
            model_id=model_id,
            samples=samples if spec.multi_sample else 1,
            strategy=strategy,
            texture=texture and spec.native_size is not None,
        )
        self._job = _Job(request, doc, f"Inpaint with {spec.label}")
        self._last_step = None
        self.engine.submit(request)
        self.busyChanged.emit(True)
        self.progressChanged.emit(0, f"Inpainting with {spec.label}…")
        return request.job_id

    def cancel(self) -> None:
        """Ask the current job to stop (it ends with ``jobCancelled``)."""
        if self._job is not None:
            self.engine.cancel(self._job.request.job_id)
            self.progressChanged.emit(-1, "Cancelling…")

    def preload(self, model_id: str) -> None:
        """Load a model in the worker now, so the first job with it starts at once."""
        if self._load_id is not None:
            self.engine.cancel(self._load_id)
        self._load_id = self.engine.preload(model_id)

    def choose_sample(self, index: int) -> bool:
        """Apply sample ``index`` of the last job instead of the one applied; False if stale."""
        step = self._last_step
        if step is None or not 0 <= index < len(step.samples):
            return False
        doc = self._last_doc
        return doc is not None and doc.replace_result(step, step.samples[index])

    def shutdown(self) -> bool:
        """Cancel all jobs and join the worker thread (on window close)."""
        self._job = None
        return self.engine.shutdown()

    # -- worker events --------------------------------------------------------------------

    def _on_event(self, event: JobEvent) -> None:
        job_id, kind = event.job_id, event.kind
        if kind == "progress":
            self._on_progress(job_id, event.progress)
        elif kind == "sample":
            self._on_sample(job_id, event.index, event.image)
        elif kind == "finished":
            self._on_finished(job_id, event.result)
        elif kind == "failed":
            self._on_failed(job_id, event.message)
        elif kind == "cancelled":
            self._on_cancelled(job_id)
        elif kind == "loaded":
            self._on_loaded(job_id, event.model_id)

    def _current(self, job_id: int) -> _Job | None:
        job = self._job
        return job if job is not None and job.request.job_id == job_id else None

    def _on_progress(self, job_id: int, progress: Progress) -> None:
        if job_id == self._load_id:
            if self._job is None:
                self.progressChanged.emit(-1 if progress.fraction < 1 else 100, progress.message)
        elif self._current(job_id) is not None:
            self.progressChanged.emit(round(100 * progress.fraction), progress.message)

    def _on_sample(self, job_id: int, index: int, image: np.ndarray) -> None:
        job = self._current(job_id)
        if job is None:
            return
        if job.step is None:
            job.step = job.doc.apply_result(job.request.image, job.request.mask, image, job.label)
            self._last_step, self._last_doc = job.step, job.doc
        else:
            job.step.samples.append(image)
        # Thumbnails etc. in the next turn of the event loop: keep each turn short.
        QTimer.singleShot(0, self, lambda: self.sampleArrived.emit(index, image))

    def _on_finished(self, job_id: int, result: InpaintResult) -> None:
        if self._current(job_id) is None:
            return
        self._job = None
        # After the deferred sampleArrived signals (zero timers fire in order).
        QTimer.singleShot(0, self, lambda: self._finish(result))

    def _finish(self, result: InpaintResult) -> None:
        self.busyChanged.emit(False)
        self.jobFinished.emit(result)

    def _on_failed(self, job_id: int, message: str) -> None:
        if job_id == self._load_id:
            self._load_id = None
            self.loadFailed.emit(message)
            return
        if self._current(job_id) is None:
            return
        self._job = None
        self.busyChanged.emit(False)
        self.jobFailed.emit(message)

    def _on_cancelled(self, job_id: int) -> None:
        if job_id == self._load_id:
            self._load_id = None
            return
        if self._current(job_id) is None:
            return
        self._job = None
        self.busyChanged.emit(False)
        self.jobCancelled.emit()

    def _on_loaded(self, job_id: int, model_id: str) -> None:
        if job_id == self._load_id:
            self._load_id = None
            self.modelLoaded.emit(model_id)
