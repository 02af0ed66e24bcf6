"""Decoding an image file into the pixels the trainer sees, and the checks that decide it can be decoded.

Shared by the trainer, the Dataset tab's scan and its "convert to PNG" operation, so the three agree
on what a file becomes (docs/architecture.md, "one truth from Dataset tab to trainer"). Torch-free:
Pillow and numpy only, so ``extension/dataset`` may import it.

Where we depart from kohya (which calls ``Image.open(path).convert("RGB")``):

- 16-bit and float greyscale (``I;16``, ``I``, ``F``) are scaled to 8 bits, not clipped: Pillow's plain
  ``convert("RGB")`` turns a 16-bit PNG near-white. :func:`to_8bit` is the conversion "convert to PNG"
  writes, so training on the file and training on the converted PNG give the same pixels.
- A file whose last bytes lack its format's end marker (:func:`ends_early`, a cut download) is a bad
  image before any caching starts, instead of an exception half-way through the latent cache.

EXIF rotation is not applied (kohya does not either; the scan warns and "convert to PNG" applies it).
"""

from __future__ import annotations

import os
from typing import Any, BinaryIO

import numpy as np

#: Pillow modes holding more than 8 bits per sample (scaled by :func:`to_8bit`).
HIGH_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I", "F"})


def to_8bit(img: Any) -> Any:
    """RGB/RGBA 8-bit from any Pillow mode (16-bit scaled, not clipped; CMYK, P, LA, L handled).

    Args:
        img (`PIL.Image.Image`): any mode.

    Returns:
        `PIL.Image.Image`: ``RGB``, or ``RGBA`` when the image has transparency.
    """
    from PIL import Image

    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        a = np.asarray(img, dtype=np.float64)
        top = 65535.0 if a.max() > 255 else 255.0
        return Image.fromarray((a / top * 255 + 0.5).clip(0, 255).astype(np.uint8), "L").convert("RGB")
    if img.mode == "F":
        a = np.asarray(img, dtype=np.float64)
        return Image.fromarray((a.clip(0, 1) * 255 + 0.5).astype(np.uint8), "L").convert("RGB")
    if img.mode in ("RGBA", "RGB"):
        return img
    if img.mode in ("LA", "PA", "RGBa", "La") or (img.mode in ("P", "L", "RGB") and "transparency" in img.info):
        return img.convert("RGBA")
    return img.convert("RGB")


def training_rgb(img: Any) -> Any:
    """The RGB image the trainer trains on: :func:`to_8bit`, then alpha dropped as kohya drops it."""
    out = to_8bit(img)
    return out if out.mode == "RGB" else out.convert("RGB")


def tail_ok(fmt: str, stream: BinaryIO, size: int) -> bool:
    """Whether the file's last bytes hold its format's end marker (a cut download lacks it).

    Args:
        fmt (`str`): Pillow's format name (``"JPEG"``, ``"PNG"``, ``"GIF"``, ``"WEBP"``; others pass).
        stream (`BinaryIO`): the open file (its position is moved).
        size (`int`): the file size in bytes.

    Returns:
        `bool`: False when the file ends early.
    """
    n = min(size, 64)
    stream.seek(size - n)
    tail = stream.read(n)
    if fmt in ("JPEG", "MPO"):
        return b"\xff\xd9" in tail
    if fmt == "PNG":
        return b"IEND" in tail
    if fmt == "GIF":
        return b";" in tail[-8:]
    if fmt == "WEBP":
        stream.seek(4)
        riff = int.from_bytes(stream.read(4), "little")
        return riff + 8 <= size
    return True


def ends_early(path: str | os.PathLike, fmt: str) -> bool:
    """:func:`tail_ok` for a file on disk: True when ``path`` lacks its format's end marker."""
    size = os.path.getsize(path)
    if size == 0:
        return True
    with open(path, "rb") as stream:
        return not tail_ok(fmt, stream, size)


ENDS_EARLY = "the file ends early (cut download?)"


def check_file(path: str | os.PathLike, *, decode: bool = False) -> tuple[tuple[int, int] | None, str | None]:
    """The image's size as the trainer reads it, or why the trainer cannot use it.

    Args:
        path (`str | os.PathLike`): the image file.
        decode (`bool`, defaults to False): also decode every pixel (finds damage inside the file;
            ``training.skip_bad_images`` turns it on so nothing fails once caching has started).

    Returns:
        `tuple`: ``((width, height), None)`` for a usable file, ``(None, reason)`` otherwise.
    """
    from PIL import Image

    try:
        with Image.open(path) as img:
            size, fmt = img.size, img.format or ""
            if ends_early(path, fmt):  # first, so the reason reads the same with or without decoding
                return None, ENDS_EARLY
            if decode:
                img.load()
    except Exception as exc:  # Pillow raises many types for damaged files (OSError, SyntaxError, ValueError …)
        return None, f"cannot read image: {exc}"
    return size, None


__all__ = ["ENDS_EARLY", "HIGH_BIT_MODES", "check_file", "ends_early", "tail_ok", "to_8bit", "training_rgb"]
