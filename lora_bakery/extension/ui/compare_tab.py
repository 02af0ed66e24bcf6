"""Compare tab: epoch × weight × block-weight grids, block analysis and block-weight baking.

Thin on purpose: components and wiring in ``ui/compare/panel.py``, what the buttons do in
``ui/compare/handlers.py``, the work in ``extension/compare`` (the same as ``bakery compare``,
``bakery blocks`` and ``/bakery/v1/compare``).
"""

from __future__ import annotations

import gradio as gr

from lora_bakery.extension.ui.compare import panel
from lora_bakery.extension.ui.context import UiContext

KEY = "compare"
LABEL = "Compare"
SUMMARY = """### Compare
Pick the epoch to publish: render **epoch × weight × block-weight** grids with fixed seeds
through the host's own LoRA loader (what you see is what users get), and run a **block
analysis** that shows which U-Net blocks carry the concept, then bake those block weights
into a new file. Files are used where they are: nothing is copied into the Lora folder.
"""


def build(ctx: UiContext) -> None:
    """Fill the open Compare tab.

    Args:
        ctx (`UiContext`): host, jobs and settings.
    """
    gr.Markdown(SUMMARY, elem_id="lora_bakery_compare_intro")
    panel.build(ctx)
