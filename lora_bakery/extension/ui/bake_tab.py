"""Bake tab: LoRA/LoCon training on the loaded model (filled by later issues)."""

from __future__ import annotations

import gradio as gr

from lora_bakery.extension.ui.context import UiContext

KEY = "bake"
LABEL = "Bake"
SUMMARY = """### Bake
Train a **LoRA / LoCon** directly on the checkpoint you have loaded (no second copy, no
reload), from a recipe preset or your own settings. The files are **kohya-compatible**
(`lora_unet_*` / `lora_te_*` keys, full `ss_*` metadata), so A1111, Forge, ComfyUI and
civitai read them as they read sd-scripts output. Progress, samples and Interrupt work like
txt2img.

*Coming soon.*
"""


def build(ctx: UiContext) -> None:
    """Fill the open Bake tab.

    Args:
        ctx (`UiContext`): host, jobs and settings.
    """
    gr.Markdown(SUMMARY, elem_id="lora_bakery_bake_intro")
