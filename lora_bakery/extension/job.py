"""One long job's record (``Job``) and the ``Progress`` its function receives (``JobContext``).

Split from ``jobs.py`` (the queue) so each module has one job. Imports neither torch nor gradio.
"""

from __future__ import annotations

import collections
import gc
import logging
import sys
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

from lora_bakery.extension.host.base import HostError, Progress
from lora_bakery.trainer.memory import is_out_of_memory

if TYPE_CHECKING:
    from PIL import Image

logger = logging.getLogger("lora_bakery.jobs")

STATUSES = ("queued", "running", "done", "failed", "interrupted")
FINISHED = frozenset({"done", "failed", "interrupted"})


class JobInterrupted(Exception):
    """Raised by ``JobContext.check_interrupted`` so a job function can stop from deep inside.

    The queue records the job as ``"interrupted"`` (not failed); whatever the function saved
    before raising is kept.
    """


def error_message(exc: BaseException) -> str:
    """One readable line for a failed job; the traceback belongs in the log, not the UI.

    Args:
        exc (`BaseException`): what the job raised.

    Returns:
        `str`: torch out-of-memory errors get advice, ``ValueError``/``HostError`` (problems the
        user can fix) their own message, anything else ``"<Type>: <msg> (details in the console)"``.
    """
    text = str(exc).strip()
    first = text.splitlines()[0].strip() if text else ""
    if is_out_of_memory(exc):
        detail = f": {first}" if first else ""
        return f"Out of memory{detail}. Try a smaller batch size or resolution, or enable gradient checkpointing."
    if isinstance(exc, (ValueError, HostError)) and first:
        return first
    if first:
        return f"{type(exc).__name__}: {first} (details in the console)"
    return f"{type(exc).__name__} (details in the console)"


def free_memory() -> None:
    """Collect garbage and return cached CUDA blocks after a job.

    torch is looked up in ``sys.modules`` instead of imported: if nothing imported it, no job
    allocated GPU memory, and this module must import without torch.
    """
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is None:
        return
    try:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:  # noqa: BLE001 - freeing memory must never fail a job
        logger.debug("torch.cuda.empty_cache failed", exc_info=True)


def _jsonable(value: Any) -> Any:
    """``value`` if it is plain JSON data, else its ``str`` (results may be paths, dataclasses...)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


class Job:
    """One long job: its state, progress, last preview, result or error.

    Attributes:
        id (`str`): unique id (A1111 UI jobs reuse the ``task(...)`` id of the progress bar).
        name (`str`): what the user sees ("Bake my_lora", "Reg images"...).
        status (`str`): ``"queued"``, ``"running"``, ``"done"``, ``"failed"`` or ``"interrupted"``.
        current (`int`) / total (`int`): progress in the job's own units (steps, images...).
        text (`str`): the latest one-line status text.
        preview (`PIL.Image.Image`, *optional*): the latest preview image.
        preview_seq (`int`): bumped on every new preview, so pollers fetch it only when it changed.
        result (`Any`): what the job function returned.
        error (`str`, *optional*): one readable line when the job failed.
        created / started / finished (`float`): ``time.time()`` stamps (``None`` until reached).
        logs (`deque[str]`): the last 200 lines given to ``JobContext.log``.
    """

    def __init__(self, name: str, job_id: str | None = None) -> None:
        self.id = job_id or uuid.uuid4().hex[:12]
        self.name = name
        self.status = "queued"
        self.current = 0
        self.total = 0
        self.text = ""
        self.preview: Image.Image | None = None
        self.preview_seq = 0
        self.result: Any = None
        self.error: str | None = None
        self.created = time.time()
        self.started: float | None = None
        self.finished: float | None = None
        self.logs: collections.deque[str] = collections.deque(maxlen=200)
        self._interrupt = threading.Event()
        self._done = threading.Event()
        self._lock = threading.Lock()

    @property
    def interrupt_requested(self) -> bool:
        return self._interrupt.is_set()

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job finished; ``False`` if ``timeout`` passed first."""
        return self._done.wait(timeout)

    def snapshot(self) -> dict[str, Any]:
        """The job as plain JSON data (the preview image itself is fetched separately).

        Returns:
            `dict`: id, name, status, current, total, progress (0..1), text, error, result,
            created/started/finished/elapsed (seconds), preview_seq, interrupt_requested, log.
        """
        with self._lock:
            end = self.finished or time.time()
            return {
                "id": self.id,
                "name": self.name,
                "status": self.status,
                "current": self.current,
                "total": self.total,
                "progress": (min(1.0, self.current / self.total) if self.total > 0 else (1.0 if self.status == "done" else 0.0)),
                "text": self.text,
                "error": self.error,
                "result": _jsonable(self.result),
                "created": self.created,
                "started": self.started,
                "finished": self.finished,
                "elapsed": (end - self.started) if self.started else 0.0,
                "preview_seq": self.preview_seq,
                "interrupt_requested": self.interrupt_requested,
                "log": list(self.logs)[-20:],
            }

    def __repr__(self) -> str:
        return f"Job({self.id!r}, {self.name!r}, status={self.status!r}, {self.current}/{self.total})"


class JobContext:
    """What a job function receives first: a ``Progress`` that also logs and can be interrupted.

    Progress goes into the ``Job`` (for pollers) and to the sink (A1111 ``shared.state``, tqdm).
    ``interrupted`` is true when the job was interrupted through the queue/API *or* through the
    sink (A1111's Interrupt button, Ctrl-C in the CLI).

    In A1111 the sink is the webui's one ``shared.state``: call ``begin`` only once the job owns
    the host (inside ``Host.exclusive()``, or in a handler wrapped by ``A1111Host.gpu_call``), or
    it would overwrite the progress of whatever generation is running.

    Args:
        job (`Job`): the record to update.
        sink (`Progress`, *optional*): where progress is mirrored.
    """

    def __init__(self, job: Job, sink: Progress | None = None) -> None:
        self.job = job
        self.sink = sink
        self.active = False  # between begin() and end(): the sink is ours to drive

    def begin(self, total: int, text: str = "") -> None:
        with self.job._lock:
            self.job.total, self.job.current, self.job.text = int(total), 0, text
        self.active = True
        if self.sink is not None:
            self.sink.begin(total, text)

    def step(self, n: int = 1, text: str | None = None) -> None:
        with self.job._lock:
            self.job.current += n
            if text is not None:
                self.job.text = text
        if self.sink is not None:
            self.sink.step(n, text)

    def preview(self, image: Image.Image) -> None:
        with self.job._lock:
            self.job.preview = image
            self.job.preview_seq += 1
        if self.sink is not None:
            self.sink.preview(image)

    @property
    def interrupted(self) -> bool:
        if self.job.interrupt_requested:
            return True
        if self.sink is not None and self.sink.interrupted:
            self.job._interrupt.set()
            return True
        return False

    def check_interrupted(self) -> None:
        """Raise ``JobInterrupted`` if the job should stop (for code far from the loop)."""
        if self.interrupted:
            raise JobInterrupted(self.job.name)

    def end(self) -> None:
        if self.sink is not None and self.active:
            self.sink.end()
        self.active = False

    def log(self, msg: str) -> None:
        """A line for the console and the job's log (the UI shows the last ones)."""
        logger.info("[%s] %s", self.job.name, msg)
        with self.job._lock:
            self.job.logs.append(msg)

    def request_interrupt(self) -> None:
        """Ask the job to stop; forwarded to the sink only while this job drives it."""
        self.job._interrupt.set()
        interrupt = getattr(self.sink, "interrupt", None)
        if self.active and callable(interrupt):
            interrupt()
