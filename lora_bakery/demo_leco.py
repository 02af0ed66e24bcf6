"""``bakery demo`` stage ``leco``: a few steps of concept-slider training on the tiny model.

Trains a slider from prompts alone (no images), saves every 3 steps with a preview grid at the
weights −2, 0, +2 rendered through the host, and reports the losses, the change of the extreme
previews between saves (the "done" hint's metric) and the files. The final slider goes to
``ctx.artifacts["leco"]`` for the stages after it.
"""

from __future__ import annotations

import shutil
from typing import Any

DEMO_CONFIG: dict[str, Any] = {
    "prompts": [{
        "target": "a photo of a dog",
        "positive": "a photo of a dog, long fur",
        "unconditional": "a photo of a dog, short fur",
        "neutral": "a photo of a dog",
        "resolution": 64,
        "guidance_scale": 2.0,
    }],
    "anchors": [{"prompt": "a photo of a cat", "weight": 0.5}],
    "network": {"dim": 4, "alpha": 1.0, "modules": "xattn"},
    "training": {"steps": 6, "lr": 1e-2, "precision": "fp32", "max_denoising_steps": 4, "seed": 1},
    "saving": {"output_name": "demo_slider", "save_every": 3, "overwrite": True},
    "preview": {"multipliers": [-2.0, 0.0, 2.0], "width": 64, "height": 64, "steps": 4, "seed": 7},
}


def run(ctx: Any) -> dict[str, Any]:
    """The stage: see the module docstring.

    Args:
        ctx (`DemoContext`): ``ctx.host`` (a DiffusersHost on the tiny model) and the artifacts.

    Returns:
        `dict`: ``outputs`` (slider files, preview grids, config), ``steps``, ``losses``,
        ``extreme_changes``, ``done_hint`` and ``notes``.
    """
    from lora_bakery.cli.leco import host_previewer
    from lora_bakery.trainer.leco import LecoConfig, train_leco

    stage = ctx.stage_dir("leco")
    out = stage / "out"
    if out.exists():
        shutil.rmtree(out)  # our own output from an earlier run
    data = {**DEMO_CONFIG, "saving": {**DEMO_CONFIG["saving"], "output_dir": str(out)}}
    config = LecoConfig.from_dict(data)
    with ctx.host.exclusive():
        result = train_leco(config, ctx.host.model(), previewer=host_previewer(ctx.host), views=ctx.host.views())
    config_path = config.save(stage / "leco.toml")
    ctx.artifacts["leco"] = str(result.final)
    return {
        "outputs": [str(p) for p in [*result.files, *result.previews, config_path]],
        "steps": result.steps,
        "losses": [round(v, 5) for v in result.losses],
        "extreme_changes": [{"step": s, "change": round(c, 4)} for s, c in result.changes],
        "done_hint": result.done_hint,
        "seconds": round(result.seconds, 2),
        "notes": result.messages,
    }
