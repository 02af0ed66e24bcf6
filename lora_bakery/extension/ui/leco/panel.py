"""The LECO tab's components and wiring (gradio 3.41 and 4.x: no ``.update()``, no ``gr.Box``)."""

from __future__ import annotations

from typing import Any

import gradio as gr

from lora_bakery.extension.ui.context import UiContext
from lora_bakery.extension.ui.dataset import common
from lora_bakery.extension.ui.leco import form, handlers

PRECISION_INFO = "bf16 if the GPU supports it, else fp32. fp16 is not offered: LECO losses turn NaN in fp16."


def _eid(name: str) -> str:
    return f"lora_bakery_leco_{name}"


def _prompt_widgets(v: dict[str, Any]) -> dict[str, Any]:
    w: dict[str, Any] = {}
    with gr.Row():
        w["target"] = gr.Textbox(v["target"], label="Target", info="the concept the slider acts on", elem_id=_eid("target"))
        w["neutral"] = gr.Textbox(v["neutral"], label="Neutral", info="what weight 0 looks like; empty = the negative prompt", elem_id=_eid("neutral"))
    with gr.Row():
        w["positive"] = gr.Textbox(v["positive"], label="Positive (+1 extreme)", info="empty = the target", elem_id=_eid("positive"))
        w["negative"] = gr.Textbox(v["negative"], label="Negative / unconditional (−1 extreme)", elem_id=_eid("negative"))
    with gr.Row():
        w["action"] = gr.Radio(["enhance", "erase"], value=v["action"], label="Action", elem_id=_eid("action"))
        w["guidance_scale"] = gr.Number(v["guidance_scale"], label="Guidance scale g", elem_id=_eid("guidance"))
        w["resolution"] = gr.Number(v["resolution"], label="Resolution", precision=0, elem_id=_eid("resolution"))
        w["dynamic_resolution"] = gr.Checkbox(v["dynamic_resolution"], label="Dynamic resolution", elem_id=_eid("dynres"))
        w["batch_size"] = gr.Number(v["batch_size"], label="Batch size", precision=0, elem_id=_eid("batch"))
    with gr.Row():
        w["attributes"] = gr.Textbox(v["attributes"], label="Attributes to disentangle", info="comma separated, e.g. male, female", elem_id=_eid("attributes"))
        w["anchors"] = gr.Textbox(v["anchors"], label="Anchor prompts (kept unchanged)", lines=2, info="one per line", elem_id=_eid("anchors"))
    return w


def _training_widgets(v: dict[str, Any]) -> dict[str, Any]:
    w: dict[str, Any] = {}
    with gr.Row():
        w["dim"] = gr.Number(v["dim"], label="Rank (dim)", precision=0, elem_id=_eid("dim"))
        w["alpha"] = gr.Number(v["alpha"], label="Alpha", elem_id=_eid("alpha"))
        w["modules"] = gr.Dropdown(["full", "xattn", "noxattn", "selfattn"], value=v["modules"], label="Layers", elem_id=_eid("modules"))
        w["conv_dim"] = gr.Number(v["conv_dim"], label="Conv rank (0 = none)", precision=0, elem_id=_eid("conv_dim"))
    with gr.Row():
        w["steps"] = gr.Number(v["steps"], label="Steps", precision=0, elem_id=_eid("steps"))
        w["lr"] = gr.Number(v["lr"], label="Learning rate", elem_id=_eid("lr"))
        w["optimizer"] = gr.Dropdown(["adamw", "prodigy", "lion"], value=v["optimizer"], label="Optimizer", elem_id=_eid("optimizer"))
        w["precision"] = gr.Radio(["bf16", "fp32"], value=v["precision"], label="Precision", info=PRECISION_INFO, elem_id=_eid("precision"))
    with gr.Row():
        w["bidirectional"] = gr.Checkbox(v["bidirectional"], label="Bidirectional (+1 and −1 each step)", elem_id=_eid("bidir"))
        w["anchor_weight"] = gr.Number(v["anchor_weight"], label="Anchor weight", elem_id=_eid("anchor_weight"))
        w["max_denoising_steps"] = gr.Number(v["max_denoising_steps"], label="Denoising steps", precision=0, elem_id=_eid("denoise"))
        w["seed"] = gr.Number(v["seed"], label="Seed", precision=0, elem_id=_eid("seed"))
    with gr.Row():
        w["output_dir"] = gr.Textbox(v["output_dir"], label="Output folder", elem_id=_eid("output_dir"))
        w["output_name"] = gr.Textbox(v["output_name"], label="Name", elem_id=_eid("output_name"))
        w["save_every"] = gr.Number(v["save_every"], label="Save every N steps", precision=0, elem_id=_eid("save_every"))
        w["overwrite"] = gr.Checkbox(v["overwrite"], label="Overwrite", elem_id=_eid("overwrite"))
        w["resume"] = gr.Textbox(v["resume"], label="Resume from (NAME-state folder)", elem_id=_eid("resume"))
    return w


def _preview_widgets(v: dict[str, Any]) -> dict[str, Any]:
    w: dict[str, Any] = {}
    with gr.Row():
        w["preview_enabled"] = gr.Checkbox(v["preview_enabled"], label="Preview grid at each save", elem_id=_eid("preview_on"))
        w["preview_prompt"] = gr.Textbox(v["preview_prompt"], label="Preview prompt (empty = target)", elem_id=_eid("preview_prompt"))
        w["preview_negative"] = gr.Textbox(v["preview_negative"], label="Negative prompt", elem_id=_eid("preview_negative"))
    with gr.Row():
        w["multipliers"] = gr.Textbox(v["multipliers"], label="Weights", elem_id=_eid("multipliers"))
        w["preview_seed"] = gr.Number(v["preview_seed"], label="Seed", precision=0, elem_id=_eid("preview_seed"))
        w["preview_width"] = gr.Number(v["preview_width"], label="Width", precision=0, elem_id=_eid("preview_width"))
        w["preview_height"] = gr.Number(v["preview_height"], label="Height", precision=0, elem_id=_eid("preview_height"))
        w["preview_steps"] = gr.Number(v["preview_steps"], label="Steps", precision=0, elem_id=_eid("preview_steps"))
    return w


def build(ctx: UiContext) -> None:
    """Create the LECO components inside the open tab and wire them."""
    from lora_bakery.trainer.leco import PRESETS

    values = form.defaults()
    slot = common.JobSlot()
    extra = gr.State([])
    with gr.Row():
        preset = gr.Dropdown(list(PRESETS), value="skirt length (guide)", label="Preset", elem_id=_eid("preset"))
        load_preset = gr.Button("Load preset", elem_id=_eid("load_preset"))
        config_path = gr.Textbox("", label="Config .toml", elem_id=_eid("config_path"))
        load = gr.Button("Load", elem_id=_eid("load"))
        save = gr.Button("Save", elem_id=_eid("save"))
    widgets = _prompt_widgets(values)
    with gr.Accordion("Network, training and files", open=True):
        widgets.update(_training_widgets(values))
    with gr.Accordion("Preview", open=False):
        widgets.update(_preview_widgets(values))
    inputs = [widgets[name] for name in form.NAMES]
    with gr.Row():
        start = gr.Button("Train slider", variant="primary", elem_id=_eid("train"))
        stop = gr.Button("Interrupt", elem_id=_eid("interrupt"))
    progress = gr.HTML("", elem_id=_eid("progress"))
    message = gr.Markdown("", elem_id=_eid("result"))
    grids = common.gallery("Preview grids (newest first)", _eid("grids"), columns=1)

    load_preset.click(handlers.load_preset, inputs=[preset], outputs=[message, extra, *inputs])
    load.click(handlers.load_config, inputs=[config_path], outputs=[message, extra, *inputs])
    save.click(handlers.save_config, inputs=[config_path, extra, *inputs], outputs=[message])

    def train(ex: list, *args: Any) -> Any:
        yield from handlers.train(ctx, slot, ex, *args)

    def interrupt() -> str:
        return handlers.interrupt(ctx, slot)

    start.click(train, inputs=[extra, *inputs], outputs=[progress, message, grids])
    stop.click(interrupt, inputs=[], outputs=[message])


__all__ = ["build"]
