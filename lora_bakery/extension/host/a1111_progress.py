"""``A1111Progress``: the Progress of A1111 jobs, written into the webui's ``shared.state``.

Only ``host/`` imports ``modules.*``; the import happens at call time so this imports anywhere.
"""

from __future__ import annotations

from typing import Any


class A1111Progress:
    """``shared.state``, which drives the webui's progress bar, live preview and Interrupt button.

    ``begin`` sets ``job_count`` and ``textinfo``; ``step`` advances ``job_no`` (the bar shows
    ``job_no/job_count`` plus the sampler's fraction, reference/a1111-host.md §3); ``preview`` sets
    the live preview; the Interrupt button sets ``state.interrupted``. ``state.begin()``/``end()``
    belong to whoever holds the queue lock (``wrap_gradio_gpu_call`` or ``A1111Host.queue_lock``),
    so this sink never calls them. Stateless: one instance can serve every job.
    """

    @staticmethod
    def _state() -> Any:
        from modules import shared

        return shared.state

    def begin(self, total: int, text: str = "") -> None:
        state = self._state()
        state.job_count = max(int(total), 0)
        state.job_no = 0
        state.sampling_step = 0
        state.sampling_steps = 0
        state.textinfo = text or None

    def step(self, n: int = 1, text: str | None = None) -> None:
        state = self._state()
        state.job_no += n
        if text is not None:
            state.textinfo = text

    def preview(self, image: Any) -> None:
        self._state().assign_current_image(image)

    @property
    def interrupted(self) -> bool:
        return bool(self._state().interrupted)

    def interrupt(self) -> None:
        self._state().interrupt()

    def end(self) -> None:
        state = self._state()
        if state.job_count > 0:
            state.job_no = state.job_count
        state.sampling_step = 0
