"""A tiny, distinctive dataset for tests, the demo and benchmarks: a trigger word and one look.

Every image is the same idea (a yellow disc on a magenta field, slightly moved and resized per
image) so a few steps on the tiny model measurably pull the trigger prompt's prediction toward it.
Folder mode layout, as users make it: ``<root>/<repeats>_<trigger>/NNN.png`` + ``NNN.txt``.
"""

from __future__ import annotations

import random
from pathlib import Path


def make_toy_dataset(
    root: str | Path,
    trigger: str = "sks",
    count: int = 4,
    size: int = 64,
    repeats: int = 2,
    seed: int = 0,
    caption: str = "{trigger}, disc",
) -> Path:
    """Write the dataset (overwriting its own files) and return ``root`` (the ``train_data_dir``).

    Args:
        root (`str | Path`): parent folder; the images go to ``root/{repeats}_{trigger}``.
        trigger (`str`, defaults to ``"sks"``): the trigger word, first in every caption.
        count (`int`, defaults to 4): images.
        size (`int`, defaults to 64): square side in pixels.
        repeats (`int`, defaults to 2): kohya repeats (the folder's number).
        seed (`int`, defaults to 0): jitter of the disc's position and size.
        caption (`str`): caption template; ``{trigger}`` is replaced.

    Returns:
        `Path`: ``root``.
    """
    from PIL import Image, ImageDraw

    root = Path(root)
    folder = root / f"{repeats}_{trigger}"
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    for i in range(count):
        image = Image.new("RGB", (size, size), (200, 30, 160))
        draw = ImageDraw.Draw(image)
        r = size * rng.uniform(0.22, 0.32)
        cx, cy = size * rng.uniform(0.4, 0.6), size * rng.uniform(0.4, 0.6)
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(250, 220, 20))
        image.save(folder / f"{i:03d}.png")
        (folder / f"{i:03d}.txt").write_text(caption.format(trigger=trigger) + "\n", encoding="utf-8")
    return root
