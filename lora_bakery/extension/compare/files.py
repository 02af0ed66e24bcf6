"""Atomic writes of the Compare tab's outputs (temp file in the same folder + ``os.replace``)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def _atomic(path: Path, write: Any, suffix: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        write(temp)
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)
    return path


def save_png_atomic(image: Any, path: str | Path) -> Path:
    """Save a PIL image as PNG atomically."""
    return _atomic(Path(path), lambda temp: image.save(temp, format="PNG"), ".png")


def write_json_atomic(path: str | Path, data: Any) -> Path:
    """Write JSON (UTF-8, indented) atomically."""
    def write(temp: str) -> None:
        with open(temp, "w", encoding="utf-8") as stream:
            json.dump(data, stream, indent=1, default=str)

    return _atomic(Path(path), write, ".json")


__all__ = ["save_png_atomic", "write_json_atomic"]
