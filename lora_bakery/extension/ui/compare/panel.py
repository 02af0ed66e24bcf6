"""The Compare tab's components and wiring (handlers in ``handlers.py``)."""

from __future__ import annotations

import functools

import gradio as gr

from lora_bakery.extension.ui.compare import handlers
from lora_bakery.extension.ui.context import UiContext
from lora_bakery.extension.ui.dataset import common


def build(ctx: UiContext) -> None:
    """Create the components and wire them (call inside an open tab)."""
    from lora_bakery.extension.compare import load_presets

    slot = common.JobSlot()
    preset_names = list(load_presets(handlers.presets_path(ctx)))
    with gr.Row():
        folder = gr.Textbox(label="Training output folder", value=ctx.settings.get("compare_folder", ""), scale=4,
                            elem_id="lora_bakery_compare_folder")
        out_root = gr.Textbox(label="Save grids to", value=ctx.settings.get("compare_out", "outputs/lora_bakery/compare"),
                              scale=2)
        scan_btn = gr.Button("List epochs", elem_id="lora_bakery_compare_scan")
    message = gr.Markdown(elem_id="lora_bakery_compare_message")
    progress = gr.HTML(elem_id="lora_bakery_compare_progress")
    epochs = gr.CheckboxGroup(label="Epochs", choices=[], elem_id="lora_bakery_compare_epochs")
    table = gr.Dataframe(headers=handlers.EPOCH_COLUMNS, interactive=False, wrap=True)
    with gr.Accordion("Grid", open=True):
        with gr.Row():
            prompt = gr.Textbox(label="Prompt", value="a photo", lines=2, scale=3)
            negative = gr.Textbox(label="Negative prompt", lines=2, scale=2)
        with gr.Row():
            seed = gr.Number(label="Seed (fixed)", value=1234, precision=0)
            steps = gr.Slider(1, 150, value=20, step=1, label="Steps")
            width = gr.Slider(64, 2048, value=512, step=8, label="Width")
            height = gr.Slider(64, 2048, value=512, step=8, label="Height")
            cfg = gr.Slider(1, 30, value=7, step=0.5, label="CFG")
            sampler = gr.Textbox(label="Sampler", value="", placeholder="default")
        with gr.Row():
            weight = gr.Number(label="LoRA weight (no weight axis)", value=1.0)
            blocks = gr.Dropdown(label="Block preset (no blocks axis)", choices=[""] + preset_names, value="",
                                 allow_custom_value=True)
        axes = []
        for name, kind, values in (("X", "epoch", ""), ("Y", "weight", "0.6, 0.8, 1.0"), ("Z", "none", "")):
            with gr.Row():
                axes.append(gr.Dropdown(label=f"{name} axis", choices=handlers.AXIS_CHOICES, value=kind))
                axes.append(gr.Textbox(label=f"{name} values", value=values, scale=3,
                                       placeholder="numbers: 0.5, 1 · blocks / prompt S/R: ALL | MIDD | 1,0,…"))
        with gr.Row():
            run_btn = gr.Button("Render grid", variant="primary", elem_id="lora_bakery_compare_run")
            stop_btn = gr.Button("Interrupt")
        grid = gr.Image(label="Grid", type="filepath", interactive=False)
        cells_gallery = gr.Gallery(label="Cells (click one for its txt2img prompt)", columns=6)
        cells_state = gr.State([])
        txt2img = gr.Textbox(label="txt2img prompt of the clicked cell (with its <lora:…> tag)", interactive=False,
                             elem_id="lora_bakery_compare_cell_prompt")
        with gr.Row():
            infotext = gr.Textbox(label="Its generation parameters (A1111 infotext)", lines=3, interactive=False,
                                  scale=4, elem_id="lora_bakery_compare_cell_infotext")
            if ctx.paste_buttons is not None:
                ctx.paste_buttons(infotext)  # the webui's own "Send to txt2img": pastes prompt, seed, size…
        grid_file = gr.File(label="Download grid", interactive=False)
    with gr.Accordion("Block analysis", open=False):
        with gr.Row():
            norms_btn = gr.Button("Per-block ‖ΔW‖ of the checked epochs (instant)")
            low = gr.Number(label="Analyzer: lowered block weight", value=0.0)
            effect_btn = gr.Button("Image analyzer (one image per block)")
        norms_image = gr.Image(label="Block norms", type="filepath", interactive=False)
        norms_file = gr.File(label="Download", interactive=False)
        effect_chart = gr.Image(label="Changed pixels per block", type="filepath", interactive=False)
        effect_sheet = gr.Image(label="diff | lowered | reference", type="filepath", interactive=False)
    with gr.Accordion("Block presets and baking", open=False):
        presets_text = gr.Textbox(label="Presets (lbw format NAME:v1,v2,…; 12/17/20/26 values)", lines=8,
                                  value=handlers.load_presets_text(ctx))
        save_presets_btn = gr.Button("Save presets")
        with gr.Row():
            bake_blocks = gr.Dropdown(label="Preset or vector", choices=preset_names, value="MIDD",
                                      allow_custom_value=True)
            rebase_from = gr.Number(label="Rebase: weight", value=1.0)
            rebase_to = gr.Number(label="behaves like", value=1.0)
            drop_zero = gr.Checkbox(label="Drop zeroed blocks", value=False)
            bake_out = gr.Textbox(label="New file (default beside the epoch)", value="")
        bake_btn = gr.Button("Bake into a new file (last checked epoch)")
        bake_file = gr.File(label="Baked file", interactive=False)

    grid_inputs = [folder, epochs, prompt, negative, seed, steps, width, height, cfg, sampler, weight, blocks, *axes]
    scan_btn.click(handlers.scan, [folder], [message, table, epochs])
    run_btn.click(functools.partial(handlers.run_grid, ctx, slot), [out_root, *grid_inputs],
                  [progress, message, grid, cells_gallery, grid_file, cells_state])
    stop_btn.click(lambda: slot.interrupt(ctx), [], [message])

    def on_select(cells, evt: gr.SelectData):
        return handlers.cell_prompt(cells, evt.index if isinstance(evt.index, int) else None)

    cells_gallery.select(on_select, [cells_state], [txt2img, infotext])
    norms_btn.click(handlers.norms, [folder, epochs, out_root], [message, norms_image, norms_file])
    effect_btn.click(functools.partial(handlers.effect, ctx, slot),
                     [folder, epochs, out_root, prompt, negative, seed, steps, width, height, low],
                     [progress, message, effect_chart, effect_sheet])
    save_presets_btn.click(functools.partial(handlers.save_presets_text, ctx), [presets_text], [message, bake_blocks])
    bake_btn.click(functools.partial(handlers.bake, ctx),
                   [folder, epochs, bake_blocks, rebase_from, rebase_to, drop_zero, bake_out], [message, bake_file])
