"""Duplicates (groups with the suggested keeper, move the others to ``_duplicates``) and masks.

Both decode every image, so both run as jobs. Masks need the optional ``masks`` feature
(transparent-background), installed only by its own button (which says what it installs), never by
a preview; a local checkpoint path works offline.
"""

from __future__ import annotations

import html
from typing import Any

import gradio as gr

from lora_bakery.extension.ui.context import UiContext
from lora_bakery.extension.ui.dataset import common
from lora_bakery.extension.ui.dataset.prep import op_section

GROUP_COLUMNS = ["kind", "distance", "keeper", "others", "sizes"]
MASK_COLUMNS = ["image", "mask", "coverage", "flags"]


def duplicate_params(threshold: float, flips: bool, include_similar: bool) -> dict[str, Any]:
    return {"threshold": int(threshold), "flips": bool(flips), "include_similar": bool(include_similar)}


def find_groups(root: str, threshold: float, flips: bool, include_similar: bool, progress: Any) -> tuple:
    """(Markdown, groups table, plan table, keeper gallery) of the duplicate search."""
    from lora_bakery.extension.dataset_ops import registry
    from lora_bakery.extension.ui.dataset import thumbs

    done = registry.preview(root, "move-duplicates", duplicate_params(threshold, flips, include_similar),
                            progress=progress)
    groups = done.extra["groups"]
    rows = [{"kind": g["kind"], "distance": g["distance"], "keeper": g["keeper"], "others": g["others"],
             "sizes": [f"{m['path'].rsplit('/', 1)[-1]} {m['size']} sharp {m['sharpness']}" for m in g["members"]]}
            for g in groups]
    images = []
    for g in groups[: common.MAX_THUMBS]:
        for m in g["members"]:
            path = thumbs.thumbnail(registry._root(root) / m["path"])
            if path:
                tag = "keep" if m["path"] == g["keeper"] else g["kind"]
                images.append((path, f"{m['path']} ({tag})"))
    md = f"**{len(groups)} group(s).** " + common.plan_markdown(done)
    return md, common.frame(rows, GROUP_COLUMNS), common.plan_table(done), images


def build_duplicates(ctx: UiContext, slot: common.JobSlot, root: Any, progress: Any) -> None:
    """The Duplicates section."""
    gr.Markdown("Exact copies and near duplicates (perceptual hash). The keeper is the largest, then the "
                "sharpest image; **Apply** moves the others (with captions) into `_duplicates/`.")
    with gr.Row():
        threshold = gr.Slider(0, 16, value=6, step=1, label="Distance counted as duplicate")
        flips = gr.Checkbox(value=False, label="Mirrored copies count")
        similar = gr.Checkbox(value=False, label="Also move 'similar' (review first)")
    find = gr.Button("Find duplicates", elem_id="lora_bakery_ds_dupes_find")
    md = gr.Markdown("", elem_id="lora_bakery_ds_dupes_result")
    groups = common.dataframe("Groups", GROUP_COLUMNS, "lora_bakery_ds_dupes_groups")
    plan = common.dataframe("Moves", common.PLAN_COLUMNS, "lora_bakery_ds_dupes_plan")
    images = common.gallery("Groups (keeper marked)", "lora_bakery_ds_dupes_thumbs")

    def run(path: str, t: float, f: bool, s: bool):
        yield from common.follow(ctx, slot, "Dataset: find duplicates",
                                 lambda job: find_groups(path, t, f, s, job), 5)

    find.click(run, inputs=[root, threshold, flips, similar], outputs=[progress, md, groups, plan, images])
    op_section(ctx, slot, root, progress, "move-duplicates", [threshold, flips, similar], duplicate_params, "dupes")


def mask_params(mask_dir: str, ckpt: str, mode: str, overwrite: bool) -> dict[str, Any]:
    return {"mask_dir": mask_dir or "masks", "ckpt": ckpt or None, "mode": mode, "overwrite": bool(overwrite)}


def install_masks(progress: Any) -> tuple[str]:
    """Install the masks feature (the button's job): what was missing, then whether it works now."""
    from lora_bakery.extension.dataset import masks

    wanted = masks.install_plan()
    ok, detail = masks.install_feature(log=getattr(progress, "log", None))
    what = ", ".join(wanted) or "nothing was missing"
    return (f"**Masks feature {'ready' if ok else 'unavailable'}** ({html.escape(what)}): {html.escape(detail)}",)


def build_masks(ctx: UiContext, slot: common.JobSlot, root: Any, progress: Any) -> None:
    """The Masks section (transparent-background ``type=map``, same file names, quality flags)."""
    from lora_bakery.extension.dataset import masks

    gr.Markdown("Masks for masked-loss training: one grayscale map per image, same name, in the mask folder "
                "(`masks/` or `masks/10_chara`: never scanned or trained as images). The remover is the optional "
                f"transparent-background package: **{masks.INSTALL_BUTTON}** installs it and the packages it needs "
                "that are missing (installed packages keep their versions; the CLI: "
                f"`{masks.INSTALL_COMMAND}`); its weights download on first use, or give a local checkpoint to work "
                "offline. Flags: all black (nothing found), mostly grey (unsure).")
    install = gr.Button(masks.INSTALL_BUTTON + " (transparent-background)", elem_id="lora_bakery_ds_masks_install")
    installed = gr.Markdown("", elem_id="lora_bakery_ds_masks_installed")

    def run_install():
        yield from common.follow(ctx, slot, "Dataset: install the masks feature", install_masks, 2)

    install.click(run_install, inputs=[], outputs=[progress, installed])
    with gr.Row():
        mask_dir = gr.Textbox(value="masks", label="Mask folder (inside the training folder)")
        ckpt = gr.Textbox(value="", label="Local checkpoint (optional, .pth)")
        mode = gr.Radio(["base", "fast", "base-nightly"], value="base", label="Model")
        overwrite = gr.Checkbox(value=False, label="Overwrite existing masks")
    op_section(ctx, slot, root, progress, "masks", [mask_dir, ckpt, mode, overwrite], mask_params, "masks")
