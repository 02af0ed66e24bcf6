"""LECO tab: concept sliders trained from prompts only (filled by later issues)."""

from __future__ import annotations

import gradio as gr

from lora_bakery.extension.ui.context import UiContext

KEY = "leco"
LABEL = "LECO"
SUMMARY = """### LECO
Bake **concept sliders** from prompts alone, no images: pick a target, the direction to
push it (e.g. *young ↔ old*, *less ↔ more detail*) and what must stay unchanged; the result is
a LoRA you dial with its weight, negative weights included.

*Coming soon.*
"""


def build(ctx: UiContext) -> None:
    """Fill the open LECO tab.

    Args:
        ctx (`UiContext`): host, jobs and settings.
    """
    gr.Markdown(SUMMARY, elem_id="lora_bakery_leco_intro")
