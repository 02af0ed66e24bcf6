"""Preflight checks of a dataset plan: what would train wrong, decided before anything is cached.

Each function is pure or reads one small file and returns a reason (or a message), so
:func:`.dataset.build_plan` can list what it leaves out and stop with every cause at once:

- the keep-tokens separator: captions holding ``|||`` (what the Dataset tab's add-triggers writes)
  under a subset whose ``keep_tokens_separator`` is something else would train ``|||`` as text;
- masks: an all-black mask (or a fully transparent image under ``alpha_mask``) multiplies the
  loss by 0, so the image would be "trained" at loss 0; it is left out and listed instead
  (kohya trains it silently);
- the report: the skipped images and excluded folders, as lines for the log and for the error
  that says why no training image is left.

Torch-free (Pillow for the mask pixels).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

#: The keep-tokens separator the Dataset tab writes (``add-triggers``) and the config's default.
KEEP_SEPARATOR = "|||"
#: Lines of a skipped list shown before "… and N more".
REPORT_LINES = 50


def separator_problem(subset_dir: str, separator: str, captions: Iterable[str]) -> str | None:
    """Why this subset's captions cannot train as configured, or ``None``.

    Args:
        subset_dir (`str`): the subset's folder (named in the message).
        separator (`str`): its resolved ``keep_tokens_separator``.
        captions (`Iterable[str]`): its raw captions (with prefix/suffix).

    Returns:
        `str | None`: the refusal, naming ``|||`` and the setting, when a caption holds ``|||`` that
        would reach the text encoder (the separator is another one, or off).
    """
    if separator == KEEP_SEPARATOR:
        return None
    count = sum(KEEP_SEPARATOR in c for c in captions)
    if not count:
        return None
    setting = f"keep_tokens_separator is {separator!r}" if separator else "keep_tokens_separator is off (\"\")"
    return (
        f"{count} caption(s) in {subset_dir} contain '{KEEP_SEPARATOR}' (the keep-tokens separator add-triggers "
        f"writes), but {setting}, so '{KEEP_SEPARATOR}' would be trained as text. Set keep_tokens_separator = "
        f"\"{KEEP_SEPARATOR}\" (the default; Bake tab, Data subsets group) or remove '{KEEP_SEPARATOR}' from the captions."
    )


def mask_problem(mask: Path) -> str | None:
    """Why a ``conditioning_data_dir`` mask cannot be trained on, or ``None``.

    kohya reads the mask's red channel as the loss weight; all black means weight 0 everywhere.
    """
    from PIL import Image

    try:
        with Image.open(mask) as img:
            red = img.convert("RGB").getchannel("R")
            top = red.getextrema()[1]
    except Exception as exc:  # a damaged mask file
        return f"cannot read its mask {mask.name}: {exc}"
    if top == 0:
        return f"its mask {mask.name} is all black: the image would train at loss 0"
    return None


def alpha_problem(image: Path) -> str | None:
    """Why an ``alpha_mask`` image cannot be trained on (fully transparent = loss 0), or ``None``."""
    from PIL import Image

    from .pixels import to_8bit

    try:
        with Image.open(image) as img:
            if "A" not in img.getbands() and "transparency" not in img.info:
                return None  # no alpha: the mask is all ones (images.load_mask)
            rgba = to_8bit(img)
            top = rgba.getchannel("A").getextrema()[1] if rgba.mode == "RGBA" else 255
    except Exception as exc:  # damaged pixel data
        return f"cannot read image: {exc}"
    return "fully transparent: its alpha mask would train it at loss 0" if top == 0 else None


def find_mask(folder: str, image: Path, extensions: Iterable[str]) -> Path | None:
    """The mask with the image's stem in ``folder`` (any image extension, either case)."""
    for ext in sorted(extensions):
        for candidate in (Path(folder) / (image.stem + ext), Path(folder) / (image.stem + ext.upper())):
            if candidate.is_file():
                return candidate
    return None


def report_lines(
    skipped: Sequence[tuple[Path, str]], excluded: Sequence[tuple[Path, str]], limit: int = REPORT_LINES
) -> list[str]:
    """The skipped images and excluded folders as log lines (a heading each, at most ``limit`` entries).

    Returns:
        `list[str]`: empty when nothing was left out.
    """
    out: list[str] = []
    for heading, entries in (("folders not trained", excluded), ("images left out", skipped)):
        if not entries:
            continue
        out.append(f"{len(entries)} {heading}:")
        out.extend(f"  {os.fspath(path)}: {reason}" for path, reason in entries[:limit])
        if len(entries) > limit:
            out.append(f"  … and {len(entries) - limit} more")
    return out


__all__ = ["KEEP_SEPARATOR", "alpha_problem", "find_mask", "mask_problem", "report_lines", "separator_problem"]
