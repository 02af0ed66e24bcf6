"""The CLI's progress sink: a tqdm bar, and Ctrl-C asks the running job to stop."""

from __future__ import annotations

import signal
import sys
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL import Image


class TqdmSink:
    """The CLI's progress sink: a tqdm bar, and Ctrl-C asks the job to stop instead of killing it.

    The first Ctrl-C between ``begin`` and ``end`` sets ``interrupted`` (the job saves what it
    has and returns); a second one raises ``KeyboardInterrupt`` as usual. The handler is only
    installed from the main thread (signals cannot be set elsewhere) and removed in ``end``.

    Args:
        desc (`str`, defaults to ``""``): bar label when ``begin`` gives no text.
        catch_sigint (`bool`, defaults to `True`): install the Ctrl-C handler.
        file (*optional*): stream for the bar (tqdm's default is stderr).
    """

    def __init__(self, desc: str = "", catch_sigint: bool = True, file: Any = None) -> None:
        self.desc = desc
        self.catch_sigint = catch_sigint
        self.file = file
        self.bar: Any = None
        self._interrupted = False
        self._previous_handler: Any = None

    def begin(self, total: int, text: str = "") -> None:
        from tqdm.auto import tqdm

        if self.bar is not None:
            self.bar.close()
        self.bar = tqdm(total=total, desc=text or self.desc, file=self.file, dynamic_ncols=True)
        if self.catch_sigint and threading.current_thread() is threading.main_thread() and self._previous_handler is None:
            self._previous_handler = signal.signal(signal.SIGINT, self._on_sigint)

    def _on_sigint(self, signum: int, frame: Any) -> None:
        if self._interrupted:
            raise KeyboardInterrupt
        self._interrupted = True
        msg = "Interrupting after the current step (Ctrl-C again to abort)..."
        if self.bar is not None:
            self.bar.write(msg)
        else:
            print(msg, file=sys.stderr)

    def step(self, n: int = 1, text: str | None = None) -> None:
        if self.bar is None:
            return
        if text:
            self.bar.set_postfix_str(text, refresh=False)
        self.bar.update(n)

    def log(self, text: str) -> None:
        """A message line that does not break the progress bar."""
        if self.bar is not None:
            self.bar.write(text, file=self.file)
        else:
            print(text, file=self.file or sys.stderr)

    def preview(self, image: Image.Image) -> None:
        pass  # a terminal has nowhere to show it; the job saves previews to disk itself

    @property
    def interrupted(self) -> bool:
        return self._interrupted

    def interrupt(self) -> None:
        self._interrupted = True

    def end(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self._previous_handler is not None:
            signal.signal(signal.SIGINT, self._previous_handler)
            self._previous_handler = None
