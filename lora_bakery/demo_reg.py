"""``bakery demo`` stage ``reg``: reg images for the dataset stage's folder with the tiny model.

Uses ``ctx.artifacts["dataset_dir"]`` when the dataset stage ran, else writes three small captioned
images of its own. The triggers come from the dataset (its ``|||``-fixed leading tags), images are
64×64 buckets at 2 steps, and a second run shows resume (everything valid is kept). The reg folder
goes to ``ctx.artifacts["reg_dir"]`` so a bake can use it as ``reg_data_dir``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from PIL import Image

#: Fallback dataset: (name, colour, caption).
FALLBACK = [
    ("red", (220, 30, 30), "bakery_concept, ||| red_theme, simple_background"),
    ("green", (30, 200, 40), "bakery_concept, ||| green_theme, simple_background"),
    ("blue", (30, 40, 220), "bakery_concept, ||| blue_theme"),
]


def make_fallback(root: Path) -> Path:
    """Three 96×96 captioned images in ``root/10_concept``."""
    folder = root / "10_concept"
    folder.mkdir(parents=True, exist_ok=True)
    for name, colour, caption in FALLBACK:
        Image.new("RGB", (96, 96), colour).save(folder / f"{name}.png")
        (folder / f"{name}.txt").write_text(caption, encoding="utf-8")
    return root


def run(ctx: Any) -> dict[str, Any]:
    """The stage: see the module docstring.

    Args:
        ctx (`DemoContext`): ``stage_dir("reg")`` is written; ``artifacts["reg_dir"]`` is set.

    Returns:
        `dict`: ``outputs`` (reg images, captions, manifest), ``images``, ``skipped``, ``removed``
        (the triggers), ``sizes``, ``seconds_per_image``, ``resumed_kept``.
    """
    from lora_bakery.extension.reg import RegSettings, generate_reg, plan_reg
    from lora_bakery.extension.reg.report import suggest_remove

    stage = ctx.stage_dir("reg")
    source = ctx.artifacts.get("dataset_dir")
    if not source or not Path(source).is_dir():
        source = str(make_fallback(stage / "train"))
    out = stage / "reg"
    if out.exists():
        shutil.rmtree(out)  # our own output from an earlier run
    settings = RegSettings(remove=suggest_remove(source), resolution=64, steps=2, cfg_scale=1.0, seed=1234,
                           negative_prompt="lowres", batch_size=4)
    plan = plan_reg(source, out, settings)
    run_ = generate_reg(ctx.host, plan)
    again = generate_reg(ctx.host, plan_reg(source, out, settings))  # resume: nothing left to make
    ctx.artifacts["reg_dir"] = str(out)
    files = sorted(p for p in out.rglob("*") if p.is_file())
    return {
        "outputs": [str(p) for p in files],
        "images": len(run_.generated),
        "skipped": [f"{s}: {r}" for s, r in plan.skipped],
        "removed": settings.remove,
        "sizes": {f"{w}x{h}": n for (w, h), n in plan.sizes().items()},
        "seconds_per_image": round(run_.seconds / max(1, len(run_.generated)), 3),
        "resumed_kept": len(again.kept),
    }
