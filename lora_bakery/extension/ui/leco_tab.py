"""LECO tab: concept sliders trained from prompts only, on the model the host has loaded.

Thin on purpose: the components and their wiring are in ``ui/leco/panel.py``, what the buttons do in
``ui/leco/handlers.py``, the form ↔ config mapping in ``ui/leco/form.py``, and the work in
``trainer/leco`` (the same as ``bakery leco CONFIG.toml``).
"""

from __future__ import annotations

import gradio as gr

from lora_bakery.extension.ui.context import UiContext
from lora_bakery.extension.ui.leco import panel

KEY = "leco"
LABEL = "LECO"
SUMMARY = """### LECO
Bake **concept sliders** from prompts alone, no images: a *target* (e.g. `skirt`), its two extremes
(*positive* `long_skirt`, *negative* `microskirt, …`) and what must stay unchanged (*anchors*). The
result is a LoRA you dial with its weight, negative weights included. At each save a grid of the
preview prompt at weights −2 … +2 is rendered with the loaded model; when the extremes stop
changing between saves the slider is done (the earlier save is usually the better one).
Train in bf16 or fp32; files are saved in fp16.
"""


def build(ctx: UiContext) -> None:
    """Fill the open LECO tab.

    Args:
        ctx (`UiContext`): host, jobs and settings.
    """
    gr.Markdown(SUMMARY, elem_id="lora_bakery_leco_intro")
    panel.build(ctx)
