"""Demo stage ``compare``: an epoch × weight grid and the block heatmap of the demo LoRA.

Uses the Bake stage's output folder (``ctx.artifacts["lora_dir"]``, or the folder of
``ctx.artifacts["lora"]``); when Bake did not run (``bakery demo --only compare``) or failed, a
3-epoch LoCon with random weights is written on the tiny model with the trainer's own adapters and
saver, so the stage still shows the whole Compare path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _run_files(ctx: Any) -> tuple[list[Any], str]:
    from lora_bakery.extension.compare import list_epochs
    from lora_bakery.extension.compare.synthetic import make_epoch_files

    folder = ctx.artifacts.get("lora_dir")
    lora = ctx.artifacts.get("lora")
    if not folder and lora:
        folder = str(Path(lora).parent)
    if folder and Path(folder).is_dir():
        files = list_epochs(folder, name=Path(lora).stem if lora else None) or list_epochs(folder)
        if files:
            return files, "bake"
    made = ctx.stage_dir("compare") / "synthetic-run"
    make_epoch_files(ctx.host.views(), made, name="demo-locon", epochs=3, kind="locon")
    return list_epochs(made), "synthetic"


def run(ctx: Any) -> dict[str, Any]:
    """Render the grid (epochs across, weights 0/0.5/1 down) and the per-block norm plot."""
    from lora_bakery.extension.compare import Axis, GridSpec, block_norms, plot_block_norms, run_grid

    folder = ctx.stage_dir("compare")
    files, source = _run_files(ctx)
    files = files[-3:]
    spec = GridSpec(
        prompt="a photo of a cat", seed=1234, width=64, height=64, steps=4,
        x=Axis("epoch", [str(f.path) for f in files], [f.label for f in files]),
        y=Axis("weight", [0.0, 0.5, 1.0]),
    )
    result = run_grid(ctx.host, spec, folder / "grid")
    norms = block_norms([f.path for f in files], [f.label for f in files])
    heatmap = plot_block_norms(norms, folder / "block-norms.png", title=f"{files[-1].name}: per-block ‖ΔW‖")
    top = max(zip(norms.blocks, (row[-1] for row in norms.values)), key=lambda x: x[1], default=("", 0.0))
    return {
        "outputs": [result.grid, heatmap, folder / "grid" / "grid.json"],
        "lora_source": source,
        "epochs": [f.label for f in files],
        "cells": len(result.cells),
        "blocks": len(norms.blocks),
        "strongest_block": top[0],
    }
