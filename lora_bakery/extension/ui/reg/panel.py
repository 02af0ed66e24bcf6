"""The Reg images tab's components and their wiring.

# No ``from __future__ import annotations`` here: gradio finds ``gr.SelectData`` by the real annotation.
"""

from typing import Any

import gradio as gr

from lora_bakery.extension.ui.context import UiContext
from lora_bakery.extension.ui.dataset import common
from lora_bakery.extension.ui.reg import handlers


def _settings(ctx: UiContext) -> list[Any]:
    """The settings inputs, in ``handlers.SETTING_FIELDS`` order."""
    with gr.Row():
        mode = gr.Radio(["captions", "dreambooth"], value="captions", label="Mode",
                        info="captions: one image per training caption (KNXO); dreambooth: the class prompt × images",
                        elem_id="lora_bakery_reg_mode")
        class_prompt = gr.Textbox(label="Class prompt (Dreambooth; empty: from the folder name, 10_sks_1girl → 1girl)",
                                  elem_id="lora_bakery_reg_class")
    remove = gr.Textbox(label="Triggers and un-regulated tags to remove (comma-separated; * glob, re:regex)",
                        lines=2, elem_id="lora_bakery_reg_remove")
    with gr.Row():
        prefix = gr.Textbox(label="Prompt prefix", elem_id="lora_bakery_reg_prefix")
        suffix = gr.Textbox(label="Prompt suffix", elem_id="lora_bakery_reg_suffix")
        negative = gr.Textbox(label="Negative prompt", elem_id="lora_bakery_reg_negative")
    with gr.Accordion("Generation", open=True):
        with gr.Row():
            per_caption = gr.Number(value=1, precision=0, label="Images per caption")
            size_mode = gr.Radio(["bucket", "fixed"], value="bucket", label="Size",
                                 info="bucket: the source's kohya bucket at the resolution (aspect kept)")
            resolution = gr.Number(value=int(ctx.settings.get("reg_resolution") or 512), precision=0,
                                   label="Bucket resolution (512 SD1.5, 1024 SDXL)", elem_id="lora_bakery_reg_resolution")
            width = gr.Number(value=512, precision=0, label="Fixed width")
            height = gr.Number(value=512, precision=0, label="Fixed height")
        with gr.Row():
            steps = gr.Number(value=20, precision=0, label="Steps", elem_id="lora_bakery_reg_steps")
            cfg = gr.Number(value=7.0, label="CFG scale")
            sampler = gr.Textbox(value="", label="Sampler (empty: the host's default)")
            seed = gr.Number(value=-1, precision=0, label="Seed (-1: random per image)")
            batch = gr.Number(value=4, precision=0, label="Batch (same-size images per call)")
            reg_repeats = gr.Number(value=0, precision=0, label="Reg folder repeats (0: the concept's)")
        escape = gr.Checkbox(value=ctx.host_name == "a1111", label="Escape ( ) in prompts (A1111 attention syntax)")
    return [mode, remove, class_prompt, prefix, suffix, negative, per_caption, size_mode, resolution, width, height,
            steps, cfg, sampler, seed, batch, reg_repeats, escape]


def build(ctx: UiContext) -> None:
    """Place the Reg images panel (inside the open tab)."""
    slot = common.JobSlot()
    with gr.Row():
        source = gr.Textbox(label="Training folder (holds the N_name concept folders)", scale=4,
                            value=str(ctx.settings.get("dataset_dir") or ""), elem_id="lora_bakery_reg_source")
        output = gr.Textbox(label="Reg folder (empty: reg/ beside train/, else <name>_reg)", scale=4,
                            elem_id="lora_bakery_reg_output")
        suggest_btn = gr.Button("Suggest triggers", scale=1, elem_id="lora_bakery_reg_suggest")
    settings = _settings(ctx)
    with gr.Row():
        preview_btn = gr.Button("Preview", elem_id="lora_bakery_reg_preview")
        existing = gr.Radio(["resume", "overwrite"], value="resume", label="Images already there",
                            info="resume keeps every valid image and makes the rest", elem_id="lora_bakery_reg_existing")
        generate_btn = gr.Button("Generate", variant="primary", elem_id="lora_bakery_reg_generate")
        stop_btn = gr.Button("Interrupt", elem_id="lora_bakery_reg_interrupt")
    progress = gr.HTML("", elem_id="lora_bakery_reg_progress")
    message = gr.Markdown("", elem_id="lora_bakery_reg_message")
    with gr.Accordion("Preview: source, caption, prompt", open=True):
        table = common.dataframe("Reg images to make", ["source", "original caption", "prompt", "size", "reg image",
                                                        "seed"], "lora_bakery_reg_table")
        skipped = common.dataframe("Skipped sources", handlers.SKIPPED_COLUMNS, "lora_bakery_reg_skipped")
    gr.Markdown("#### Review")
    with gr.Row():
        refresh_btn = gr.Button("Show reg images", elem_id="lora_bakery_reg_refresh")
        reroll_btn = gr.Button("Re-roll selected (new seeds)", elem_id="lora_bakery_reg_reroll")
        delete_btn = gr.Button("Delete selected", variant="stop", elem_id="lora_bakery_reg_delete")
    review_msg = gr.Markdown("", elem_id="lora_bakery_reg_review_message")
    gallery = common.gallery("Reg images (click to select)", "lora_bakery_reg_gallery")
    selected = gr.Textbox(label="Selected (one per line)", lines=3, elem_id="lora_bakery_reg_selected")
    paths = gr.State([])

    suggest_btn.click(handlers.suggest, inputs=[source], outputs=[message, settings[1], output])
    preview_btn.click(handlers.preview, inputs=[source, output, *settings], outputs=[message, table, skipped])

    def start(src: str, out: str, how: str, *values: Any):
        yield from handlers.generate(ctx, slot, src, out, how, *values)

    generate_btn.click(start, inputs=[source, output, existing, *settings], outputs=[progress, message, gallery, paths])
    stop_btn.click(lambda: slot.interrupt(ctx), inputs=[], outputs=[message])

    def shown(out: str, src: str):
        from lora_bakery.extension.reg.plan import default_output_dir

        folder = out or (str(default_output_dir(src)) if str(src or "").strip() else "")
        return handlers.review_outputs(folder)

    refresh_btn.click(shown, inputs=[output, source], outputs=[review_msg, gallery, paths])

    def pick(current: str, known: list, evt: gr.SelectData) -> str:
        return handlers.toggle(current, known, evt.index if isinstance(evt.index, int) else None)

    gallery.select(pick, inputs=[selected, paths], outputs=[selected])

    def act(action: str):
        def run(out: str, src: str, chosen: str):
            from lora_bakery.extension.reg.plan import default_output_dir

            folder = out or (str(default_output_dir(src)) if str(src or "").strip() else "")
            yield from handlers.act_on_selection(ctx, slot, action, folder, chosen)

        return run

    reroll_btn.click(act("reroll"), inputs=[output, source, selected], outputs=[progress, review_msg, gallery, paths])
    delete_btn.click(act("delete"), inputs=[output, source, selected], outputs=[progress, review_msg, gallery, paths])
