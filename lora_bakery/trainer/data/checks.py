"""Preflight checks of a dataset plan: what would train wrong, decided before anything is cached.

Each function is pure or reads one small file and returns a reason (or a message), so
:func:`.dataset.build_plan` can list what it leaves out and stop with every cause at once:

- the keep-tokens separator: captions holding ``|||`` (what the Dataset tab's add-triggers writes)
  under a subset whose ``keep_tokens_separator`` is something else would train ``|||`` as text;
- masks: an all-black mask (or a fully transparent image under ``alpha_mask``) multiplies the
  loss by (nearly) 0, so the image would be "trained" at loss 0; it is left out and listed instead
  (kohya trains it silently);
- the report: the folders of a training root that are not trained (:func:`excluded_folders`) and
  the skipped images, as lines for the log and for the error that says why no training image is left.

Torch-free (Pillow and numpy for the mask pixels).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from . import folders

#: The keep-tokens separator the Dataset tab writes (``add-triggers``) and the config's default.
KEEP_SEPARATOR = "|||"
#: Lines of a skipped list shown before "… and N more".
REPORT_LINES = 50
#: A mask pixel above this (of 255) is subject; a mask with under :data:`BLACK_SHARE` of such pixels is
#: "all black" (the Masks tool's own flag uses the same numbers): its image would learn next to nothing.
BLACK_LEVEL = 32
BLACK_SHARE = 0.01


def mask_is_black(values: Any) -> bool:
    """Whether a mask (red channel or alpha, uint8 H×W) is all black by the rule above.

    The scan's mask check (``extension/dataset/maskcheck.py``) calls this too, so the scan flags exactly
    the masks the trainer leaves out.
    """
    import numpy as np

    a = np.asarray(values)
    return float((a > BLACK_LEVEL).sum()) < BLACK_SHARE * max(a.size, 1)


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
    except Exception as exc:  # a damaged mask file
        return f"cannot read its mask {mask.name}: {exc}"
    if mask_is_black(red):
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
            if rgba.mode != "RGBA":
                return None
            black = mask_is_black(rgba.getchannel("A"))
    except Exception as exc:  # damaged pixel data
        return f"cannot read image: {exc}"
    return "fully transparent: its alpha mask would train it at loss 0" if black else None


def excluded_folders(root: str | None) -> list[tuple[Path, str]]:
    """The folders of a training root that are not trained, each with the reason (hidden ones left out).

    Folders without a repeat count (kohya skips them) carry :func:`folders.problems`' advice; folders that
    are never concepts (``_duplicates``, mask folders) :func:`folders.excluded_dir_reason`'s.
    """
    if not root or not os.path.isdir(root):
        return []
    out: list[tuple[Path, str]] = []
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if not entry.is_dir() or entry.name.startswith("."):
            continue
        reason = folders.excluded_dir_reason(entry.name)
        if reason:
            out.append((Path(entry.path), reason))
        elif folders.parse_concept_folder(entry.name)[0] is None:
            out.append((Path(entry.path), " ".join(folders.problems(entry.name)) or "not named N_name"))
    return out


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


__all__ = ["BLACK_LEVEL", "BLACK_SHARE", "KEEP_SEPARATOR", "alpha_problem", "excluded_folders", "mask_is_black", "mask_problem", "report_lines",
           "separator_problem"]
