"""Reg files on disk: atomic image and caption writes, validity checks, leftover cleanup.

Every file is written to a temp name in its folder and moved into place with ``os.replace``, so an
interrupted or crashed run never leaves a half-written image or caption where kohya (or a resume)
would read it. Each PNG also carries its own parameters (A1111's ``parameters`` infotext and a
``lora_bakery_reg`` JSON chunk), so a resume can recover an image whose manifest entry was not
written yet.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from lora_bakery.extension.dataset.safety import atomic_write_bytes
from lora_bakery.trainer.atomic import TEMP_SUFFIX

TEMP_MARK = TEMP_SUFFIX  # the suffix atomic_write_bytes gives its temp files
PNG_KEY = "lora_bakery_reg"


def png_bytes(image: Any, infotext: str = "", record: dict[str, Any] | None = None) -> bytes:
    """Encode ``image`` as PNG with A1111's ``parameters`` text and our record.

    Args:
        image (`PIL.Image.Image`): the generated image.
        infotext (`str`, *optional*): the host's generation parameters text (A1111's PNG Info reads it).
        record (`dict`, *optional*): the manifest entry, stored as JSON under ``lora_bakery_reg``.

    Returns:
        `bytes`: the PNG file.
    """
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    if infotext:
        info.add_text("parameters", infotext)
    if record is not None:
        info.add_text(PNG_KEY, json.dumps(record, sort_keys=True))
    buf = io.BytesIO()
    img = image if image.mode in ("RGB", "RGBA", "L") else image.convert("RGB")
    img.save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def write_image(path: Path, image: Any, infotext: str = "", record: dict[str, Any] | None = None) -> None:
    """Write a reg image atomically (see :func:`png_bytes`)."""
    atomic_write_bytes(path, png_bytes(image, infotext, record))


def write_caption(path: Path, caption: str) -> None:
    """Write a caption atomically: UTF-8, one line, no BOM (as kohya reads it)."""
    atomic_write_bytes(path, (caption.strip() + "\n").encode("utf-8"))


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (the manifest)."""
    atomic_write_bytes(path, (json.dumps(data, indent=1, ensure_ascii=False) + "\n").encode("utf-8"))


def image_state(path: Path, size: tuple[int, int] | None = None) -> tuple[bool, dict[str, Any] | None]:
    """Whether ``path`` is a whole, decodable image (of ``size`` when given), and its embedded record.

    Returns:
        `tuple[bool, dict | None]`: ``(valid, record)``; the record is ``None`` when the PNG has none.
    """
    from PIL import Image

    if not path.is_file():
        return False, None
    try:
        with Image.open(path) as img:
            text = dict(getattr(img, "text", {}) or {})
            img.load()  # decodes every pixel: a truncated file fails here
            if size is not None and tuple(img.size) != tuple(size):
                return False, None
    except Exception:  # noqa: BLE001 - anything unreadable is "not valid"
        return False, None
    raw = text.get(PNG_KEY)
    try:
        record = json.loads(raw) if raw else None
    except ValueError:
        record = None
    return True, record if isinstance(record, dict) else None


def remove_leftovers(root: Path) -> int:
    """Delete temp files a killed run left behind (only our own ``*.bakery-tmp`` names).

    Returns:
        `int`: how many were removed.
    """
    if not root.is_dir():
        return 0
    removed = 0
    for folder in [root, *(p for p in root.iterdir() if p.is_dir())]:
        for entry in folder.iterdir():
            if entry.name.endswith(TEMP_MARK) and entry.is_file():
                entry.unlink()
                removed += 1
    return removed


def ensure_writable(folder: Path) -> None:
    """Create ``folder`` and prove a file can be written there, before any image is generated.

    Raises:
        ValueError: the folder cannot be created or written, with the reason and the path.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test{TEMP_MARK}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ValueError(f"cannot write reg images to {folder}: {exc.strerror or exc}; choose another output "
                         "folder or fix its permissions") from None


def remove_file(path: Path) -> bool:
    """Delete ``path`` if it exists; True when something was deleted."""
    try:
        path.unlink()
        return True
    except FileNotFoundError:
        return False
