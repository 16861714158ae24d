"""The engine's job runner: runs jobs and model loads and reports each step as one event.

Plain Python, no Qt: the app's worker thread (:mod:`app.worker`) drives it and carries its
:class:`JobEvent` values across the thread boundary, the only message type that crosses
it. Every job ends with exactly one terminal event (``finished``, ``loaded``, ``failed``
or ``cancelled``).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from engine.errors import EngineError, JobCancelled
from engine.jobs import CancelToken, InpaintRequest, InpaintResult, Progress
from engine.pipeline import Engine
from engine.registry import get_spec

log = logging.getLogger(__name__)

#: What a :class:`JobEvent` reports; the last four end the job.
EVENT_KINDS = ("started", "progress", "sample", "finished", "loaded", "failed", "cancelled")
TERMINAL_KINDS = frozenset(EVENT_KINDS[3:])


@dataclass(frozen=True)
class JobEvent:
    """One step of a job, as it crosses from the worker to the GUI.

    Attributes:
        job_id: the job it is about.
        kind: one of :data:`EVENT_KINDS`.
        progress: the tick of a ``progress`` event.
        index, image: a ``sample`` event's sample number and read-only image.
        result: a ``finished`` job's result.
        model_id: the model a ``loaded`` event has loaded.
        message: a ``failed`` job's readable one-line reason.
    """

    job_id: int
    kind: str
    progress: Progress | None = None
    index: int | None = None
    image: np.ndarray | None = None
    result: InpaintResult | None = None
    model_id: str | None = None
    message: str = ""

    @property
    def terminal(self) -> bool:
        return self.kind in TERMINAL_KINDS


Emit = Callable[[JobEvent], None]


class JobRunner:
    """Runs one job at a time on its :class:`Engine` (created on first use, i.e. in the
    thread that runs the jobs, like the models it loads)."""

    def __init__(self, engine: Engine | None = None) -> None:
        self._engine = engine

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = Engine()
        return self._engine

    def run_job(self, request: InpaintRequest, token: CancelToken, emit: Emit) -> None:
        job_id = request.job_id

        def work() -> None:
            result = self.engine.run(
                request,
                token,
                lambda p: emit(JobEvent(job_id, "progress", progress=p)),
                lambda i, image: emit(JobEvent(job_id, "sample", index=i, image=image)),
            )
            emit(JobEvent(job_id, "finished", result=result))

        self._guarded(job_id, token, emit, work)

    def load_model(
        self, job_id: int, model_id: str, device: str, token: CancelToken, emit: Emit
    ) -> None:
        def work() -> None:
            label = get_spec(model_id).label
            emit(
                JobEvent(job_id, "progress", Progress(job_id, "loading", 0.0, f"Loading {label}…"))
            )
            self.engine.load(model_id, device)
            emit(
                JobEvent(job_id, "progress", Progress(job_id, "loading", 1.0, f"{label} is ready"))
            )
            emit(JobEvent(job_id, "loaded", model_id=model_id))

        self._guarded(job_id, token, emit, work)

    @staticmethod
    def _guarded(job_id: int, token: CancelToken, emit: Emit, work: Callable[[], None]) -> None:
        if token.cancelled:
            emit(JobEvent(job_id, "cancelled"))
            return
        emit(JobEvent(job_id, "started"))
        try:
            work()
        except JobCancelled:
            emit(JobEvent(job_id, "cancelled"))
        except EngineError as exc:
            emit(JobEvent(job_id, "failed", message=str(exc)))
        except Exception as exc:  # a bug: report it and keep the thread alive
            log.error("job %s failed:\n%s", job_id, traceback.format_exc())
            emit(
                JobEvent(
                    job_id, "failed", message=f"Unexpected error ({type(exc).__name__}): {exc}"
                )
            )
