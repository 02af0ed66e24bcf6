"""What the Compare tab's buttons do, as plain functions of the panel's values (tested without a browser).

Every function returns new values for its outputs (never ``component.update``), so it runs on gradio
3.41 and 4.x; user mistakes come back as one ``**Error:**`` line. Grids and the image analyzer use
the model and run on the job queue (progress, interrupt, live preview); norms, presets and baking
answer at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from lora_bakery.extension.allowed_folders import remember
from lora_bakery.extension.ui.context import UiContext
from lora_bakery.extension.ui.dataset import common

AXIS_CHOICES = ["none", "epoch", "weight", "te_weight", "unet_weight", "blocks", "prompt_sr", "seed", "cfg"]
EPOCH_COLUMNS = ["file", "epoch", "step", "network", "base", "hash"]


def presets_path(ctx: UiContext) -> str | None:
    return ctx.settings.get("compare_presets_file") or None


def scan(folder: str) -> tuple[str, Any, Any]:
    """(message, epoch table, epoch checklist update) for a training output folder."""
    from lora_bakery.extension.compare import list_epochs

    try:
        files = list_epochs(_required(folder, "the training output folder"))
    except Exception as exc:  # noqa: BLE001 - shown
        return common.friendly(exc), gr.update(), gr.update()
    remember(folder)  # the API may use the folder opened here
    labels = [f"{f.label} · {f.path.name}" for f in files]
    return (f"{len(files)} LoRA file(s) in `{folder}`.", common.frame([f.summary() for f in files], EPOCH_COLUMNS),
            gr.update(choices=labels, value=labels[-3:]))


def _required(value: str, what: str) -> str:
    if not str(value or "").strip():
        raise ValueError(f"enter {what} first")
    return str(value).strip()


def _chosen_files(folder: str, chosen: list[str]) -> list[tuple[str, str]]:
    """(path, label) of the checked epochs (all when none is checked)."""
    from lora_bakery.extension.compare import list_epochs

    files = list_epochs(_required(folder, "the training output folder"))
    names = {c.split(" · ", 1)[-1] for c in chosen or []}
    picked = [f for f in files if not names or f.path.name in names]
    if not picked:
        raise ValueError("check at least one epoch")
    return [(str(f.path), f.label) for f in picked]


def _axis(kind: str, text: str, files: list[tuple[str, str]]) -> dict[str, Any] | None:
    if not kind or kind == "none":
        return None
    if kind == "epoch":
        return {"kind": "epoch", "values": [p for p, _ in files], "labels": [lab for _, lab in files]}
    items = [t.strip() for t in str(text or "").split("|" if kind in ("blocks", "prompt_sr") else ",") if t.strip()]
    if not items:
        raise ValueError(f"the {kind} axis needs values")
    if kind == "seed":
        return {"kind": kind, "values": [int(float(t)) for t in items]}
    if kind in ("blocks", "prompt_sr"):
        return {"kind": kind, "values": items}
    return {"kind": kind, "values": [float(t) for t in items]}


def grid_spec(ctx: UiContext, folder: str, chosen: list[str], prompt: str, negative: str, seed: float,
              steps: float, width: float, height: float, cfg: float, sampler: str, weight: float, blocks: str,
              xk: str, xv: str, yk: str, yv: str, zk: str, zv: str) -> Any:
    """The ``GridSpec`` for the panel values (the LoRA without an epoch axis: the last checked epoch)."""
    from lora_bakery.extension.compare import load_presets
    from lora_bakery.extension.compare.jobs import spec_from_dict

    files = _chosen_files(folder, chosen)
    axes = [_axis(k, v, files) for k, v in ((xk, xv), (yk, yv), (zk, zv))]
    return spec_from_dict({
        "prompt": prompt, "negative_prompt": negative or "", "seed": int(seed), "steps": int(steps),
        "width": int(width), "height": int(height), "cfg_scale": float(cfg), "sampler": sampler or None,
        "weight": float(weight), "blocks": blocks.strip() or None if blocks else None, "lora": files[-1][0],
        "x": axes[0], "y": axes[1], "z": axes[2], "presets": load_presets(presets_path(ctx)),
    })


def run_grid(ctx: UiContext, slot: common.JobSlot, out_root: str, *values: Any) -> Iterator[tuple]:
    """Render the grid as a job; yields (progress, message, grid image, cells gallery, grid file, cells state)."""
    from lora_bakery.extension.compare import plan_cells
    from lora_bakery.extension.compare.jobs import grid_job

    try:
        spec = grid_spec(ctx, *values)
        cells = len(plan_cells(spec))
        if ctx.host_factory is None:
            raise ValueError("no model is available here: load a checkpoint first")
        host = ctx.host_factory()
        out = Path(out_root or "outputs/lora_bakery/compare") / _stamp()
    except Exception as exc:  # noqa: BLE001 - shown
        yield "", common.friendly(exc), gr.update(), gr.update(), gr.update(), gr.update()
        return

    def work(job: Any) -> tuple:
        result = grid_job(job, host, spec, out)
        gallery = [(str(out / c["file"]), c["txt2img_prompt"]) for c in result["cells"] if c["file"]]
        note = " (interrupted: grey cells were not rendered)" if result["interrupted"] else ""
        return (f"{len(gallery)}/{cells} cells → `{result['grid']}`{note}", result["grid"], gallery,
                result["grid"], result["cells"])

    yield from common.follow(ctx, slot, "Compare grid", work, 6, exclusive=True)


def _stamp() -> str:
    import time

    return time.strftime("%Y%m%d-%H%M%S")


def cell_prompt(cells: list[dict[str, Any]], index: int | None) -> tuple[str, str]:
    """(txt2img prompt with the ``<lora:…>`` tag, A1111 infotext) of a clicked cell; empty when none."""
    rendered = [c for c in cells or [] if c.get("file")]
    if index is None or not 0 <= index < len(rendered):
        return "", ""
    return rendered[index]["txt2img_prompt"], rendered[index].get("infotext", "")


def norms(folder: str, chosen: list[str], out_root: str) -> tuple[str, Any, Any]:
    """(message, heatmap image, PNG file) of per-block ‖ΔW‖ for the checked epochs."""
    from lora_bakery.extension.compare import block_norms, plot_block_norms

    try:
        files = _chosen_files(folder, chosen)
        result = block_norms([p for p, _ in files], [lab for _, lab in files])
        png = plot_block_norms(result, Path(out_root or "outputs/lora_bakery/compare") / "block-norms.png")
    except Exception as exc:  # noqa: BLE001 - shown
        return common.friendly(exc), gr.update(), gr.update()
    top = sorted(zip(result.blocks, (r[-1] for r in result.values)), key=lambda x: -x[1])[:3]
    note = f" ({len(result.skipped)} IA3/OFT layers skipped)" if result.skipped else ""
    return "Strongest blocks in the last epoch: " + ", ".join(f"{b} {v:.2f}" for b, v in top) + note, str(png), str(png)


def effect(ctx: UiContext, slot: common.JobSlot, folder: str, chosen: list[str], out_root: str, prompt: str,
           negative: str, seed: float, steps: float, width: float, height: float, low: float) -> Iterator[tuple]:
    """Image-space analyzer on the last checked epoch; yields (progress, message, chart, sheet)."""
    from lora_bakery.extension.compare.jobs import effect_job
    from lora_bakery.extension.host.base import GenerationRequest

    try:
        lora = _chosen_files(folder, chosen)[-1][0]
        if ctx.host_factory is None:
            raise ValueError("no model is available here: load a checkpoint first")
        host = ctx.host_factory()
        req = GenerationRequest(prompt=_required(prompt, "a prompt"), negative_prompt=negative or "", seed=int(seed),
                                steps=int(steps), width=int(width), height=int(height))
        out = Path(out_root or "outputs/lora_bakery/compare") / f"effect-{_stamp()}"
    except Exception as exc:  # noqa: BLE001 - shown
        yield "", common.friendly(exc), gr.update(), gr.update()
        return

    def work(job: Any) -> tuple:
        result = effect_job(job, host, lora, req, out, low=float(low))
        lines = ", ".join(f"{b} {p:.1f}%" for b, p in zip(result["blocks"], result["percents"]))
        return f"Changed pixels per lowered block: {lines}", result["chart"], result["sheet"]

    yield from common.follow(ctx, slot, "Block analyzer", work, 4, exclusive=True)


def load_presets_text(ctx: UiContext) -> str:
    from lora_bakery.extension.compare import load_presets
    from lora_bakery.extension.compare.presets import format_presets

    return format_presets(load_presets(presets_path(ctx)))


def save_presets_text(ctx: UiContext, text: str) -> tuple[str, Any]:
    """(message, preset dropdown update) after saving the user presets file."""
    from lora_bakery.extension.compare import load_presets, parse_presets, save_presets
    from lora_bakery.extension.compare.presets import DEFAULT_PRESETS

    path = presets_path(ctx)
    try:
        if not path:
            raise ValueError("no presets file is configured (setting compare_presets_file)")
        parsed = parse_presets(text)
        save_presets(path, {k: v for k, v in parsed.items() if DEFAULT_PRESETS.get(k) != v})
    except Exception as exc:  # noqa: BLE001 - shown
        return common.friendly(exc), gr.update()
    return f"Saved {len(parsed)} preset(s) to `{path}`.", gr.update(choices=list(load_presets(path)))


def bake(ctx: UiContext, folder: str, chosen: list[str], blocks: str, rebase_from: float, rebase_to: float,
         drop_zero: bool, output: str) -> tuple[str, Any]:
    """(message, new file) — bake block weights into a copy of the last checked epoch."""
    from lora_bakery.extension.compare import bake_block_weights, load_presets, resolve_blocks

    try:
        source = _chosen_files(folder, chosen)[-1][0]
        preset = _required(blocks, "a block preset or vector")
        weights = resolve_blocks(preset, load_presets(presets_path(ctx)))
        rebase = (rebase_from, rebase_to) if rebase_from and rebase_to and rebase_from != rebase_to else (None, None)
        label = preset if preset.replace("_", "").replace(".", "").isalnum() else "custom"
        result = bake_block_weights(source, weights, output.strip() or None if output else None, label=label,
                                    rebase_from=rebase[0], rebase_to=rebase[1], drop_zero_blocks=bool(drop_zero))
    except Exception as exc:  # noqa: BLE001 - shown
        return common.friendly(exc), gr.update()
    return (f"Baked `{result.path.name}`: {result.layers} layers, {result.dropped_layers} dropped, "
            f"rebase ×{result.rebase:g}. The original is unchanged.", str(result.path))
