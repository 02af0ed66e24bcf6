"""Repeats balancer (recipe → ``N_name`` per folder, steps table; apply = renames) and the backups list."""

from __future__ import annotations

from typing import Any

import gradio as gr

from lora_bakery.extension.ui.context import UiContext
from lora_bakery.extension.ui.dataset import common

REPEAT_COLUMNS = ["folder", "images", "role", "repeats", "new_name", "steps_per_epoch", "total_steps",
                  "optimizer_steps_per_epoch", "notes"]
BACKUP_COLUMNS = ["name", "op", "created", "status", "changes"]


def recipe_params(optimizer: str, family: str, ip_noise: bool, old_anime: bool, epochs: float, concept: float,
                  sub: float, batch: float, subconcepts: str) -> dict[str, Any]:
    """The repeats params; ``subconcepts`` lists the outfit (sub-concept) folders, comma-separated."""
    from lora_bakery.extension.dataset_ops.caption_ops import as_list

    return {"optimizer": optimizer, "family": family, "ip_noise_min_snr": ip_noise, "old_anime": old_anime,
            "epochs": int(epochs or 8), "concept_steps": int(concept or 300), "subconcept_steps": int(sub or 100),
            "batch_size": int(batch or 1), "roles": {name: "subconcept" for name in as_list(subconcepts)}}


def repeats_outputs(root: str, apply: bool, *values: Any) -> tuple[str, Any]:
    """(Markdown, table) of the balance; with ``apply`` the folders are renamed (backed up)."""
    from lora_bakery.extension.dataset_ops import registry

    params = recipe_params(*values)
    if apply:
        done, record = registry.apply(root, "repeats", params)
    else:
        done, record = registry.preview(root, "repeats", params), None
    extra = done.extra
    md = (f"All folders together: **{extra['main_per_epoch']}** steps per epoch, **{extra['main_total']}** in "
          f"{extra['epochs']} epochs.\n\n" + common.plan_markdown(done, record))
    return md, common.frame(extra["rows"], REPEAT_COLUMNS)


def build_repeats(ctx: UiContext, root: Any) -> None:
    """The Repeats section."""
    gr.Markdown("Suggests `N_name` for every folder so each concept gets the recipe's steps per epoch "
                "(Prodigy ~300 per concept, ~100 per outfit; AdamW doubles; ×3/5 with ip-noise + min-SNR, "
                "×1/2 SDXL, ×1/3 old anime). **Apply** renames the folders (undoable).")
    with gr.Row():
        optimizer = gr.Radio(["prodigy", "adamw"], value="prodigy", label="Optimizer")
        family = gr.Radio(["sd15", "sdxl"], value="sd15", label="Model")
        ip_noise = gr.Checkbox(value=False, label="ip-noise + min-SNR (×3/5)")
        old_anime = gr.Checkbox(value=False, label="Old anime / screencaps (×1/3)")
    with gr.Row():
        epochs = gr.Number(value=8, label="Epochs", precision=0)
        concept = gr.Number(value=300, label="Steps/epoch per concept (Prodigy)", precision=0)
        sub = gr.Number(value=100, label="Steps/epoch per outfit (Prodigy)", precision=0)
        batch = gr.Number(value=1, label="Batch size", precision=0)
    subconcepts = gr.Textbox(label="Outfit (sub-concept) folders, comma-separated", elem_id="lora_bakery_ds_rep_sub")
    with gr.Row():
        preview_btn = gr.Button("Suggest", elem_id="lora_bakery_ds_rep_preview")
        apply_btn = gr.Button("Apply (rename folders)", variant="primary", elem_id="lora_bakery_ds_rep_apply")
    md = gr.Markdown("", elem_id="lora_bakery_ds_rep_result")
    table = common.dataframe("Repeats per folder", REPEAT_COLUMNS, "lora_bakery_ds_rep_table")
    inputs = [optimizer, family, ip_noise, old_anime, epochs, concept, sub, batch, subconcepts]
    preview_btn.click(common.guarded(2)(lambda path, *v: repeats_outputs(path, False, *v)), inputs=[root, *inputs],
                      outputs=[md, table])
    apply_btn.click(common.guarded(2)(lambda path, *v: repeats_outputs(path, True, *v)), inputs=[root, *inputs],
                    outputs=[md, table])


def backups_outputs(root: str) -> tuple[str, Any, Any]:
    """(Markdown, backups table, backup choices update) for ``root``."""
    from lora_bakery.extension.dataset_ops import registry

    rows = registry.backup_rows(root)
    names = [r["name"] for r in rows if r["status"] == "applied"]
    md = f"{len(rows)} backup(s) in `.bakery/backups`; {len(names)} can be undone (newest first)."
    return md, common.frame(rows, BACKUP_COLUMNS), gr.update(choices=names, value=names[0] if names else None)


def undo_named(root: str, name: str, force: bool) -> str:
    from lora_bakery.extension.dataset_ops import registry

    if not name:
        raise ValueError("choose a backup first (press Refresh)")
    from lora_bakery.extension.dataset.safety import undo_message

    rec = registry.undo(root, name, force=force)
    return undo_message(rec, "**Undo last change**")


def build_backups(ctx: UiContext, root: Any) -> Any:
    """The Backups section: every backup of the folder, undo any applied one.

    Returns:
        the Undo click event (the tab chains the caption editor's refresh on it).
    """
    gr.Markdown("Every applied change keeps a backup of the files it touched. Undo restores them byte for byte; "
                "it refuses when a file was edited after the change (tick *force* to undo anyway: those later "
                "edits are backed up first, so undoing the undo brings them back).")
    refresh = gr.Button("Refresh", elem_id="lora_bakery_ds_backups_refresh")
    md = gr.Markdown("", elem_id="lora_bakery_ds_backups_info")
    table = common.dataframe("Backups", BACKUP_COLUMNS, "lora_bakery_ds_backups_table")
    with gr.Row():
        choice = gr.Dropdown([], label="Backup to undo", elem_id="lora_bakery_ds_backup_choice")
        force = gr.Checkbox(value=False, label="force")
        undo_btn = gr.Button("Undo this backup", elem_id="lora_bakery_ds_backup_undo")
    result = gr.Markdown("", elem_id="lora_bakery_ds_backup_result")
    refresh.click(common.guarded(3)(backups_outputs), inputs=[root], outputs=[md, table, choice])
    undone = undo_btn.click(common.guarded(1)(undo_named), inputs=[root, choice, force], outputs=[result])
    undone.then(common.guarded(3)(backups_outputs), inputs=[root], outputs=[md, table, choice])
    return undone
