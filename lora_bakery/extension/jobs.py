"""One queue for long jobs (bake, LECO, reg images, compare grids, tagging).

Every long job runs through a ``JobQueue`` and reports through a ``JobContext``. The context is
the ``Progress`` of ``host/base.py`` plus ``log``: it records progress in the ``Job`` (polled by the
UI and the ``/bakery/v1/jobs`` API) and forwards it to a *progress sink*, another ``Progress``:
``shared.state`` inside A1111 (``host/a1111.py``), a tqdm bar in the CLI (``TqdmSink``), nothing
in the standalone app.

Two ways to run:

- ``submit``: queued, one at a time on a worker thread (standalone app, API calls). The job
  function takes the host's lock itself through ``Host.exclusive()``.
- ``run``: synchronously in the caller's thread. A1111 UI handlers already hold the webui's queue
  lock (``wrap_gradio_gpu_call``) and the CLI has nothing to wait for.

A failed job never shows a traceback to the user: ``error_message`` turns the exception into one
readable line and the traceback goes to the log. This module imports neither torch nor gradio.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from typing import Any

from lora_bakery.extension.host.base import Progress
from lora_bakery.extension.job import (
    FINISHED,
    STATUSES,
    Job,
    JobContext,
    JobInterrupted,
    error_message,
    free_memory,
    logger,
)
from lora_bakery.extension.tqdm_sink import TqdmSink

__all__ = [
    "FINISHED", "STATUSES", "Job", "JobContext", "JobInterrupted", "JobQueue", "TqdmSink",
    "default_queue", "error_message", "free_memory",
]


JobFn = Callable[..., Any]


class JobQueue:
    """Runs long jobs one at a time and remembers the recent ones.

    Args:
        sink_factory (`Callable[[], Progress]`, *optional*): makes the progress sink for each job
            (``host.a1111.A1111Progress``, ``TqdmSink``); ``None`` means the Job record only.
        keep (`int`, defaults to 50): finished jobs kept for ``list``/``get``.
    """

    def __init__(self, sink_factory: Callable[[], Progress] | None = None, keep: int = 50) -> None:
        self.sink_factory = sink_factory
        self.keep = keep
        self._jobs: collections.OrderedDict[str, Job] = collections.OrderedDict()
        self._contexts: dict[str, JobContext] = {}
        self._pending: collections.deque[tuple[Job, JobFn, tuple, dict]] = collections.deque()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._worker: threading.Thread | None = None
        self._current: Job | None = None

    # -- public API -------------------------------------------------------------------------

    def submit(self, name: str, fn: JobFn, /, *args: Any, exclusive: bool = True, job_id: str | None = None, **kwargs: Any) -> Job:
        """Queue ``fn(ctx, *args, **kwargs)`` and return its Job at once.

        Args:
            name (`str`): shown to the user.
            fn (`Callable`): the job; receives the ``JobContext`` first.
            exclusive (`bool`, defaults to `True`): run on the single worker, one job at a time
                (anything touching the model/GPU). ``False`` starts its own thread now (light
                work such as dataset scans that must not wait behind a bake).
            job_id (`str`, *optional*): use this id (e.g. the A1111 ``task(...)`` id).

        Returns:
            `Job`: status ``"queued"`` until the worker starts it.
        """
        job = self._register(name, job_id)
        if not exclusive:
            thread = threading.Thread(target=self._execute, args=(job, fn, args, kwargs), name=f"bakery-job-{job.id}", daemon=True)
            thread.start()
            return job
        with self._wake:
            self._pending.append((job, fn, args, kwargs))
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._work, name="bakery-jobs", daemon=True)
                self._worker.start()
            self._wake.notify()
        return job

    def run(self, name: str, fn: JobFn, /, *args: Any, job_id: str | None = None, **kwargs: Any) -> Job:
        """Run ``fn(ctx, *args, **kwargs)`` now, in this thread, and return its finished Job.

        Never raises for a failing job: read ``job.status`` / ``job.error``. Ctrl-C
        (``KeyboardInterrupt``) ends the job as ``"interrupted"``.

        Args:
            name (`str`): shown to the user.
            fn (`Callable`): the job; receives the ``JobContext`` first.
            job_id (`str`, *optional*): use this id (e.g. the A1111 ``task(...)`` id).

        Returns:
            `Job`: finished (``done``, ``failed`` or ``interrupted``).
        """
        job = self._register(name, job_id)
        with self._lock:
            previous, self._current = self._current, job
        try:
            self._execute(job, fn, args, kwargs)
        finally:
            with self._lock:
                self._current = previous
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def current(self) -> Job | None:
        """The exclusive job running now (queued by ``submit`` or started by ``run``), if any."""
        with self._lock:
            return self._current

    def list(self) -> list[Job]:
        """All remembered jobs, oldest first."""
        with self._lock:
            return list(self._jobs.values())

    def interrupt(self, job_id: str | None = None) -> bool:
        """Ask a job to stop (the running one when ``job_id`` is ``None``).

        A queued job never starts; a running one sees ``ctx.interrupted`` and stops at its next
        check, keeping what it saved.

        Returns:
            `bool`: ``False`` if there is no such (unfinished) job.
        """
        with self._lock:
            job = self._jobs.get(job_id) if job_id is not None else self._current
            ctx = self._contexts.get(job.id) if job is not None else None
        if job is None or job.is_finished:
            return False
        if ctx is not None:
            ctx.request_interrupt()
        else:
            job._interrupt.set()
        return True

    # -- internals --------------------------------------------------------------------------

    def _register(self, name: str, job_id: str | None) -> Job:
        job = Job(name, job_id)
        with self._lock:
            self._jobs[job.id] = job
            self._jobs.move_to_end(job.id)
        return job

    def _prune(self) -> None:
        with self._lock:
            finished = [j.id for j in self._jobs.values() if j.is_finished]
            for old in finished[: max(0, len(finished) - self.keep)]:
                del self._jobs[old]

    def _work(self) -> None:
        while True:
            with self._wake:
                while not self._pending:
                    if not self._wake.wait(timeout=30):
                        if not self._pending:  # idle: let the thread end, submit() restarts it
                            self._worker = None
                            return
                job, fn, args, kwargs = self._pending.popleft()
                self._current = job
            try:
                self._execute(job, fn, args, kwargs)
            finally:
                with self._lock:
                    self._current = None

    def _execute(self, job: Job, fn: JobFn, args: tuple, kwargs: dict) -> None:
        if job.interrupt_requested:  # interrupted while queued: never start
            self._finish(job, "interrupted")
            return
        sink = self.sink_factory() if self.sink_factory is not None else None
        ctx = JobContext(job, sink)
        with self._lock:
            self._contexts[job.id] = ctx
        with job._lock:
            job.status, job.started = "running", time.time()
        status, result, error = "done", None, None
        try:
            result = fn(ctx, *args, **kwargs)
            if ctx.interrupted:
                status = "interrupted"
        except (JobInterrupted, KeyboardInterrupt):
            status = "interrupted"
        except BaseException as exc:  # noqa: BLE001 - every failure becomes a message
            if isinstance(exc, SystemExit):
                raise
            logger.exception("LoRA Bakery job %r failed", job.name)
            status, error = "failed", error_message(exc)
        finally:
            ctx.end()
            with self._lock:
                self._contexts.pop(job.id, None)
            free_memory()
        job.result = result
        job.error = error
        self._finish(job, status)

    def _finish(self, job: Job, status: str) -> None:
        with job._lock:
            job.status, job.finished = status, time.time()
            if job.started is None:
                job.started = job.finished
        logger.info("LoRA Bakery job %r: %s%s", job.name, status, f" ({job.error})" if job.error else "")
        self._prune()
        job._done.set()


_default_queue: JobQueue | None = None
_default_lock = threading.Lock()


def default_queue(sink_factory: Callable[[], Progress] | None = None) -> JobQueue:
    """The process-wide queue (created on first call).

    A1111 re-executes extension scripts on "Reload UI"; keeping the queue here means a bake that
    is still running stays visible to the new UI and API instead of living in a forgotten queue.

    Args:
        sink_factory (`Callable[[], Progress]`, *optional*): used when the queue is created, and
            set on an existing queue when given.

    Returns:
        `JobQueue`: the same object on every call.
    """
    global _default_queue
    with _default_lock:
        if _default_queue is None:
            _default_queue = JobQueue(sink_factory=sink_factory)
        elif sink_factory is not None:
            _default_queue.sink_factory = sink_factory
        return _default_queue
