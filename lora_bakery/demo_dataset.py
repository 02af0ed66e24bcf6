"""``bakery demo`` stage ``dataset``: make a small dataset, tag it, add a trigger, balance repeats.

Runs the same operations as the Dataset tab and ``bakery dataset`` (``dataset_ops.registry``) on a
generated folder: six colour images in ``10_concept`` (one with transparency, one JPEG), the tiny
ONNX tagger written into the stage folder, the trigger ``bakery_concept`` with ``|||``, and the
repeats balancer's rename. The folder goes to ``ctx.artifacts["dataset_dir"]`` for the bake stage.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

TRIGGER = "bakery_concept"
#: (name, colour); colours drive the tiny tagger's tags (red_theme, green_theme …).
IMAGES = [
    ("red", (220, 30, 30)),
    ("green", (30, 200, 40)),
    ("blue", (30, 40, 220)),
    ("yellow", (230, 220, 30)),
    ("white", (250, 250, 250)),
    ("black", (10, 10, 10)),
]
SIZE = 96


def make_images(folder: Path, size: int = SIZE) -> list[Path]:
    """Write the demo images: a soft diagonal pattern over each colour; ``red`` is RGBA, ``blue`` a JPEG."""
    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:size, 0:size]
    pattern = ((np.sin((xx + yy) / 6.0) + 1.0) * 8.0)[..., None]
    paths = []
    for name, colour in IMAGES:
        pixels = np.clip(np.array(colour, dtype=np.float32)[None, None, :] - pattern, 0, 255).astype(np.uint8)
        img = Image.fromarray(pixels, "RGB")
        if name == "red":
            alpha = np.full((size, size), 255, dtype=np.uint8)
            alpha[: size // 8, : size // 8] = 0  # a transparent corner: "remove alpha" has work to do
            img = img.convert("RGBA")
            img.putalpha(Image.fromarray(alpha, "L"))
        path = folder / (f"{name}.jpg" if name == "blue" else f"{name}.png")
        img.save(path, quality=95) if path.suffix == ".jpg" else img.save(path)
        paths.append(path)
    return paths


def run(ctx: Any) -> dict[str, Any]:
    """The stage: see the module docstring.

    Args:
        ctx (`DemoContext`): ``stage_dir("dataset")`` is written; ``artifacts["dataset_dir"]`` is set.

    Returns:
        `dict`: ``outputs`` (images and captions), ``images``, ``tags`` (distinct tags written),
        ``trigger``, ``folder`` (the balanced ``N_name``), ``steps_per_epoch`` and the backups made.
    """
    from lora_bakery.extension.dataset_ops import registry
    from lora_bakery.extension.tagger.tiny import write_tiny_tagger

    stage = ctx.stage_dir("dataset")
    root = stage / "train"
    if root.exists():
        shutil.rmtree(root)  # our own output from an earlier run
    make_images(root / "10_concept")
    tagger = write_tiny_tagger(stage / "tagger", "v3", size=64)

    backups = []
    _done, rec = registry.apply(root, "remove-alpha", {})
    backups.append(rec.path.name)
    tagged, rec = registry.apply(root, "tag", {"models": str(tagger), "download": False, "mode": "skip"})
    backups.append(rec.path.name)
    _done, rec = registry.apply(root, "add-triggers", {"triggers": TRIGGER})
    backups.append(rec.path.name)
    balance, rec = registry.apply(root, "repeats", {"optimizer": "prodigy", "family": "sd15"})
    backups.append(rec.path.name)

    folder = balance.extra["rows"][0]["new_name"]
    files = sorted(p for p in (root / folder).iterdir() if p.is_file())
    captions = [p for p in files if p.suffix == ".txt"]
    tags = sorted({t.strip() for p in captions for t in p.read_text(encoding="utf-8").split(",") if t.strip()})
    ctx.artifacts["dataset_dir"] = str(root)
    ctx.artifacts["dataset_trigger"] = TRIGGER
    return {
        "outputs": [str(p) for p in files],
        "images": len(files) - len(captions),
        "tags": len(tags),
        "tagged": tagged.extra["tagged"],
        "trigger": TRIGGER,
        "folder": folder,
        "steps_per_epoch": balance.extra["main_per_epoch"],
        "backups": backups,
    }
