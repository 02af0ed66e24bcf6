"""The folder row (training folder, Scan, Undo last change, Interrupt) and the scan summary.

The scan runs as a job (a cold scan of a big folder reads thousands of headers) and its progress
streams into the tab; the summary shows counts per concept folder and every problem found.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from lora_bakery.extension.ui.context import UiContext
from lora_bakery.extension.ui.dataset import common

FOLDER_COLUMNS = ["folder", "repeats", "concept", "images", "usable", "captioned", "problems", "steps_per_epoch"]
PROBLEM_COLUMNS = ["level", "code", "path", "message"]


def scan_outputs(root: str, progress: Any = None) -> tuple[str, Any, Any]:
    """(summary Markdown, folders table, problems table) for ``root``."""
    from lora_bakery.extension.allowed_folders import remember
    from lora_bakery.extension.dataset.scan import scan
    from lora_bakery.extension.dataset_ops import registry, report

    path = registry._root(root)
    remember(path)  # the API may now use the folder the person at the UI opened
    result = scan(path, progress=progress)
    return (report.scan_markdown(result), common.frame(report.folder_rows(result), FOLDER_COLUMNS),
            common.frame(report.problem_rows(result, common.MAX_ROWS), PROBLEM_COLUMNS))


def undo_last(root: str, force: bool = False) -> str:
    """Undo the newest applied change of ``root``; a readable message either way."""
    from lora_bakery.extension.dataset_ops import registry

    try:
        rec = registry.undo(root, force=force)
    except Exception as exc:  # noqa: BLE001 - shown
        return common.friendly(exc)
    from lora_bakery.extension.dataset.safety import undo_message

    return undo_message(rec, "**Undo last change**")


def build(ctx: UiContext, slot: common.JobSlot) -> dict[str, Any]:
    """Place the folder row and the scan summary.

    Args:
        ctx (`UiContext`): for the job queue.
        slot (`common.JobSlot`): the tab's current job (Interrupt stops it).

    Returns:
        `dict`: ``root`` (the folder Textbox every section reads), ``message`` (Markdown for
        undo/interrupt results), ``progress`` (job progress HTML), ``undone`` (the Undo click event,
        for sections that show file contents to chain a refresh on).
    """
    default = str(ctx.settings.get("dataset_dir") or "")
    with gr.Row():
        root = gr.Textbox(label="Training folder (holds the N_name concept folders)", value=default,
                          placeholder="/path/to/dataset", elem_id="lora_bakery_ds_root", scale=4)
        scan_btn = gr.Button("Scan", variant="primary", elem_id="lora_bakery_ds_scan", scale=1)
        undo_btn = gr.Button("Undo last change", elem_id="lora_bakery_ds_undo_last", scale=1)
        stop_btn = gr.Button("Interrupt", elem_id="lora_bakery_ds_interrupt", scale=1)
    progress = gr.HTML("", elem_id="lora_bakery_ds_progress")
    message = gr.Markdown("", elem_id="lora_bakery_ds_message")
    summary = gr.Markdown("Choose a training folder and press **Scan**.", elem_id="lora_bakery_ds_summary")
    with gr.Accordion("Folders and problems", open=True):
        folders = common.dataframe("Folders", FOLDER_COLUMNS, "lora_bakery_ds_folders")
        problems = common.dataframe("Problems", PROBLEM_COLUMNS, "lora_bakery_ds_problems")

    def scan_click(path: str):
        if not str(path or "").strip():
            yield "", common.friendly(ValueError("enter the training folder first")), gr.update(), gr.update()
            return
        yield from common.follow(ctx, slot, "Dataset: scan", lambda job: scan_outputs(path, job), 4)

    scan_btn.click(scan_click, inputs=[root], outputs=[progress, summary, folders, problems])
    undone = undo_btn.click(undo_last, inputs=[root], outputs=[message])
    stop_btn.click(lambda: slot.interrupt(ctx), inputs=[], outputs=[message])
    return {"root": root, "message": message, "progress": progress, "summary": summary, "undone": undone}
