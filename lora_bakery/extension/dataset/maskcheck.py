"""The scan's mask checks: every concept image against its mask folder (missing, size, all black, orphans).

Which mask folder belongs to which concept folder is ``trainer.data.folders.mask_folder_for`` (the
rule the trainer uses too); masks match images by stem, as kohya matches them. A mask's facts (size,
all black) need its pixels, so they are cached like the image headers: by path, mtime and size.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from lora_bakery.extension.dataset.captionfacts import Problem
from lora_bakery.trainer.data.checks import mask_is_black
from lora_bakery.trainer.data.folders import is_mask_folder, list_images, mask_folder_for

#: Orphan mask names listed in one problem (the rest are counted).
MAX_NAMES = 12


@dataclass
class MaskFolder:
    """One mask folder: where it is (relative to the root), how many masks, which concept folders it serves."""

    path: str
    masks: int = 0
    serves: list[str] = field(default_factory=list)


def mask_facts(path: str | os.PathLike) -> dict:
    """Size and "all black" of one mask as the trainer reads it (the red channel, the trainer's own
    ``checks.mask_is_black``); errors become facts."""
    try:
        with Image.open(path) as im:
            im.load()
            red = np.asarray(im.convert("RGB").getchannel("R"))
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types for bad files
        return {"error": f"{type(exc).__name__}: {exc}"}
    return {"width": int(red.shape[1]), "height": int(red.shape[0]), "black": mask_is_black(red)}


def _all_mask_folders(root: Path, concepts: list[str]) -> list[Path]:
    """Every folder that holds masks: top-level mask folders, their subfolders, and ``<concept>/masks``."""
    out: list[Path] = []
    with os.scandir(root) as it:
        tops = sorted(Path(e.path) for e in it if e.is_dir() and is_mask_folder(e.name))
    for top in tops:
        out.append(top)
        out += sorted(Path(e.path) for e in os.scandir(top) if e.is_dir())
    for c in concepts:
        folder = root / c
        if folder.is_dir():
            out += sorted(Path(e.path) for e in os.scandir(folder) if e.is_dir() and is_mask_folder(e.name))
    return out


def check_masks(result, old: dict, new: dict) -> list[MaskFolder]:
    """Add mask problems to ``result`` (a ``ScanResult``) and return its mask folders.

    Per image (warnings): ``mask-missing`` (a concept with a mask folder, an image without a mask),
    ``mask-size`` (mask and image sizes differ: the trainer stretches the mask), ``mask-black`` (an
    all-black mask trains the image at loss 0), ``mask-unreadable``. Per dataset: ``mask-orphans``
    (masks that match no image, by name) and ``mask-none`` (concept folders without masks when
    others have them).

    Args:
        result (`ScanResult`): the scan so far (folders with images).
        old (`dict`): cached mask facts ``{rel: {"k": [mtime_ns, size], "d": facts}}``.
        new (`dict`): filled with the facts of every mask seen (the next cache).

    Returns:
        `list[MaskFolder]`: every folder holding masks (none: the dataset uses no mask folders).
    """
    root = Path(result.root)
    concepts = [f for f in result.folders if f.path]
    folders = [p for p in _all_mask_folders(root, [f.path for f in concepts]) if list_images(p)]
    if not folders:
        return []
    rel = {p: p.relative_to(root).as_posix() for p in folders}
    infos = {p: MaskFolder(rel[p]) for p in folders}
    stems: dict[Path, dict[str, Path]] = {}
    for p in folders:
        masks = list_images(p)
        infos[p].masks = len(masks)
        stems[p] = {}
        for m in masks:
            stems[p].setdefault(m.stem, m)
    used: dict[Path, set[str]] = {p: set() for p in folders}
    without = []
    for f in concepts:
        folder = mask_folder_for(root, f.path)
        if folder is None or folder not in stems:
            if f.images:
                without.append(f.path)
            continue
        infos[folder].serves.append(f.path)
        for im in f.images:
            stem = Path(im.path).stem
            mask = stems[folder].get(stem)
            if mask is None:
                im.problems.append(Problem("mask-missing", f"no mask named '{stem}.*' in {rel[folder]}/: masked-loss "
                                                           "training leaves this image out; make its mask (Masks tool).",
                                           "warning"))
                continue
            used[folder].add(stem)
            _check_one(im, mask, root, old, new)
    for p in folders:
        orphans = sorted(m.name for s, m in stems[p].items() if s not in used[p])
        if orphans:
            names = ", ".join(orphans[:MAX_NAMES]) + (f" and {len(orphans) - MAX_NAMES} more" if len(orphans) > MAX_NAMES else "")
            where = (f"serves {', '.join(infos[p].serves)}" if infos[p].serves
                     else "belongs to no concept folder")
            result.problems.append(Problem("mask-orphans", f"{len(orphans)} mask(s) in {rel[p]}/ ({where}) match no "
                                                           f"image: {names}. Delete them or restore their images.",
                                           "warning"))
    if without:
        result.problems.append(Problem("mask-none", f"no mask folder for {', '.join(without)} (other concepts have "
                                                    "masks): masked-loss training leaves their images out; make masks "
                                                    "into masks/<folder> with the Masks tool.", "warning"))
    return list(infos.values())


def _check_one(im, mask: Path, root: Path, old: dict, new: dict) -> None:
    mrel = mask.relative_to(root).as_posix()
    st = mask.stat()
    key = [st.st_mtime_ns, st.st_size]
    hit = old.get(mrel)
    facts = hit["d"] if hit is not None and hit.get("k") == key else mask_facts(mask)
    new[mrel] = {"k": key, "d": facts}
    if "error" in facts:
        im.problems.append(Problem("mask-unreadable", f"mask {mrel} cannot be read ({facts['error']}): masked-loss "
                                                      "training leaves this image out; remake or delete it.", "warning"))
        return
    if im.width and (facts["width"], facts["height"]) != (im.width, im.height):
        im.problems.append(Problem("mask-size", f"mask {mrel} is {facts['width']}x{facts['height']}, the image "
                                                f"{im.width}x{im.height}: the trainer stretches the mask onto the "
                                                "image; remake it at the image's size.", "warning"))
    if facts["black"]:
        im.problems.append(Problem("mask-black", f"mask {mrel} is all black: masked-loss training leaves this image "
                                                 "out (it would train at loss 0); remake the mask or delete it.", "warning"))
