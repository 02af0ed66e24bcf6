"""A small, messy training folder made of real files, shared by the dataset_ops, CLI, API and UI tests."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from tests.extension.dataset.makers import (
    bomb_png,
    exif_rotated_jpeg,
    pattern,
    rgba_png,
    save,
    tree_digest,
    truncated,
)

__all__ = ["COLOURS", "make_dataset", "make_colour_dataset", "tree_digest"]

COLOURS = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255), "yellow": (255, 255, 0)}


def make_dataset(root: Path) -> Path:
    """``10_chara`` (captions, a copy, RGBA, EXIF-rotated JPEG, non-UTF-8 and empty captions),
    ``3_outfit`` (captions), and bad files in ``bad`` (zero-byte, truncated, decompression bomb).

    Returns:
        `Path`: ``root``.
    """
    chara = root / "10_chara"
    save(pattern(64, 48, seed=1), chara / "a.png")
    save(pattern(64, 48, seed=1), chara / "a_copy.png")  # exact duplicate (same bytes)
    save(pattern(80, 40, seed=2), chara / "b.png")
    rgba_png(chara / "c.png")
    exif_rotated_jpeg(chara / "d.jpg")
    (chara / "a.txt").write_text("1girl, red_hair, shirt, white_shirt, meme, smile", encoding="utf-8")
    (chara / "a_copy.txt").write_text("1girl, red_hair, smile", encoding="utf-8")
    (chara / "b.txt").write_bytes("1girl, café, blue_eyes".encode("cp1252"))
    (chara / "c.txt").write_text("", encoding="utf-8")
    outfit = root / "3_outfit"
    save(pattern(48, 64, seed=3), outfit / "e.png")
    (outfit / "e.txt").write_text("1girl, kimono, obi, sandals", encoding="utf-8")
    bad = root / "bad"
    bad.mkdir()
    (bad / "zero.png").write_bytes(b"")
    truncated(bad / "cut.jpg")
    bomb_png(bad / "bomb.png")
    (bad / "junk.png").write_bytes(b"not an image at all")
    return root


def make_colour_dataset(root: Path, size: int = 48) -> Path:
    """``5_colours`` with one uncaptioned image per colour of :data:`COLOURS` (for the tiny tagger)."""
    folder = root / "5_colours"
    folder.mkdir(parents=True)
    for name, rgb in COLOURS.items():
        Image.new("RGB", (size, size), rgb).save(folder / f"{name}.png")
    return root
