"""Atomic writes of the Compare tab's outputs (temp file in the same folder + ``os.replace``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lora_bakery.trainer.atomic import write_via_temp


def save_png_atomic(image: Any, path: str | Path) -> Path:
    """Save a PIL image as PNG atomically."""
    return write_via_temp(path, lambda stream: image.save(stream, format="PNG"))


def write_json_atomic(path: str | Path, data: Any) -> Path:
    """Write JSON (UTF-8, indented) atomically."""
    return write_via_temp(path, lambda stream: stream.write(json.dumps(data, indent=1, default=str).encode("utf-8")))


__all__ = ["save_png_atomic", "write_json_atomic"]
