"""Image prep (convert to PNG, remove alpha, trim, pad to square) and the bucket preview (with the
images as the trainer will see them).

Each image operation: **Preview** (a table of what changes, before/after thumbnails) → **Apply**
(planned again from the files as they are, backed up) → **Undo last change** in the folder row.
Planning decodes the images, so it runs as a job with progress.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from lora_bakery.extension.ui.context import UiContext
from lora_bakery.extension.ui.dataset import common

PREP_OPS = {
    "Convert to PNG (frames, EXIF rotation)": "convert-png",
    "Remove alpha (onto colour)": "remove-alpha",
    "Trim uniform padding": "trim",
    "Pad to square": "pad-square",
}
BUCKET_COLUMNS = ["bucket", "images", "samples_per_epoch"]
FLAG_COLUMNS = ["path", "size", "bucket", "scale", "flags"]
#: Images shown in "What the trainer sees".
VIEW_LIMIT = 24


def _op_outputs(root: str, op: str, params: dict[str, Any], apply: bool, progress: Any) -> tuple[str, Any, Any]:
    """(Markdown, plan table, thumbnail gallery) of previewing or applying ``op``."""
    from lora_bakery.extension.dataset_ops import registry

    if apply:
        done, record = registry.apply(root, op, params, progress=progress)
        return common.plan_markdown(done, record), common.plan_table(done), common.plan_gallery(done.plan)
    done = registry.preview(root, op, params, progress=progress)
    return common.plan_markdown(done), common.plan_table(done), common.plan_gallery(done.plan)


def op_section(ctx: UiContext, slot: common.JobSlot, root: Any, progress: Any, op: Any, inputs: list[Any],
               params_fn: Any, key: str) -> tuple[Any, Any, Any]:
    """Preview/Apply buttons plus result Markdown, table and gallery for one planned operation.

    Args:
        op (`gr.components.Component | str`): component holding the operation name, or the name.
        inputs (`list`): components whose values ``params_fn(*values)`` turns into params.
        key (`str`): elem_id suffix.

    Returns:
        `tuple`: (Markdown, table, gallery) components.
    """
    with gr.Row():
        preview_btn = gr.Button("Preview", elem_id=f"lora_bakery_ds_{key}_preview")
        apply_btn = gr.Button("Apply", variant="primary", elem_id=f"lora_bakery_ds_{key}_apply")
    result = gr.Markdown("", elem_id=f"lora_bakery_ds_{key}_result")
    table = common.dataframe("Changes", common.PLAN_COLUMNS, f"lora_bakery_ds_{key}_table")
    thumbs = common.gallery("Before / after", f"lora_bakery_ds_{key}_thumbs")
    fixed_op = op if isinstance(op, str) else None
    op_inputs = [] if fixed_op else [op]

    def handler(apply: bool):
        def run(path: str, *values: Any):
            name = fixed_op or PREP_OPS.get(values[0], values[0])
            vals = values if fixed_op else values[1:]
            label = ("Apply " if apply else "Preview ") + name
            yield from common.follow(ctx, slot, f"Dataset: {label}",
                                     lambda job: _op_outputs(path, name, params_fn(*vals), apply, job), 4)

        return run

    outputs = [progress, result, table, thumbs]
    preview_btn.click(handler(False), inputs=[root, *op_inputs, *inputs], outputs=outputs)
    apply_btn.click(handler(True), inputs=[root, *op_inputs, *inputs], outputs=outputs)
    return result, table, thumbs


def bucket_outputs(root: str, family: str, resolution: float, lo: float, hi: float, step: float,
                   no_upscale: bool) -> tuple[str, Any, Any]:
    """(Markdown, histogram table, flagged-images table) of the bucket preview."""
    from lora_bakery.extension.dataset.scan import scan
    from lora_bakery.extension.dataset_ops import registry

    params = bucket_params(family, resolution, lo, hi, step, no_upscale)
    _buckets, facts = registry.bucket_facts(scan(registry._root(root)), params)
    flagged = [r for r in facts["rows"] if r["flags"]]
    md = (f"**{len(facts['rows'])} images** in {len(facts['histogram'])} bucket(s); "
          f"{facts['flagged']} flagged (needs upscale / loses detail).")
    return md, common.frame(facts["histogram"], BUCKET_COLUMNS), common.frame(flagged[: common.MAX_ROWS], FLAG_COLUMNS)


def trainer_views(root: str, family: str, resolution: float, lo: float, hi: float, step: float,
                  no_upscale: bool) -> tuple[str, list[tuple[str, str]]]:
    """(Markdown, gallery items): what the trainer will see of the flagged images first, at these settings."""
    from lora_bakery.extension.dataset.bucketing import trainer_views as views
    from lora_bakery.extension.dataset.scan import scan
    from lora_bakery.extension.dataset_ops import registry
    from lora_bakery.extension.ui.dataset import thumbs

    path = registry._root(root)
    buckets, _facts = registry.bucket_facts(scan(path), bucket_params(family, resolution, lo, hi, step, no_upscale))
    items = []
    for row, image in views(path, buckets, VIEW_LIMIT):
        c = row.choice
        note = f" — {row.flags[0].split(':')[0]}" if row.flags else ""
        items.append((thumbs.from_image(image),
                      f"{row.path}: {c.size[0]}x{c.size[1]} → {c.bucket[0]}x{c.bucket[1]} (×{c.scale:.2f}){note}"))
    flagged = len(buckets.flagged())
    md = (f"The first {len(items)} of {len(buckets.rows)} images as the trainer sees them (resized, centre-cropped "
          f"to the bucket); {flagged} flagged image(s) come first.")
    return md, items


def bucket_params(family: str, resolution: float, lo: float, hi: float, step: float, no_upscale: bool) -> dict:
    return {"family": family, "resolution": int(resolution or 0) or None, "min": int(lo or 0) or None,
            "max": int(hi or 0) or None, "step": int(step or 0) or None, "no_upscale": bool(no_upscale)}


def build_prep(ctx: UiContext, slot: common.JobSlot, root: Any, progress: Any) -> None:
    """The Image prep section."""
    gr.Markdown("Each operation previews first; **Apply** backs up every file it changes.")
    op = gr.Radio(list(PREP_OPS), value=next(iter(PREP_OPS)), label="Operation", elem_id="lora_bakery_ds_prep_op")
    with gr.Row():
        color = gr.Textbox(value="#ffffff", label="Colour (remove alpha, pad)", elem_id="lora_bakery_ds_prep_color")
        fuzz = gr.Slider(0, 100, value=20, step=1, label="Trim tolerance % (like -fuzz)", elem_id="lora_bakery_ds_prep_fuzz")
    op_section(ctx, slot, root, progress, op, [color, fuzz], lambda c, f: {"color": c, "fuzz": f}, "prep")


def build_buckets(ctx: UiContext, slot: common.JobSlot, root: Any, progress: Any) -> None:
    """The Buckets section: kohya's exact bucket per image, flags, histogram, optional sort into folders."""
    gr.Markdown("The bucket kohya puts each image in, at your settings, and the images it would upscale "
                "or shrink a lot.")
    with gr.Row():
        family = gr.Radio(["sd15", "sdxl"], value="sd15", label="Model (512² SD1.5, 1024² SDXL)",
                          elem_id="lora_bakery_ds_bucket_family")
        resolution = gr.Number(value=0, label="Resolution (0 = model default)", precision=0)
        lo = gr.Number(value=0, label="Min bucket side (0 = default)", precision=0)
        hi = gr.Number(value=0, label="Max bucket side (0 = default)", precision=0)
        step = gr.Number(value=64, label="Step", precision=0)
        no_upscale = gr.Checkbox(value=False, label="No upscale")
    show = gr.Button("Show buckets", elem_id="lora_bakery_ds_buckets_show")
    md = gr.Markdown("", elem_id="lora_bakery_ds_buckets_result")
    hist = common.dataframe("Histogram (samples per epoch = images × repeats)", BUCKET_COLUMNS,
                            "lora_bakery_ds_buckets_hist")
    flagged = common.dataframe("Flagged images", FLAG_COLUMNS, "lora_bakery_ds_buckets_flagged")
    inputs = [family, resolution, lo, hi, step, no_upscale]
    show.click(common.guarded(3)(bucket_outputs), inputs=[root, *inputs], outputs=[md, hist, flagged])
    with gr.Accordion("What the trainer sees (flagged images first)", open=False):
        views_btn = gr.Button("Show the trainer's view", elem_id="lora_bakery_ds_buckets_views")
        views_md = gr.Markdown("", elem_id="lora_bakery_ds_buckets_views_info")
        views = common.gallery("Resized and cropped to the bucket, as training reads them",
                               "lora_bakery_ds_buckets_views_gallery")
    views_btn.click(common.guarded(2)(trainer_views), inputs=[root, *inputs], outputs=[views_md, views])
    with gr.Accordion("Sort into bucket_WxH subfolders (for review; undoable)", open=False):
        op_section(ctx, slot, root, progress, "sort-buckets", inputs, bucket_params, "bucketsort")
