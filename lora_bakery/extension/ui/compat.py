"""One code base for gradio 3.41.2 (A1111 1.10) and gradio 4.x (Forge 4.40, standalone 4.44).

The breaking changes that took down other extensions on Forge (peers.md): ``Component.update()``
and ``gr.Box`` are gone in 4.x, ``gr.Timer`` is 4.40+ only, ``Blocks.queue()`` lost
``concurrency_count``. The tabs therefore use only what exists in both, and the few calls whose
signatures differ go through the helpers below (feature-detected by signature; the one
version check, ``GRADIO_MAJOR`` in ``job_progress``, works around a gradio 3 bug).

Rules for tab code:
- return new values or ``gr.update(...)`` from handlers; never ``component.update(...)``;
- ``gr.Group`` instead of ``gr.Box``; ``gr.Tab`` (an alias of ``gr.TabItem`` in both);
- follow a job from the handler that started it, as a generator (``follow_job``); avoid ``every=``
  on gradio 3 (see ``job_progress``) and ``gr.Timer`` (4.40+ only);
- pass optional kwargs that only one version knows (``show_copy_button``...) through ``kwargs_for``.
"""

from __future__ import annotations

import functools
import html
import inspect
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import gradio as gr

from lora_bakery.extension.ui.context import tab_elem_id

logger = logging.getLogger(__name__)

GRADIO_MAJOR: int = int(gr.__version__.split(".")[0])

#: Fonts the browser already has: gradio's default themes pull Google Fonts, which fail (and log
#: console errors) when the network is closed, as it is on many training boxes.
SYSTEM_FONTS = ("ui-sans-serif", "system-ui", "sans-serif")
SYSTEM_MONO_FONTS = ("ui-monospace", "Consolas", "monospace")

#: Put before messages from failed handlers. Words, not emoji: minimal Linux boxes (and headless
#: Chromium in CI) often have no emoji font and show empty squares.
ERROR_PREFIX = "**Error:** "


def kwargs_for(callable_: Callable[..., Any], **kwargs: Any) -> dict[str, Any]:
    """Keep only the keyword arguments ``callable_`` declares (gradio 3 silently drops or warns on others).

    Args:
        callable_ (`Callable`): a component class or function, e.g. ``gr.Textbox``.
        **kwargs: candidate keyword arguments.

    Returns:
        `dict`: the subset ``callable_`` accepts by name.
    """
    target = callable_.__init__ if inspect.isclass(callable_) else callable_
    params = inspect.signature(target).parameters
    return {k: v for k, v in kwargs.items() if k in params}


def tab(label: str, key: str) -> Any:
    """A sub-tab with id ``key`` and elem_id ``lora_bakery_tab_<key>`` (use as a context manager)."""
    return gr.Tab(label, id=key, elem_id=tab_elem_id(key))


def ensure_event_loop() -> None:
    """Give this thread an asyncio event loop if it has none, before ``Blocks.queue()``.

    gradio 4's ``Queue`` creates an ``asyncio.Lock`` at construction and silently stores ``None``
    when ``asyncio.get_event_loop()`` raises, which it does after any ``asyncio.run()`` in the same
    thread (that resets the loop). Every later queued event then fails in ``Queue.push``.
    """
    import asyncio
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            asyncio.get_event_loop()
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())


def queue_kwargs(concurrency: int) -> dict[str, Any]:
    """Arguments for ``Blocks.queue()`` giving ``concurrency`` parallel handlers in either version.

    gradio 3 takes ``concurrency_count`` (default 1: a poll would wait behind any handler); gradio
    4 deprecated it for ``default_concurrency_limit``.

    Args:
        concurrency (`int`): handlers that may run at once.

    Returns:
        `dict`: keyword arguments for ``demo.queue(**...)``.
    """
    params = inspect.signature(gr.Blocks.queue).parameters
    if "default_concurrency_limit" in params:
        return {"default_concurrency_limit": concurrency}
    if "concurrency_count" in params:
        return {"concurrency_count": concurrency}
    return {}


def offline_theme() -> Any:
    """gradio's default theme with system fonts, so the page loads nothing from the internet."""
    return gr.themes.Default(font=SYSTEM_FONTS, font_mono=SYSTEM_MONO_FONTS)


def error_message(exc: BaseException) -> str:
    """A one-line, user-readable message for ``exc`` (never a traceback): the job queue's wording."""
    from lora_bakery.extension.jobs import error_message as job_error_message

    return job_error_message(exc)


def guarded(
    outputs: int = 1, prefix: str = ERROR_PREFIX
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a gradio handler so an exception becomes a message in its first output.

    The traceback goes to the log; the UI gets ``prefix + error_message(exc)``. Other outputs are
    left unchanged with ``gr.update()``.

    Args:
        outputs (`int`, defaults to 1): how many outputs the handler is wired to.
        prefix (`str`, defaults to ``ERROR_PREFIX``): put before the message.

    Returns:
        `Callable`: the decorator.
    """

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - a handler must never show a traceback
                logger.exception("LoRA Bakery: %s failed", getattr(fn, "__name__", "handler"))
                message = prefix + error_message(exc)
                if outputs == 1:
                    return message
                return (message,) + tuple(gr.update() for _ in range(outputs - 1))

        return wrapper

    return decorate


def _get(snapshot: Any, *names: str, default: Any = None) -> Any:
    """First present field among ``names`` of a Mapping or an object (job snapshots may be either)."""
    for name in names:
        if isinstance(snapshot, Mapping):
            if snapshot.get(name) is not None:
                return snapshot[name]
        elif getattr(snapshot, name, None) is not None:
            return getattr(snapshot, name)
    return default


def progress_html(snapshot: Any) -> str:
    """Render a job snapshot as a small progress bar.

    Args:
        snapshot (`Mapping | object | None`): ``Job.snapshot()`` of ``extension/jobs.py`` (``status``,
            ``current``, ``total``, ``text``, ``error``, ``name``), or any Mapping/object with those
            fields (``state``/``done``/``message`` are accepted as aliases).

    Returns:
        `str`: HTML (escaped text, inline styles, so it looks the same in A1111 and standalone).
    """
    if snapshot is None:
        return "<div class='lora-bakery-progress'>No job running.</div>"
    raw_state = _get(snapshot, "status", "state", default="")
    state = str(getattr(raw_state, "value", raw_state)).lower()  # enums show their value
    done = float(_get(snapshot, "current", "done", default=0) or 0)
    total = float(_get(snapshot, "total", default=0) or 0)
    text = str(_get(snapshot, "error", "text", "message", default="") or "")
    name = str(_get(snapshot, "name", default="") or "")
    pct = max(0.0, min(100.0, 100.0 * done / total)) if total > 0 else 0.0
    counts = f"{int(done)}/{int(total)}" if total > 0 else ""
    color = {"failed": "#d33", "error": "#d33", "interrupted": "#c80"}.get(state, "#2a7")
    head = " · ".join(p for p in (name, state, counts) if p)
    return (
        "<div class='lora-bakery-progress'>"
        f"<div>{html.escape(head)}</div>"
        "<div style='background:#8883;border-radius:4px;height:8px;overflow:hidden'>"
        f"<div style='width:{pct:.1f}%;height:8px;background:{color}'></div></div>"
        f"<div>{html.escape(text)}</div></div>"
    )


#: Job statuses after which ``follow_job`` stops (``extension/jobs.py``'s ``FINISHED``).
FINISHED_STATUSES = frozenset({"done", "failed", "interrupted"})


def follow_job(
    snapshot_fn: Callable[[], Any], every: float = 1.0, timeout: float | None = None
) -> Iterator[str]:
    """Yield ``progress_html(snapshot_fn())`` every ``every`` seconds until the job has finished.

    Meant to be ``yield from``-ed by the handler that submitted the job, so the progress bar
    lives exactly as long as the job: a generator handler works the same in gradio 3.41 and 4.x
    (both need the queue, which A1111 and ``app.py`` enable) and, unlike ``every=``, leaves
    nothing running afterwards::

        def start(...):
            job = ctx.jobs.submit("Bake", bake_fn, ...)
            yield from compat.follow_job(job.snapshot)

    Args:
        snapshot_fn (`Callable[[], Any]`): returns the job snapshot (``Job.snapshot``), or ``None``.
        every (`float`, defaults to 1.0): seconds between updates.
        timeout (`float`, *optional*): stop following after this many seconds (the job goes on).

    Yields:
        `str`: progress HTML; the last one shows the finished state (or the error).
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        try:
            snapshot = snapshot_fn()
        except Exception as exc:  # noqa: BLE001 - shown, not raised
            logger.exception("LoRA Bakery: job snapshot failed")
            yield f"<div class='lora-bakery-progress'>Error: {html.escape(error_message(exc))}</div>"
            return
        yield progress_html(snapshot)
        raw = _get(snapshot, "status", "state", default="") if snapshot is not None else "done"
        if str(getattr(raw, "value", raw)).lower() in FINISHED_STATUSES:
            return
        if deadline is not None and time.monotonic() >= deadline:
            return
        time.sleep(every)


def job_progress(snapshot_fn: Callable[[], Any], every: float = 1.0, elem_id: str | None = None) -> Any:
    """An HTML block that re-renders ``snapshot_fn()`` every ``every`` seconds while the page is open.

    Uses a callable ``value`` with ``every=`` (needs the queue). Prefer ``follow_job`` where a
    handler starts the job. Caveat, measured on gradio 3.41.2: each page view keeps a websocket
    handler alive for the life of the server (its loop checks ``application_state``, which a
    client disconnect never changes), so ``demo.close()`` -- A1111's "Reload UI" -- waits
    forever once any browser has opened the page. gradio 4.x (a ``gr.Timer`` underneath) is
    fine. So on gradio 3 this renders once and does not poll; use it for status that may be
    refreshed by other events. Errors in ``snapshot_fn`` are shown, not raised.

    Args:
        snapshot_fn (`Callable[[], Any]`): returns the job snapshot to show (or ``None``).
        every (`float`, defaults to 1.0): seconds between polls.
        elem_id (`str`, *optional*): DOM id.

    Returns:
        `gr.HTML`: the component (already placed in the open Blocks context).
    """

    @guarded()
    def render() -> str:
        return progress_html(snapshot_fn())

    return gr.HTML(value=render, every=every if GRADIO_MAJOR >= 4 else None, elem_id=elem_id)
