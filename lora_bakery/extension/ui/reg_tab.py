"""Reg images tab: regularisation images from the dataset's own captions, made with the loaded model.

Thin on purpose: the components and their wiring are in ``ui/reg/panel.py``, what the buttons do in
``ui/reg/handlers.py``, and the work in ``extension/reg`` (the same as ``bakery reg`` and
``/bakery/v1/reg``).
"""

from __future__ import annotations

import gradio as gr

from lora_bakery.extension.ui.context import UiContext
from lora_bakery.extension.ui.reg import panel

KEY = "reg"
LABEL = "Reg images"
SUMMARY = """### Reg images
Regularisation images pull everything but your triggers back to what the model already draws.
Each training caption, **with the triggers and the tags you do not want regulated removed**, is
generated once with the model you have loaded (through the same path as txt2img, no LoRA), at the
source image's bucket size, into `reg/<repeats>_<name>/` beside your training folder, named like
its source, with its stripped caption beside it and every parameter in `manifest.json`.
Review the results: re-roll the bad ones with new seeds, or delete them. An interrupted run resumes.
Dreambooth mode makes the class prompt (e.g. `1girl`) as many times as there are training images.
"""


def build(ctx: UiContext) -> None:
    """Fill the open Reg images tab.

    Args:
        ctx (`UiContext`): host, jobs and settings (``settings["dataset_dir"]`` pre-fills the folder).
    """
    gr.Markdown(SUMMARY, elem_id="lora_bakery_reg_intro")
    panel.build(ctx)
