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
    # The gallery the job's samples go to (a job for several samples); None: the sample
    # is applied as it arrives.
    gallery: Gallery | None = None


@dataclass
class Gallery:
    """Samples of one photo and mask, shown before one is used (the pluralistic gallery).

    ``image`` and ``mask`` are the request's (the photo as it was when the first job of the
    gallery started); ``seeds[i]`` recreates ``samples[i]`` (``--seed S --samples 1``).
    """

    doc: Document
    image: np.ndarray
    mask: np.ndarray
    model_id: str
    strategy: str
    texture: bool
    label: str
    samples: list[np.ndarray] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)

    @property
    def next_seed(self) -> int:
        return max(self.seeds) + 1 if self.seeds else 0

    def over_photo(self, index: int) -> np.ndarray:
        """Sample ``index``'s hole over the document's photo as it is now (anything done to
        the photo since the gallery started stays)."""
        return np.where(self.mask[..., None], self.samples[index], self.doc.photo)


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
        self.gallery: Gallery | None = None
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
        samples = samples if spec.multi_sample else 1
        texture = texture and spec.native_size is not None
        gallery = None
        if samples > 1:
            # Several fills to choose from: none is applied until the user uses one.
            gallery = Gallery(
                doc, doc.photo, doc.mask.copy(), model_id, strategy, texture,
                f"Inpaint with {spec.label}",
            )  # fmt: skip
        return self._submit(doc, model_id, samples, strategy, texture, gallery, seed=0)

    def more(self, samples: int) -> int:
        """Draw ``samples`` new samples (the seeds after the gallery's last) into the gallery;
        returns the job id. Raises RuntimeError without a gallery or while a job runs."""
        gallery = self.gallery
        if gallery is None:
            raise RuntimeError("no gallery to add samples to")
        if self._job is not None:
            raise RuntimeError("a job is already running")
        return self._submit(
            gallery.doc, gallery.model_id, samples, gallery.strategy, gallery.texture, gallery,
            seed=gallery.next_seed,
        )  # fmt: skip

    def _submit(
        self,
        doc: Document,
        model_id: str,
        samples: int,
        strategy: str,
        texture: bool,
        gallery: Gallery | None,
        seed: int,
    ) -> int:
        spec = get_spec(model_id)
        request = InpaintRequest(
            image=gallery.image if gallery else doc.photo,
            mask=gallery.mask if gallery else doc.mask,
            model_id=model_id,
            samples=samples,
            seed=seed,
            strategy=strategy,
            texture=texture,
        )
        self._job = _Job(request, doc, f"Inpaint with {spec.label}", gallery=gallery)
        self.gallery = gallery
        self._last_step = None
        self.engine.submit(request)
        self.busyChanged.emit(True)
        self.progressChanged.emit(0, f"Inpainting with {spec.label}…")
        return request.job_id

    def use_sample(self, index: int) -> PhotoEdit | None:
        """Apply gallery sample ``index`` to its photo as one undoable step (which also clears
        the hole from the mask); None without that sample."""
        gallery = self.gallery
        if gallery is None or not 0 <= index < len(gallery.samples):
            return None
        label = f"{gallery.label} (seed {gallery.seeds[index]})"
        doc = gallery.doc
        step = doc.apply_result(doc.photo, gallery.mask, gallery.over_photo(index), label)
        self._last_step, self._last_doc = step, doc
        return step

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
        if job.gallery is not None:
            gallery = job.gallery
            gallery.samples.append(image)
            gallery.seeds.append(job.request.seed + index)
            at = len(gallery.samples) - 1
            QTimer.singleShot(0, self, lambda: self.sampleArrived.emit(at, image))
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
