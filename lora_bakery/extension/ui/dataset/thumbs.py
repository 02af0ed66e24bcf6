"""Thumbnails for the Dataset tab, cached on disk by (path, mtime, size).

The caption gallery shows pages of 48 images; decoding a full-size image for every page view
would make 2,000-image datasets sluggish, so each image is decoded once into a small PNG under the
system temp folder (which gradio 3 and 4 both serve) and reused until the file changes.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from pathlib import Path

from lora_bakery.extension.dataset.safety import atomic_write_bytes

#: Longest side of a gallery thumbnail.
SIZE = 256


def cache_dir() -> Path:
    """``$TMPDIR/lora-bakery-thumbs`` (created)."""
    path = Path(tempfile.gettempdir()) / "lora-bakery-thumbs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def thumbnail(path: str | os.PathLike, size: int = SIZE) -> str | None:
    """A cached PNG thumbnail of ``path`` (EXIF rotation applied, alpha kept), or ``None`` if unreadable.

    Args:
        path (`str | os.PathLike`): the image.
        size (`int`, *optional*, defaults to 256): longest side.

    Returns:
        `str | None`: the thumbnail file.
    """
    try:
        st = os.stat(path)
    except OSError:
        return None
    key = hashlib.sha1(f"{os.path.abspath(path)}|{st.st_mtime_ns}|{st.st_size}|{size}".encode()).hexdigest()
    target = cache_dir() / f"{key}.png"
    if target.is_file():
        return str(target)
    try:
        from PIL import Image, ImageOps

        with Image.open(path) as im:
            im.draft("RGB", (size, size))  # JPEG: decode at a reduced scale
            img = ImageOps.exif_transpose(im)
            img = img.convert("RGBA" if "A" in img.getbands() or "transparency" in img.info else "RGB")
            img.thumbnail((size, size))
            buf = io.BytesIO()
            img.save(buf, format="PNG", compress_level=1)
    except Exception:  # noqa: BLE001 - a broken image gets no thumbnail, never an error
        return None
    atomic_write_bytes(target, buf.getvalue())
    return str(target)


def from_bytes(data: bytes | None) -> str | None:
    """Store PNG bytes (a plan's before/after thumbnail) in the cache; returns the file or ``None``."""
    if not data:
        return None
    target = cache_dir() / f"b-{hashlib.sha1(data).hexdigest()}.png"
    if not target.is_file():
        atomic_write_bytes(target, data)
    return str(target)
