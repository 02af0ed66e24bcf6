"""Bake tab: LoRA / LoCon / LyCORIS training on the model the host has loaded.

Thin on purpose: the components and their wiring are in ``ui/bake/panel.py``, what the buttons do
in ``ui/bake/handlers.py``, the form ↔ config mapping in ``ui/bake/form.py``, and the work in
``trainer/train.py`` (the same as ``bakery train CONFIG.toml``).
"""

from __future__ import annotations

import gradio as gr

from lora_bakery.extension.ui.bake import panel
from lora_bakery.extension.ui.context import UiContext

KEY = "bake"
LABEL = "Bake"
SUMMARY = """### Bake
Train a **LoRA / LoCon** (or DoRA, LoHa, LoKr, IA3, OFT, DyLoRA) directly on the checkpoint you
have loaded (no second copy, no reload), from a recipe preset or your own settings. The files are
**kohya-compatible** (`lora_unet_*` / `lora_te_*` keys, full `ss_*` metadata), so A1111, Forge,
ComfyUI and civitai read them as they read sd-scripts output. Set `dataset.train_data_dir` (the
parent of the `N_name` folders) and `saving.output_dir`, then **Bake**; more clicks queue more
trainings. **Save config** writes a TOML that `bakery train` runs unchanged.
"""


def build(ctx: UiContext) -> None:
    """Fill the open Bake tab.

    Args:
        ctx (`UiContext`): host, jobs and settings.
    """
    gr.Markdown(SUMMARY, elem_id="lora_bakery_bake_intro")
    panel.build(ctx)
