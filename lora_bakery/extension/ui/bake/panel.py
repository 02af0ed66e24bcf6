"""The Bake tab's components and wiring (gradio 3.41 and 4.x: no ``.update()``, no ``gr.Box``, no ``gr.State``).

The form is generated from the config's ``fields()``: one widget per flat field, grouped in
accordions like the guide, labelled with its dotted name (the key in the saved TOML) and its help
as the tooltip, so the UI, the file and ``bakery train`` never disagree.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from lora_bakery.extension.ui import compat
from lora_bakery.extension.ui.bake import form, handlers
from lora_bakery.extension.ui.context import UiContext
from lora_bakery.extension.ui.dataset import common

#: Widgets per row inside a group.
PER_ROW = 4
#: Groups open when the tab is shown.
OPEN_GROUPS = frozenset({"General", "Network"})


def eid(name: str) -> str:
    """DOM id of a Bake widget (dots in field names become underscores)."""
    return "lora_bakery_bake_" + name.replace(".", "_")


def _label(name: str) -> str:
    """The dotted TOML key, with ``dataset.general.`` shortened to ``general.`` (still unambiguous)."""
    return "general." + name[len("dataset.general."):] if name.startswith("dataset.general.") else name


def widget(row: dict[str, Any], value: Any) -> Any:
    """The component for one config field (kind from ``form.kind``)."""
    name, k = row["name"], form.kind(row)
    info = str(row.get("help") or "")[:300] or None
    def kw(cls: Any) -> dict[str, Any]:
        return {"label": _label(name), "elem_id": eid(name), **compat.kwargs_for(cls, info=info)}

    if k == "checkbox":
        return gr.Checkbox(value=bool(value), **kw(gr.Checkbox))
    if k in ("tristate", "dropdown"):
        return gr.Dropdown(form.choices(row), value=value, **kw(gr.Dropdown))
    if k == "number":
        return gr.Number(value=value, precision=0 if form.is_int(row) else None, **kw(gr.Number))
    if k == "lines":
        return gr.Textbox(value=value, lines=2, **kw(gr.Textbox))
    return gr.Textbox(value=value, **kw(gr.Textbox))


def _form(values: dict[str, Any]) -> dict[str, Any]:
    widgets: dict[str, Any] = {}
    for group, rows in form.grouped().items():
        with gr.Accordion(group, open=group in OPEN_GROUPS, elem_id=eid("group_" + group.lower().replace(" ", "_"))):
            for start in range(0, len(rows), PER_ROW):
                with gr.Row():
                    for row in rows[start:start + PER_ROW]:
                        widgets[row["name"]] = widget(row, values[row["name"]])
    return widgets


def build(ctx: UiContext) -> None:
    """Create the Bake components inside the open tab and wire them."""
    from lora_bakery.trainer.config import list_presets

    values = form.defaults()
    slot = handlers.BakeSlot()
    presets = [p["name"] for p in list_presets()]
    with gr.Row():
        preset = gr.Dropdown(presets, value=presets[0] if presets else None, label="Preset", elem_id=eid("preset"))
        load_preset = gr.Button("Load preset", elem_id=eid("load_preset"))
        config_path = gr.Textbox("", label="Config .toml", elem_id=eid("config_path"))
        load = gr.Button("Load config", elem_id=eid("load"))
        save = gr.Button("Save config", elem_id=eid("save"))
    base = gr.Textbox("", visible=False, elem_id=eid("base"))
    widgets = _form(values)
    with gr.Accordion("Dataset folders: repeats", open=False, elem_id=eid("group_repeats")):
        show_repeats = gr.Button("Show repeats of dataset.train_data_dir", elem_id=eid("show_repeats"))
        repeats_note = gr.Markdown("", elem_id=eid("repeats_note"))
        repeats_table = common.dataframe("Repeats", handlers.REPEATS_COLUMNS, eid("repeats"))
    inputs = [widgets[name] for name in form.NAMES]
    with gr.Row():
        start = gr.Button("Bake", variant="primary", elem_id=eid("train"))
        stop = gr.Button("Interrupt", elem_id=eid("interrupt"))
        refresh = gr.Button("Show queue", elem_id=eid("refresh_queue"))
    progress = gr.HTML("", elem_id=eid("progress"))
    message = gr.Markdown("", elem_id=eid("result"))
    with gr.Row():
        samples = common.gallery("Samples (newest first)", eid("samples"), columns=4)
        plot = gr.Image(label="Loss", type="filepath", interactive=False, elem_id=eid("loss_plot"))
    queue = gr.Markdown("", elem_id=eid("queue"))

    load_preset.click(handlers.load_preset, inputs=[preset], outputs=[message, base, *inputs])
    load.click(handlers.load_config, inputs=[config_path], outputs=[message, base, *inputs])
    save.click(handlers.save_config, inputs=[config_path, base, *inputs], outputs=[message])
    show_repeats.click(handlers.repeats, inputs=[widgets["dataset.train_data_dir"]], outputs=[repeats_note, repeats_table])

    def train(b: str, *args: Any) -> Any:
        yield from handlers.train(ctx, slot, b, *args)

    def interrupt() -> str:
        return handlers.interrupt(ctx, slot)

    def show_queue() -> str:
        return handlers.queue_markdown(slot)

    start.click(train, inputs=[base, *inputs], outputs=[progress, message, samples, plot])
    stop.click(interrupt, inputs=[], outputs=[message])
    refresh.click(show_queue, inputs=[], outputs=[queue])


__all__ = ["build", "eid", "widget"]
