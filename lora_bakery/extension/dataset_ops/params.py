"""Operation options from any front end (JSON, argparse, gradio values) with errors that name the option."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from lora_bakery.extension.dataset.scan import ScanResult
from lora_bakery.trainer.data.folders import in_mask_folder


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
    """The images to work on: ``params["paths"]`` when given, else every usable scanned image ``keep`` accepts.

    The scan never lists mask folders (``masks/``); a path given inside one is refused, so no image
    tool converts, pads, tags or moves a mask.

    Raises:
        ValueError: a given path lies inside a mask folder (the message names it).
    """
    given = params.get("paths")
    if given:
        items = [given] if isinstance(given, str) else list(given)
        rel = [os.path.relpath(p, result.root) if os.path.isabs(p) else str(p) for p in items]
        masks = [p for p in rel if in_mask_folder(p)]
        if masks:
            raise ValueError(f"{', '.join(masks[:5])}: inside a mask folder; masks are not training images, so the "
                             "image tools leave them alone (remake masks with the Masks tool)")
        return rel
    return [im.path for _f, im in result.images() if im.usable and keep(im)]
