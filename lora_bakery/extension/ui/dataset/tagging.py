"""Tagging: WD14 / WD v3 ONNX taggers into the captions, as a job with progress and interrupt.

The model is a folder (``model.onnx`` + ``selected_tags.csv``), a known name or an HF repo id
(downloaded on first use when online). **Tag** writes the captions right away (backed up, so
**Undo last change** restores them); **Preview only** shows the new captions without writing.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from lora_bakery.extension.ui.context import UiContext
from lora_bakery.extension.ui.dataset import common

WRITE_MODES = ["skip", "overwrite", "prepend", "append"]


def tag_params(models: str, general: float, character: float, general_mcut: bool, character_mcut: bool,
               mode: str, exclude: str, underscores: bool, escape: bool, rating: str, batch: float) -> dict[str, Any]:
    """The tag operation's params from the panel's values (``TagSettings`` field names)."""
    return {"models": models, "general_threshold": general, "character_threshold": character,
            "general_mcut": general_mcut, "character_mcut": character_mcut, "mode": mode, "exclude": exclude,
            "replace_underscores": underscores, "escape_parentheses": escape, "rating": rating,
            "batch_size": int(batch or 8)}


def run_tagging(root: str, params: dict[str, Any], write: bool, progress: Any) -> tuple[str, Any]:
    """Tag ``root`` and (when ``write``) apply the caption plan; returns (Markdown, plan table)."""
    from lora_bakery.extension.dataset_ops import registry

    done = registry.preview(root, "tag", params, progress=progress)
    record = None
    if write and done.plan.changes:
        done, record = registry.apply(root, "tag", params, planned=done)
    extra = done.extra
    head = (f"Tagged **{extra['tagged']}** image(s) in {extra['seconds']} s, {extra['skipped']} unreadable, "
            f"{len(extra['tags'])} distinct tags" + (" — **interrupted**" if extra.get("interrupted") else "") + ".")
    return head + "\n\n" + common.plan_markdown(done, record), common.caption_table(done)


def build(ctx: UiContext, slot: common.JobSlot, root: Any, progress: Any) -> None:
    """The Tagging section."""
    gr.Markdown("Tag every image with one or more WD14 taggers (several are unioned). Captions that exist are "
                "handled by the write mode; every written caption is backed up.")
    models = gr.Textbox(value=str(ctx.settings.get("tagger_model") or "wd-v1-4-vit-tagger-v2"),
                        label="Tagger: folder with model.onnx + selected_tags.csv, known name, or HF repo id "
                              "(comma-separated to union several)", elem_id="lora_bakery_ds_tag_model")
    with gr.Row():
        general = gr.Slider(0.0, 1.0, value=0.35, step=0.01, label="General threshold")
        character = gr.Slider(0.0, 1.0, value=0.85, step=0.01, label="Character threshold")
        general_mcut = gr.Checkbox(value=False, label="MCut (general)")
        character_mcut = gr.Checkbox(value=False, label="MCut (character)")
    with gr.Row():
        mode = gr.Radio(WRITE_MODES, value="skip", label="Existing captions", elem_id="lora_bakery_ds_tag_mode")
        rating = gr.Radio(["none", "first", "last"], value="none", label="Rating tag")
        batch = gr.Number(value=8, label="Batch size", precision=0)
    with gr.Row():
        exclude = gr.Textbox(value="", label="Exclude (tags or patterns, comma-separated)",
                             elem_id="lora_bakery_ds_tag_exclude")
        underscores = gr.Checkbox(value=True, label="Underscores → spaces (kaomoji kept)")
        escape = gr.Checkbox(value=False, label="Escape parentheses")
    with gr.Row():
        tag_btn = gr.Button("Tag", variant="primary", elem_id="lora_bakery_ds_tag_run")
        preview_btn = gr.Button("Preview only", elem_id="lora_bakery_ds_tag_preview")
    result = gr.Markdown("", elem_id="lora_bakery_ds_tag_result")
    table = common.dataframe("Captions (whole files: the trainer reads line 1)", common.CAPTION_COLUMNS,
                             "lora_bakery_ds_tag_table")
    inputs = [models, general, character, general_mcut, character_mcut, mode, exclude, underscores, escape, rating,
              batch]

    def handler(write: bool):
        def run(path: str, *values: Any):
            params = tag_params(*values)
            yield from common.follow(ctx, slot, "Dataset: tag", lambda job: run_tagging(path, params, write, job), 3,
                                     exclusive=True)

        return run

    tag_btn.click(handler(True), inputs=[root, *inputs], outputs=[progress, result, table])
    preview_btn.click(handler(False), inputs=[root, *inputs], outputs=[progress, result, table])
