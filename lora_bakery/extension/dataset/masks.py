"""Masks for masked-loss training: a remover's saliency map per image, same file names, quality flags.

The remover is anything with transparent-background's interface, ``remover.process(img, type="map")``
returning a 3-channel grayscale map (PIL image or numpy array; reference/dataset-tools.md §4). The real
one is built lazily by :func:`default_remover`, and accepts a local checkpoint for offline use. The
optional ``masks`` feature (transparent-background) is installed only when the user asks for it
(:func:`install_feature`: ``bakery doctor --install masks`` or the Masks section's install button),
never by a preview or a dry run: without it :func:`default_remover` raises :class:`FeatureMissing`
naming both. Masks are written as ``<mask folder>/<image stem>.png`` — kohya matches masks by stem —
into a mask folder (``folders.is_mask_folder``: never scanned as a concept) and flagged when all
black (nothing found) or mostly grey (the guide's "grey with holes": the remover was unsure).
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from lora_bakery.extension.dataset.imageprep import open_image, thumbnail
from lora_bakery.extension.dataset.safety import Change, Plan, Thumbnail
from lora_bakery.trainer.data.folders import MASK_DIR, MASK_FOLDER_NAMES, in_mask_folder

#: What the user runs (or presses) to install the optional masks feature.
INSTALL_COMMAND = "bakery doctor --install masks"
INSTALL_BUTTON = "Install the masks feature"

#: A pixel is "grey" (neither clearly subject nor background) between these levels.
GREY_LOW, GREY_HIGH = 32, 224
#: Flag "mostly grey" when more than this share of pixels is grey.
GREY_SHARE = 0.4
#: Flag "all black" when less than this share of pixels is above GREY_LOW.
BLACK_SHARE = 0.01


class FeatureMissing(RuntimeError):
    """The optional ``masks`` feature is not installed; the message names the command and the button."""


def check_mask_dir(mask_dir: str) -> str:
    """``mask_dir`` cleaned (``masks/10_chara``), refused when the scan and the trainer would take it for images.

    Raises:
        ValueError: an absolute path, ``..``, or no folder named ``masks``/``mask`` in it.
    """
    clean = str(mask_dir or MASK_DIR).strip().replace("\\", "/").strip("/")
    parts = clean.split("/")
    if os.path.isabs(str(mask_dir or "")) or ".." in parts or not clean:
        raise ValueError(f"mask folder {mask_dir!r}: give a folder inside the training folder, e.g. 'masks' or "
                         "'masks/10_chara'")
    if not in_mask_folder(clean + "/x.png"):
        raise ValueError(f"mask folder {clean!r}: only a folder named {' or '.join(sorted(MASK_FOLDER_NAMES))} is "
                         "kept out of training (anything else would be scanned, tagged and trained as images); "
                         f"use 'masks' or 'masks/{parts[0]}'")
    return clean


class Remover(Protocol):
    """transparent-background's ``Remover`` as far as we use it."""

    def process(self, img, type: str = "rgba", threshold=None, reverse: bool = False): ...  # noqa: A002


@dataclass
class MaskResult:
    """One mask: where it goes, its quality flags, and its coverage (share of foreground pixels)."""

    image: str
    mask: str
    flags: list[str] = field(default_factory=list)
    coverage: float = 0.0


def mask_flags(mask: np.ndarray) -> tuple[list[str], float]:
    """Quality flags for a grayscale mask (uint8, H×W): ``all black``, ``all white``, ``mostly grey``.

    Returns:
        `tuple[list[str], float]`: (flags, share of pixels ≥ 128).
    """
    m = np.asarray(mask)
    if m.ndim == 3:
        m = m[..., 0]
    total = max(m.size, 1)
    above = float((m > GREY_LOW).sum()) / total
    grey = float(((m > GREY_LOW) & (m < GREY_HIGH)).sum()) / total
    coverage = float((m >= 128).sum()) / total
    flags = []
    if above < BLACK_SHARE:
        flags.append("all black: the remover found no subject; train this image without a mask")
    elif grey > GREY_SHARE:
        flags.append(f"mostly grey ({grey:.0%} unsure pixels): likely holes in the subject; check or drop the mask")
    if float((m >= GREY_HIGH).sum()) / total > 0.99:
        flags.append("all white: the whole image is subject; the mask does nothing")
    return flags, coverage


def _as_gray(out) -> np.ndarray:
    if isinstance(out, Image.Image):
        return np.asarray(out.convert("L"))
    a = np.asarray(out)
    if a.ndim == 3:
        a = a[..., 0]
    if a.dtype != np.uint8:
        a = (a.astype(np.float64) * (255.0 if a.max() <= 1.0 else 1.0)).clip(0, 255).astype(np.uint8)
    return a


def plan_masks(root: str | os.PathLike, images: Iterable[str], mask_dir: str, remover: Remover, *,
               overwrite: bool = False, thumbs: bool = True, progress=None) -> tuple[Plan, list[MaskResult]]:
    """Run ``remover`` over images and plan the mask files.

    Args:
        root (`str | os.PathLike`): the training folder.
        images (`Iterable[str]`): images relative to ``root``.
        mask_dir (`str`): the mask folder relative to ``root`` (e.g. ``masks/10_chara``).
        remover (`Remover`): ``process(img, type="map")`` → grayscale map.
        overwrite (`bool`, *optional*, defaults to False): replace existing masks (backed up) instead of skipping.
        thumbs (`bool`, *optional*, defaults to True): add image/mask thumbnails to the plan.
        progress (*optional*): a ``Progress``; stepped per image; stops early when interrupted.

    Returns:
        `tuple[Plan, list[MaskResult]]`: the plan (``create``/``write`` per mask) and per-mask flags.
    """
    root = Path(os.path.abspath(root))
    images = list(images)
    plan = Plan("masks")
    results: list[MaskResult] = []
    stems: dict[str, str] = {}
    if progress is not None:
        progress.begin(len(images), "making masks")
    for rel in images:
        if progress is not None and progress.interrupted:
            plan.skipped.append((rel, "interrupted"))
            continue
        stem = Path(rel).stem
        target = f"{mask_dir.rstrip('/')}/{stem}.png"
        if stem in stems:
            plan.skipped.append((rel, f"same name as {stems[stem]}: both would need mask {target}"))
        elif (root / target).exists() and not overwrite:
            plan.skipped.append((rel, f"{target} already exists (--overwrite or 'Overwrite existing masks' replaces "
                                      "it, backed up)"))
        else:
            stems[stem] = rel
            try:
                img = open_image(root / rel)
                if img.mode == "RGBA":  # transparent-background wants RGB
                    bg = Image.new("RGBA", img.size, (255, 255, 255, 255))
                    img = Image.alpha_composite(bg, img)
                gray = _as_gray(remover.process(img.convert("RGB"), type="map"))
                if gray.shape[:2] != (img.height, img.width):
                    gray = np.asarray(Image.fromarray(gray).resize(img.size, Image.BILINEAR))
            except Exception as exc:
                plan.skipped.append((rel, f"no mask: {exc}"))
            else:
                buf = io.BytesIO()
                mask_img = Image.fromarray(gray, "L").convert("RGB")  # kohya reads the R channel
                mask_img.save(buf, format="PNG")
                flags, cov = mask_flags(gray)
                kind = "write" if (root / target).exists() else "create"
                plan.changes.append(Change(target, kind, new_bytes=buf.getvalue(),
                                           description=f"mask of {rel}" + (f" — {flags[0]}" if flags else "")))
                results.append(MaskResult(rel, target, flags, cov))
                if thumbs and len(plan.thumbnails) < 60:
                    plan.thumbnails.append(Thumbnail(rel, thumbnail(img), thumbnail(mask_img), "; ".join(flags)))
        if progress is not None:
            progress.step(1)
    if progress is not None:
        progress.end()
    return plan, results


def check_checkpoint(ckpt: str | os.PathLike) -> None:
    """Refuse a local mask checkpoint that holds more than tensors.

    transparent-background's checkpoints are pickles (``.pth``) and releases before 1.3.4 load them
    with a plain ``torch.load``, which runs whatever code a crafted file carries. Loading it first
    with ``weights_only=True`` (torch's restricted unpickler) proves it is plain weights.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not a plain-weights checkpoint (the message says why).
    """
    import torch

    path = Path(ckpt)
    if not path.is_file():
        raise FileNotFoundError(f"{ckpt}: mask checkpoint not found")
    try:
        torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure means "not plain weights"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{path.name}: not a plain-weights checkpoint, refusing to load it (a pickle can run code). "
                         f"Use the official ckpt_base.pth / ckpt_fast.pth. Detail: {first[:200]}") from None


def default_remover(ckpt: str | os.PathLike | None = None, mode: str = "base", *, device: str | None = None):
    """The real transparent-background ``Remover``; never installs anything (see :func:`install_feature`).

    Args:
        ckpt (`str | os.PathLike`, *optional*): a local ``ckpt_base.pth`` (offline use; skips the download).
        mode (`str`, *optional*, defaults to ``"base"``): ``base``, ``fast`` or ``base-nightly``.
        device (`str`, *optional*): e.g. ``"cpu"``; transparent-background's default picks CUDA first.

    Raises:
        FeatureMissing: transparent-background is not installed (the message says how to install it).
    """
    import importlib.util

    if ckpt is not None:
        check_checkpoint(ckpt)
    if importlib.util.find_spec("transparent_background") is None:
        raise FeatureMissing(f"background masks need the optional 'masks' feature (transparent-background), which is "
                             f"not installed; nothing was installed now. Install it with `{INSTALL_COMMAND}` or the "
                             f"'{INSTALL_BUTTON}' button in Dataset → Masks, then preview again.")
    from transparent_background import Remover as TBRemover

    kwargs = {"mode": mode}
    if ckpt is not None:
        kwargs["ckpt"] = str(ckpt)
    if device is not None:
        kwargs["device"] = device
    return TBRemover(**kwargs)


def install_plan() -> list[str]:
    """The packages :func:`install_feature` would install now (missing ones only), for the user to read first."""
    from lora_bakery import deps

    return [r.dist for r in deps.missing(deps.requirements_for(["masks"]), lazy=None) if r.installable]


def install_feature(log=None) -> tuple[bool, str]:
    """Install the ``masks`` feature now: the explicit user action (CLI flag or tab button), never a preview.

    Every installed package keeps its version (``deps.ensure_installed``'s rules).

    Returns:
        `tuple[bool, str]`: ``(usable, detail)``.
    """
    from lora_bakery import deps

    return deps.ensure_installed("masks", log=log, retry=True)
