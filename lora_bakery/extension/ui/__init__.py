"""LoRA Bakery's gradio UI: the same tabs inside A1111/Forge and in the standalone app.

Works on gradio 3.41.2 and 4.x from one code base (see ``compat``). The caller opens the
``gr.Blocks`` (A1111's ``on_ui_tabs`` or ``app.build_app``) and calls ``build_tabs`` inside it.
"""

from __future__ import annotations

import gradio as gr

from lora_bakery.extension.ui import (
    bake_tab,
    compare_tab,
    compat,
    dataset_tab,
    leco_tab,
    reg_tab,
    status_panel,
)
from lora_bakery.extension.ui.context import FORGE_UNSUPPORTED_TABS, TAB_KEYS, UiContext, tab_elem_id

#: The sub-tab modules in display order; each has ``KEY``, ``LABEL`` and ``build(ctx)``.
TAB_MODULES = (dataset_tab, reg_tab, bake_tab, leco_tab, compare_tab)

__all__ = ["FORGE_UNSUPPORTED_TABS", "TAB_KEYS", "TAB_MODULES", "UiContext", "build_tabs", "tab_elem_id"]


def build_tabs(ctx: UiContext) -> None:
    """Create the Environment panel and the five sub-tabs inside the caller's open Blocks/Tab.

    Tabs that cannot work on this host (``ctx.blocked_message``) show why instead of controls.

    Args:
        ctx (`UiContext`): the host factory, host name, Forge message, job queue and settings.
    """
    if ctx.notice:
        gr.Markdown(ctx.notice, elem_id="lora_bakery_notice")
    status_panel.build(ctx)
    with gr.Tabs(elem_id="lora_bakery_tabs"):
        for module in TAB_MODULES:
            with compat.tab(module.LABEL, module.KEY):
                blocked = ctx.blocked_message(module.KEY)
                if blocked:
                    gr.Markdown(
                        f"**Not available here:** {blocked}", elem_id=f"lora_bakery_{module.KEY}_unsupported"
                    )
                else:
                    module.build(ctx)
