"""A1111's own "Send to txt2img" buttons for a Textbox holding an infotext.

The webui pastes an infotext (prompt, ``Negative prompt:``, then ``Steps: …, Seed: …, Size: WxH``)
into the txt2img fields and switches tab when a button registered with
``infotext_utils.register_paste_params_button`` is clicked. Registration only records the binding;
the webui wires every recorded binding after all tabs, extension tabs included, are built
(``connect_paste_params_buttons``), so this must run while our tab is being built.
"""

from __future__ import annotations

from typing import Any


def _infotext_module() -> Any:
    try:
        from modules import infotext_utils  # A1111 >= 1.8

        return infotext_utils
    except ImportError:
        from modules import generation_parameters_copypaste  # older name, kept as an alias by 1.8+

        return generation_parameters_copypaste


def send_buttons(text_component: Any, tabs: tuple[str, ...] = ("txt2img",)) -> dict[str, Any]:
    """Create the webui's paste buttons (call inside an open ``gr.Row``) bound to ``text_component``.

    Args:
        text_component: a gradio Textbox whose value is an A1111 infotext.
        tabs (`tuple[str, ...]`, defaults to ``("txt2img",)``): the webui tabs to offer.

    Returns:
        `dict[str, gr.Button]`: the buttons by tab name (empty when the webui has no paste support).
    """
    try:
        module = _infotext_module()
    except ImportError:
        return {}
    buttons = module.create_buttons(list(tabs))
    for tab, button in buttons.items():
        module.register_paste_params_button(module.ParamBinding(paste_button=button, tabname=tab,
                                                                source_text_component=text_component))
    return buttons
