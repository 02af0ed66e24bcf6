"""Dataset tab: scan, image prep, buckets, duplicates, masks, WD14 tagging, caption editor, repeats, backups.

Thin on purpose: each section is a module of ``ui/dataset/`` and every operation is one of
``dataset_ops.registry`` (the same as ``bakery dataset`` and ``/bakery/v1/dataset``).
"""

from __future__ import annotations

import gradio as gr

from lora_bakery.extension.ui.context import UiContext
from lora_bakery.extension.ui.dataset import batch, common, editor, folder, prep, repeats, review, tagging

KEY = "dataset"
LABEL = "Dataset"
SUMMARY = """### Dataset
Prepare the images and captions you bake from, in the order of the usual checklist:
gather → dedupe → filter → sort by concept → clean (alpha, trim, upscale check) →
caption with **WD14** (ONNX) → clean captions in the **caption editor** → add trigger words →
prune → balance **repeats** per concept.

Every change is previewed first, applied with a backup, and can be undone.
"""


def build(ctx: UiContext) -> None:
    """Fill the open Dataset tab.

    Args:
        ctx (`UiContext`): jobs and settings (``settings["dataset_dir"]`` pre-fills the folder).
    """
    gr.Markdown(SUMMARY, elem_id="lora_bakery_dataset_intro")
    slot = common.JobSlot()
    top = folder.build(ctx, slot)
    root, progress = top["root"], top["progress"]
    with gr.Tabs(elem_id="lora_bakery_ds_tabs"):
        with gr.Tab("Image prep", id="ds_prep"):
            prep.build_prep(ctx, slot, root, progress)
        with gr.Tab("Buckets", id="ds_buckets"):
            prep.build_buckets(ctx, slot, root, progress)
        with gr.Tab("Duplicates", id="ds_dupes"):
            review.build_duplicates(ctx, slot, root, progress)
        with gr.Tab("Masks", id="ds_masks"):
            review.build_masks(ctx, slot, root, progress)
        with gr.Tab("Tagging", id="ds_tagging"):
            tagging.build(ctx, slot, root, progress)
        with gr.Tab("Captions", id="ds_captions"):
            filters = editor.build(ctx, root)
            gr.Markdown("#### Batch operations")
            batch.build(ctx, root, filters)
        with gr.Tab("Repeats", id="ds_repeats"):
            repeats.build_repeats(ctx, root)
        with gr.Tab("Backups", id="ds_backups"):
            backups_undone = repeats.build_backups(ctx, root)
    # An undo changes captions on disk: the frequency table and gallery follow (when loaded).
    for undone in (top["undone"], backups_undone):
        undone.then(filters["follow_fn"], inputs=filters["follow_inputs"], outputs=filters["refresh_outputs"])
