"""Reg images tab: regularisation images from the dataset's own captions (filled by later issues)."""

from __future__ import annotations

import gradio as gr

from lora_bakery.extension.ui.context import UiContext

KEY = "reg"
LABEL = "Reg images"
SUMMARY = """### Reg images
Generate regularisation images from your dataset's **own captions** (trigger words removed),
with the model you have loaded, through the same path as txt2img, so training keeps what your
model already draws for those captions. Each image gets its caption beside it.

*Coming soon.*
"""


def build(ctx: UiContext) -> None:
    """Fill the open Reg images tab.

    Args:
        ctx (`UiContext`): host, jobs and settings.
    """
    gr.Markdown(SUMMARY, elem_id="lora_bakery_reg_intro")
