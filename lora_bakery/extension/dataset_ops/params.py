"""Operation options from any front end (JSON, argparse, gradio values) with errors that name the option."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from lora_bakery.extension.dataset.scan import ScanResult


def num(params: Mapping[str, Any], name: str, default: float, kind: type = float) -> Any:
    value = params.get(name)
    if value is None or value == "":
        return kind(default)
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: {value!r} is not a number") from None


def color(params: Mapping[str, Any], name: str = "color") -> tuple[int, int, int]:
    """``"#ffffff"``, ``"white"``, ``"255,255,255"`` or a list → an RGB tuple."""
    value = params.get(name)
    if value is None or value == "":
        return (255, 255, 255)
    if isinstance(value, (list, tuple)) and len(value) == 3:
        return tuple(int(v) for v in value)  # type: ignore[return-value]
    text = str(value).strip()
    try:
        if "," in text:
            rgb = tuple(int(v) for v in text.split(","))
            if len(rgb) == 3 and all(0 <= v <= 255 for v in rgb):
                return rgb  # type: ignore[return-value]
        from PIL import ImageColor

        return ImageColor.getrgb(text)[:3]
    except ValueError:
        pass
    raise ValueError(f"{name}: {value!r} is not a colour (use #rrggbb, a name like 'white', or r,g,b)")


def flag(params: Mapping[str, Any], name: str, default: bool = False) -> bool:
    value = params.get(name, default)
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def image_paths(params: Mapping[str, Any], result: ScanResult, keep: Callable[[Any], bool]) -> list[str]:
    """The images to work on: ``params["paths"]`` when given, else every usable scanned image ``keep`` accepts."""
    given = params.get("paths")
    if given:
        items = [given] if isinstance(given, str) else list(given)
        return [os.path.relpath(p, result.root) if os.path.isabs(p) else str(p) for p in items]
    return [im.path for _f, im in result.images() if im.usable and keep(im)]
