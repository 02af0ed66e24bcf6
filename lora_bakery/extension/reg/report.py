"""Reg plans and runs as rows, Markdown and JSON, and the job bodies the tab, CLI and API share."""

from __future__ import annotations

import os
from typing import Any

from lora_bakery.extension.host.base import Host, Progress
from lora_bakery.extension.reg.generate import RegRun, generate_reg
from lora_bakery.extension.reg.plan import RegPlan, concept_folders, plan_reg, read_training_caption
from lora_bakery.extension.reg.prompts import suggest_triggers
from lora_bakery.extension.reg.review import delete, reroll
from lora_bakery.extension.reg.settings import RegSettings
from lora_bakery.trainer.data import folders

PREVIEW_COLUMNS = ["source", "original caption", "prompt", "size", "reg image", "seed"]
SKIPPED_COLUMNS = ["source", "reason"]


def plan_rows(plan: RegPlan, limit: int | None = None) -> list[dict[str, Any]]:
    """One row per planned image: source, original caption, prompt, size, reg path, seed."""
    items = plan.items if not limit else plan.items[:limit]
    return [{"source": i.source_rel, "original caption": i.original, "prompt": i.prompt,
             "size": f"{i.width}x{i.height}", "reg image": i.out_rel, "seed": i.seed} for i in items]


def skipped_rows(plan: RegPlan) -> list[dict[str, Any]]:
    """One row per source image left out, with the reason."""
    return [{"source": s, "reason": r} for s, r in plan.skipped]


def plan_dict(plan: RegPlan, limit: int | None = None) -> dict[str, Any]:
    """The plan as JSON (API, ``bakery reg --json``)."""
    return {
        "source": str(plan.source), "output": str(plan.output), "images": len(plan.items),
        "sizes": {f"{w}x{h}": n for (w, h), n in sorted(plan.sizes().items())},
        "folders": [{"concept": c, "reg": r, "images": n} for c, r, n in plan.folders],
        "skipped": skipped_rows(plan), "warnings": plan.warnings, "settings": plan.settings.to_dict(),
        "rows": plan_rows(plan, limit),
    }


def plan_markdown(plan: RegPlan) -> str:
    """A short summary of the plan (counts, sizes, folders, skipped, warnings)."""
    sizes = ", ".join(f"{w}×{h}: {n}" for (w, h), n in sorted(plan.sizes().items())) or "none"
    folder_list = ", ".join(f"`{c}` → `{r}` ({n})" for c, r, n in plan.folders) or "none"
    lines = [f"**{len(plan.items)} reg image(s)** into `{_md(str(plan.output))}`",
             f"Folders: {folder_list}", f"Sizes: {sizes}"]
    if plan.skipped:
        lines.append(f"**{len(plan.skipped)} source image(s) skipped**, each with its reason.")
    lines += [f"- {_md(w)}" for w in plan.warnings]
    return "\n\n".join(lines)


def _md(text: str) -> str:
    """Text safe inside Markdown (no HTML tags), still readable in a terminal."""
    return text.replace("<", "&lt;").replace(">", "&gt;")


def source_captions(source: str | os.PathLike) -> list[str]:
    """The training captions of a folder's concept folders (unreadable/missing ones left out)."""
    from pathlib import Path

    src = Path(source).expanduser().resolve()
    concepts, _ = concept_folders(src)
    out = []
    for concept in concepts:
        for image in folders.list_images(concept):
            caption, _reason = read_training_caption(image)
            if caption:
                out.append(caption)
    return out


def suggest_remove(source: str | os.PathLike) -> list[str]:
    """Trigger tags to pre-fill the remove list: the dataset's frequent leading tags."""
    return suggest_triggers(source_captions(source))


def run_generation(progress: Progress | None, host: Host, source: str, output: str | None,
                   settings: RegSettings | dict[str, Any], existing: str = "resume") -> dict[str, Any]:
    """Job body: plan and generate; returns the run as JSON plus the plan's size.

    Args:
        progress (`Progress`, *optional*): the job context.
        host (`Host`): the model to generate with.
        source (`str`) / output (`str`, *optional*): training folder and reg folder.
        settings (`RegSettings | dict`): options (a dict goes through ``RegSettings.from_dict``).
        existing (`str`, *optional*): ``"resume"``, ``"overwrite"`` or ``"error"``.

    Returns:
        `dict`: :meth:`RegRun.to_dict` plus ``planned``.
    """
    if not isinstance(settings, RegSettings):
        settings = RegSettings.from_dict(settings)
    plan = plan_reg(source, output or None, settings)
    if not plan.items:
        reasons = "; ".join(f"{s}: {r}" for s, r in plan.skipped[:3])
        raise ValueError("nothing to generate: every source image was skipped" + (f" ({reasons})" if reasons else ""))
    run: RegRun = generate_reg(host, plan, progress, existing=existing)
    return {**run.to_dict(), "planned": len(plan.items)}


def run_reroll(progress: Progress | None, host: Host, output: str, paths: list[str],
               seeds: list[int] | None = None) -> dict[str, Any]:
    """Job body: re-roll images of a reg folder; returns the result as JSON with a summary."""
    result = reroll(host, output, paths, progress, seeds)
    return {**result.to_dict(), "summary": result.summary("Re-rolled")}


def run_delete(output: str, paths: list[str]) -> dict[str, Any]:
    """Delete images of a reg folder; returns the result as JSON with a summary."""
    result = delete(output, paths)
    return {**result.to_dict(), "summary": result.summary("Deleted")}
