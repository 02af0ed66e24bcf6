"""A small real training folder for the reg tests (Pillow images, caption files)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from lora_bakery.extension.reg import RegSettings

#: name → (size, caption or None for no caption file)
CHARA = {
    "a.png": ((64, 64), "chara, ||| 1girl, smile"),
    "b.png": ((64, 128), "chara, ||| 1girl,, red_hair, smile, smile"),
    "c.png": ((64, 64), None),
    "d.png": ((64, 64), "chara"),
}
OUTFIT = {"e.jpg": ((128, 64), "outfit1, ||| shirt, skirt")}


def make_training(root: Path) -> Path:
    """``root/10_chara`` (a, b captioned; c without caption; d only the trigger) and ``root/3_outfit/e.jpg``."""
    for folder, files in (("10_chara", CHARA), ("3_outfit", OUTFIT)):
        for name, (size, caption) in files.items():
            path = root / folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", size, (120, 80, 40)).save(path)
            if caption is not None:
                path.with_suffix(".txt").write_text(caption, encoding="utf-8")
    (root / "notes").mkdir(exist_ok=True)  # not a concept folder: warned about
    return root


def tiny_settings(**overrides) -> RegSettings:
    """64² buckets with a 32 px step (tiny model sizes), 1 step, fixed seed, triggers removed."""
    values = dict(remove=["chara", "outfit1"], resolution=64, min_bucket=32, max_bucket=128, bucket_step=32,
                  steps=1, cfg_scale=1.0, seed=100, batch_size=2, negative_prompt="lowres")
    values.update(overrides)
    return RegSettings(**values)
