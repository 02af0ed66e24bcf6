"""Small real datasets on disk for the data tests (images made with Pillow, captions as files)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image


def make_image(path: Path, size: tuple[int, int], color=(200, 30, 30), mode: str = "RGB") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "RGBA":
        img = Image.new("RGBA", size, (*color, 255))
        for x in range(size[0] // 2):  # left half transparent
            for y in range(size[1]):
                img.putpixel((x, y), (*color, 0))
    else:
        img = Image.new(mode, size, color)
        img.putpixel((0, 0), (0, 0, 0))  # not perfectly flat, so flips differ
    img.save(path)
    return path


def make_folder(
    root: Path, name: str, sizes: list[tuple[int, int]], captions: bool = True, prefix: str = "img"
) -> Path:
    folder = root / name
    for i, size in enumerate(sizes):
        img = make_image(folder / f"{prefix}{i}.png", size, color=(40 * i % 255, 100, 150))
        if captions:
            img.with_suffix(".txt").write_text(f"sks, tag{i}, common", encoding="utf-8")
    return folder
