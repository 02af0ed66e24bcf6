"""What the Reg images tab's buttons do, as plain functions of the panel's values (tested without a browser).

Every function returns new values for its outputs (never ``component.update``), so it runs on gradio
3.41 and 4.x; user mistakes come back as one ``**Error:**`` line (``common.friendly``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from lora_bakery.extension.allowed_folders import remember
from lora_bakery.extension.ui.context import UiContext
from lora_bakery.extension.ui.dataset import common, thumbs

#: The settings inputs, in the order the panel passes them (RegSettings field names).
SETTING_FIELDS = [
    "mode", "remove", "class_prompt", "prefix", "suffix", "negative_prompt", "images_per_caption", "size_mode",
    "resolution", "width", "height", "steps", "cfg_scale", "sampler", "seed", "batch_size", "reg_repeats",
    "escape_parentheses",
]
SKIPPED_COLUMNS = ["source", "reason"]
MAX_GALLERY = 200


def settings_from(values: tuple[Any, ...] | list[Any]) -> Any:
    """``RegSettings`` from the panel values (in :data:`SETTING_FIELDS` order); bad values raise, naming the field."""
    from lora_bakery.extension.reg import RegSettings

    data = dict(zip(SETTING_FIELDS, values))
    if data.get("reg_repeats") in (0, 0.0, "", None):
        data["reg_repeats"] = None
    return RegSettings.from_dict(data)


def suggest(source: str) -> tuple[str, str, str]:
    """(message, remove list, output folder) for a training folder: its leading tags and the default reg folder."""
    from lora_bakery.extension.reg.plan import default_output_dir
    from lora_bakery.extension.reg.report import suggest_remove

    if not str(source or "").strip():
        return common.friendly(ValueError("enter the training folder first")), gr.update(), gr.update()
    try:
        tags = suggest_remove(source)
        out = str(default_output_dir(source))
    except Exception as exc:  # noqa: BLE001 - shown
        return common.friendly(exc), gr.update(), gr.update()
    found = ", ".join(f"`{t}`" for t in tags) or "none (no |||-fixed or common leading tags)"
    return f"Suggested triggers to remove: {found}. Edit the list: add every tag you do not want regulated.", \
        ", ".join(tags), out


def preview(source: str, output: str, *values: Any) -> tuple[str, Any, Any]:
    """(plan summary, preview table, skipped table) without generating anything."""
    from lora_bakery.extension.reg import plan_reg, report

    try:
        plan = plan_reg(_required(source), output or None, settings_from(values))
    except Exception as exc:  # noqa: BLE001 - shown
        return common.friendly(exc), gr.update(), gr.update()
    remember(plan.output)  # the default reg folder beside the source, when none was typed
    return (report.plan_markdown(plan), common.frame(report.plan_rows(plan, common.MAX_ROWS), report.PREVIEW_COLUMNS),
            common.frame(report.skipped_rows(plan), SKIPPED_COLUMNS))


def _required(source: str) -> str:
    """The folder typed in (training or reg folder); the API may use it from now on."""
    if not str(source or "").strip():
        raise ValueError("enter the training folder first")
    remember(str(source).strip())
    return str(source).strip()


def _host(ctx: UiContext) -> Any:
    if ctx.host_factory is None:
        raise ValueError("no model is available here: load a checkpoint first")
    return ctx.host_factory()


def gallery_items(output: str) -> tuple[list[tuple[str, str]], list[str]]:
    """Gallery thumbnails ``(file, caption)`` of a reg folder and the matching image paths (relative)."""
    from lora_bakery.extension.reg.review import list_images

    rows = [r for r in list_images(output) if r.exists][:MAX_GALLERY]
    items, paths = [], []
    for row in rows:
        thumb = thumbs.thumbnail(Path(output).expanduser().resolve() / row.path)
        if thumb:
            items.append((thumb, f"{row.path} · seed {row.seed}{' · re-rolled' if row.rerolls else ''}"))
            paths.append(row.path)
    return items, paths


def review_outputs(output: str, message: str = "") -> tuple[str, Any, list[str]]:
    """(message, gallery, paths state) for the review section."""
    try:
        items, paths = gallery_items(_required(output))
    except Exception as exc:  # noqa: BLE001 - shown
        return common.friendly(exc), gr.update(), []
    text = message or f"{len(paths)} reg image(s). Click images to select them, then re-roll or delete."
    return text, items, paths


def generate(ctx: UiContext, slot: common.JobSlot, source: str, output: str, existing: str,
             *values: Any) -> Iterator[tuple]:
    """Run the reg generation as a job; yields (progress, result, gallery, paths)."""
    from lora_bakery.extension.reg.report import run_generation

    try:
        settings = settings_from(values)
        src = _required(source)
        host = _host(ctx)
    except Exception as exc:  # noqa: BLE001 - shown
        yield "", common.friendly(exc), gr.update(), gr.update()
        return

    def work(job: Any) -> tuple:
        result = run_generation(job, host, src, output or None, settings, existing)
        _msg, items, paths = review_outputs(result["output"])
        notes = "".join(f"\n\n- {n}" for n in result["notes"])
        return result["summary"] + notes, items, paths

    yield from common.follow(ctx, slot, "Reg images", work, 4, exclusive=True)


def act_on_selection(ctx: UiContext, slot: common.JobSlot, action: str, output: str, selected: str) -> Iterator[tuple]:
    """Re-roll or delete the selected images; yields (progress, message, gallery, paths)."""
    from lora_bakery.extension.reg.report import run_delete, run_reroll

    paths = [p.strip() for p in str(selected or "").splitlines() if p.strip()]
    if not paths:
        yield "", common.friendly(ValueError("select images in the gallery first")), gr.update(), gr.update()
        return
    if action == "delete":
        try:
            result = run_delete(_required(output), paths)
        except Exception as exc:  # noqa: BLE001 - shown
            yield "", common.friendly(exc), gr.update(), gr.update()
            return
        yield ("", *review_outputs(output, result["summary"]))
        return
    try:
        host = _host(ctx)
        out = _required(output)
    except Exception as exc:  # noqa: BLE001 - shown
        yield "", common.friendly(exc), gr.update(), gr.update()
        return

    def work(job: Any) -> tuple:
        result = run_reroll(job, host, out, paths)
        return review_outputs(out, result["summary"])

    yield from common.follow(ctx, slot, "Reg images: re-roll", work, 4, exclusive=True)


def toggle(selected: str, paths: list[str], index: int | None) -> str:
    """Add the clicked image to the selection, or remove it when it was selected."""
    if index is None or not paths or index >= len(paths):
        return selected
    chosen = [p for p in str(selected or "").splitlines() if p.strip()]
    path = paths[index]
    chosen = [p for p in chosen if p != path] if path in chosen else [*chosen, path]
    return "\n".join(chosen)
