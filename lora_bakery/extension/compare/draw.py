"""A1111-style labelled grids: column labels above, row labels on the left, Z grids side by side.

A1111's ``images.draw_grid_annotations`` uses ``ImageDraw.multiline_textsize``, which Pillow 10
removed, and lives in ``modules`` (host-only); this is a small re-implementation of its layout
with ``textbbox``, which both Pillow 9.5 and 10.x have. Text uses matplotlib's bundled DejaVu Sans
(always installed beside us), falling back to Pillow's default font.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from PIL import Image, ImageDraw, ImageFont

MISSING = (200, 200, 200)


@lru_cache(maxsize=8)
def _font(size: int) -> Any:
    try:
        from matplotlib import font_manager

        return ImageFont.truetype(font_manager.findfont("DejaVu Sans"), size)
    except Exception:  # noqa: BLE001 - any font is better than no grid
        return ImageFont.load_default()


def _wrap(draw: ImageDraw.ImageDraw, text: str, font: Any, width: int) -> list[str]:
    """Greedy word wrap to ``width`` pixels (long words are kept whole, as A1111 does)."""
    lines: list[str] = []
    for paragraph in str(text).split("\n"):
        line = ""
        for word in paragraph.split(" "):
            candidate = f"{line} {word}".strip()
            if line and draw.textbbox((0, 0), candidate, font=font)[2] > width:
                lines.append(line)
                line = word
            else:
                line = candidate
        lines.append(line)
    return lines


def _text_block(texts: Sequence[str], width: int, font_size: int) -> tuple[list[list[str]], int]:
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    font = _font(font_size)
    wrapped = [_wrap(probe, t, font, width) for t in texts]
    line_h = font_size + font_size // 3
    height = max((len(w) for w in wrapped), default=0) * line_h
    return wrapped, height


def labelled_grid(
    cells: Sequence[Sequence[Image.Image | None]],
    col_labels: Sequence[str],
    row_labels: Sequence[str],
    title: str = "",
    margin: int = 0,
) -> Image.Image:
    """Paste ``cells[row][col]`` into one image with A1111-style annotations.

    Args:
        cells (`Sequence[Sequence[Image | None]]`): rows of images (``None``: not rendered, grey).
        col_labels (`Sequence[str]`): one per column ("" for none).
        row_labels (`Sequence[str]`): one per row.
        title (`str`, *optional*): text above everything (Z label, LoRA name).
        margin (`int`, defaults to 0): pixels between cells.

    Returns:
        `Image.Image`: the grid (RGB).
    """
    rows = len(cells)
    cols = max((len(r) for r in cells), default=0)
    sample = next((im for row in cells for im in row if im is not None), None)
    cell_w, cell_h = (sample.width, sample.height) if sample is not None else (64, 64)
    font_size = max(10, (cell_w + cell_h) // 25)
    font = _font(font_size)
    line_h = font_size + font_size // 3
    col_text, top = _text_block(col_labels if any(col_labels) else [], cell_w, font_size)
    row_w = int(cell_w * 0.75) if any(row_labels) else 0
    row_text, _ = _text_block(row_labels if any(row_labels) else [], max(row_w - 8, 16), font_size)
    title_lines, title_h = _text_block([title] if title else [], cols * (cell_w + margin) + row_w, font_size)
    pad = font_size // 2 if top else 0
    top_total = title_h + (title_h and pad) + top + pad
    width = row_w + cols * cell_w + max(cols - 1, 0) * margin
    height = top_total + rows * cell_h + max(rows - 1, 0) * margin
    canvas = Image.new("RGB", (max(width, 1), max(height, 1)), "white")
    draw = ImageDraw.Draw(canvas)
    if title_lines:
        for i, line in enumerate(title_lines[0]):
            draw.text((4, i * line_h), line, fill="black", font=font)
    for c, lines in enumerate(col_text):
        x0 = row_w + c * (cell_w + margin)
        y = title_h + (title_h and pad) + top - len(lines) * line_h
        for line in lines:
            w = draw.textbbox((0, 0), line, font=font)[2]
            draw.text((x0 + (cell_w - w) // 2, y), line, fill="black", font=font)
            y += line_h
    for r, lines in enumerate(row_text):
        y0 = top_total + r * (cell_h + margin)
        y = y0 + (cell_h - len(lines) * line_h) // 2
        for line in lines:
            w = draw.textbbox((0, 0), line, font=font)[2]
            draw.text((max(row_w - w - 4, 2), y), line, fill="black", font=font)
            y += line_h
    for r, row in enumerate(cells):
        for c, image in enumerate(row):
            x, y = row_w + c * (cell_w + margin), top_total + r * (cell_h + margin)
            if image is None:
                draw.rectangle([x, y, x + cell_w - 1, y + cell_h - 1], fill=MISSING)
            else:
                canvas.paste(image.convert("RGB").resize((cell_w, cell_h)) if image.size != (cell_w, cell_h) else image.convert("RGB"), (x, y))
    return canvas


def side_by_side(images: Sequence[Image.Image], gap: int = 16) -> Image.Image:
    """Z grids next to each other (A1111 joins Z slices the same way), top-aligned, white gap."""
    width = sum(im.width for im in images) + gap * max(len(images) - 1, 0)
    height = max((im.height for im in images), default=1)
    canvas = Image.new("RGB", (max(width, 1), height), "white")
    x = 0
    for image in images:
        canvas.paste(image, (x, 0))
        x += image.width + gap
    return canvas


__all__ = ["labelled_grid", "side_by_side"]
