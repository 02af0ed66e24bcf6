"""What every Dataset section shares: readable errors, tables, plan previews, jobs followed from a click.

Handlers return new values (never ``component.update``), so they run on gradio 3.41 and 4.x. A
failure is one Markdown line starting with ``compat.ERROR_PREFIX``; the traceback goes to the log.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable, Iterator
from typing import Any

import gradio as gr

from lora_bakery.extension.ui import compat
from lora_bakery.extension.ui.context import UiContext
from lora_bakery.extension.ui.dataset import thumbs

logger = logging.getLogger(__name__)

#: Exceptions that are the user's to fix (bad folder, bad option, nothing to undo): shown as their message.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, RuntimeError)
#: Rows shown in a preview table (the rest is counted, and the CLI's ``--limit 0`` shows all).
MAX_ROWS = 300
#: Before/after thumbnail pairs shown in a preview gallery.
MAX_THUMBS = 24

PLAN_COLUMNS = ["kind", "path", "new_path", "description"]
CAPTION_COLUMNS = ["kind", "path", "caption before", "caption after"]


def friendly(exc: BaseException) -> str:
    """``**Error:** <one readable line>`` for any exception (user errors keep their own message)."""
    if isinstance(exc, USER_ERRORS) and str(exc).strip():
        logger.info("LoRA Bakery dataset: %s", exc)
        return compat.ERROR_PREFIX + str(exc).strip().splitlines()[0]
    logger.exception("LoRA Bakery dataset handler failed")
    return compat.ERROR_PREFIX + compat.error_message(exc)


def guarded(outputs: int) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Like ``compat.guarded`` but with :func:`friendly` messages in the first output."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any) -> Any:
            try:
                return fn(*args)
            except Exception as exc:  # noqa: BLE001 - a handler never shows a traceback
                message = friendly(exc)
                return message if outputs == 1 else (message, *(gr.update() for _ in range(outputs - 1)))

        wrapper.__name__ = getattr(fn, "__name__", "handler")
        wrapper.__doc__ = fn.__doc__
        return wrapper

    return decorate


def frame(rows: list[dict[str, Any]], columns: list[str]) -> Any:
    """A pandas DataFrame of dict rows (lists joined with ``"; "``), for a ``gr.Dataframe`` output."""
    import pandas as pd

    data = [[("; ".join(map(str, r.get(c))) if isinstance(r.get(c), list) else ("" if r.get(c) is None else r.get(c)))
             for c in columns] for r in rows]
    return pd.DataFrame(data, columns=columns)


def dataframe(label: str, columns: list[str], elem_id: str) -> Any:
    """A read-only table with ``columns`` (wraps text; same look in gradio 3 and 4)."""
    return gr.Dataframe(value=frame([], columns), headers=columns, label=label, interactive=False,
                        elem_id=elem_id, **compat.kwargs_for(gr.Dataframe, wrap=True))


def gallery(label: str, elem_id: str, columns: int = 6) -> Any:
    """A gallery of thumbnails (``(file, caption)`` pairs)."""
    extra = compat.kwargs_for(gr.Gallery, columns=columns, height="auto", object_fit="contain", allow_preview=True,
                              show_download_button=False, show_share_button=False)
    return gr.Gallery(label=label, elem_id=elem_id, **extra)


def plan_gallery(plan: Any) -> list[tuple[str, str]]:
    """Before/after thumbnail pairs of a plan, for a preview gallery."""
    out: list[tuple[str, str]] = []
    for t in plan.thumbnails[:MAX_THUMBS]:
        name = t.path.rsplit("/", 1)[-1]
        for data, when in ((t.before, "before"), (t.after, "after")):
            path = thumbs.from_bytes(data)
            if path:
                out.append((path, f"{name} ({when}){': ' + t.label if t.label and when == 'after' else ''}"))
    return out


def plan_markdown(done: Any, record: Any = None) -> str:
    """Summary, notes and (after apply) the backup name, as Markdown."""
    lines = [f"**{html.escape(done.summary)}**"]
    lines += [f"- {html.escape(n)}" for n in done.notes]
    if record is not None:
        lines.append(f"Applied. Backup `{record.path.name}` — **Undo last change** restores it.")
    elif done.plan.changes:
        lines.append("Preview only: nothing changed yet. **Apply** makes these changes (backed up, undoable).")
    else:
        lines.append("Nothing to change.")
    return "\n\n".join(lines)


def plan_table(done: Any) -> Any:
    """The plan's changes and skipped inputs (first ``MAX_ROWS``)."""
    from lora_bakery.extension.dataset.safety import preview as plan_rows

    return frame(plan_rows(done.plan)[:MAX_ROWS], PLAN_COLUMNS)


def caption_table(done: Any) -> Any:
    """A caption plan's whole texts before and after (every line), then the captions left alone and why."""
    rows = [{"kind": "write" if r["before"] is not None else "create", "path": r["path"],
             "caption before": r["before"] or "", "caption after": r["after"]}
            for r in done.extra.get("captions", [])[:MAX_ROWS]]
    rows += [{"kind": "skip", "path": p, "caption before": "", "caption after": why}
             for p, why in done.plan.skipped[: max(0, MAX_ROWS - len(rows))]]
    return frame(rows, CAPTION_COLUMNS)


def jobs_of(ctx: UiContext) -> Any:
    """The context's job queue, or the process-wide one (tests build the tab without a queue)."""
    if ctx.jobs is not None:
        return ctx.jobs
    from lora_bakery.extension.jobs import default_queue

    return default_queue()


class JobSlot:
    """The Dataset tab's current job, so one Interrupt button can stop whichever section started it."""

    def __init__(self) -> None:
        self.job: Any = None

    def interrupt(self, ctx: UiContext) -> str:
        if self.job is None or self.job.is_finished:
            return "No dataset job is running."
        jobs_of(ctx).interrupt(self.job.id)
        return f"Asked **{html.escape(self.job.name)}** to stop after the current image."


def follow(ctx: UiContext, slot: JobSlot, name: str, fn: Callable[[Any], tuple], outputs: int,
           *, exclusive: bool = False) -> Iterator[tuple]:
    """Run ``fn(job_ctx)`` as a job and stream its progress into the first output.

    ``fn`` returns a tuple for the remaining ``outputs - 1`` outputs; until it finishes those stay
    as they are. If it fails, the second output gets the readable error.

    Args:
        ctx (`UiContext`): for the job queue.
        slot (`JobSlot`): remembers the job for the Interrupt button.
        name (`str`): the job's name.
        fn (`Callable`): the work; receives the ``JobContext`` (a ``Progress``).
        outputs (`int`): outputs wired to the handler, the progress HTML first.
        exclusive (`bool`, *optional*): run on the single worker (anything using the GPU).

    Yields:
        `tuple`: values for the outputs.
    """
    keep = tuple(gr.update() for _ in range(outputs - 1))
    box: dict[str, Any] = {}

    def work(job_ctx: Any) -> Any:
        try:
            box["result"] = fn(job_ctx)
        except Exception as exc:  # noqa: BLE001 - shown in the tab
            box["error"] = friendly(exc)
        return None

    job = jobs_of(ctx).submit(name, work, exclusive=exclusive)
    slot.job = job
    last = ""
    for last in compat.follow_job(job.snapshot, every=0.5):
        yield (last, *keep)
    job.wait(5)
    if "error" in box:
        message = box["error"]
        yield (last, message, *keep[1:]) if outputs > 1 else (last,)
    elif "result" in box:
        yield (last, *box["result"])
    else:
        yield (last, f"{compat.ERROR_PREFIX}{job.error or job.status}", *keep[1:]) if outputs > 1 else (last,)
