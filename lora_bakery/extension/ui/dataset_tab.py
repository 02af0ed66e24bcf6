"""Dataset tab: image prep, WD14 tagging, caption editor, repeats (filled by later issues)."""

from __future__ import annotations

import gradio as gr

from lora_bakery.extension.ui.context import UiContext

KEY = "dataset"
LABEL = "Dataset"
SUMMARY = """### Dataset
Prepare the images and captions you bake from, in the order of the usual checklist:
gather → dedupe → filter → sort by concept → clean (alpha, trim, upscale check) →
caption with **WD14** (ONNX) → clean captions in the **caption editor** → add trigger words →
prune → balance **repeats** per concept.

Every batch edit is previewed first, applied with a backup, and can be undone.

*Coming soon.*
"""


def build(ctx: UiContext) -> None:
    """Fill the open Dataset tab.

    Args:
        ctx (`UiContext`): host, jobs and settings.
    """
    gr.Markdown(SUMMARY, elem_id="lora_bakery_dataset_intro")
