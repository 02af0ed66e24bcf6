"""Compare tab: epoch × weight × block-weight grids and block analysis (filled by later issues)."""

from __future__ import annotations

import gradio as gr

from lora_bakery.extension.ui.context import UiContext

KEY = "compare"
LABEL = "Compare"
SUMMARY = """### Compare
Pick the epoch to publish: render **epoch × weight × block-weight** grids with fixed seeds
through the host's own LoRA loader (what you see is what users get), and run a **block
analysis** that shows which U-Net blocks carry the concept, then bake those block weights
into a new file.

*Coming soon.*
"""


def build(ctx: UiContext) -> None:
    """Fill the open Compare tab.

    Args:
        ctx (`UiContext`): host, jobs and settings.
    """
    gr.Markdown(SUMMARY, elem_id="lora_bakery_compare_intro")
