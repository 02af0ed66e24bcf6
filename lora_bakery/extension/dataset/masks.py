"""Masks for masked-loss training: a remover's saliency map per image, same file names, quality flags.

The remover is anything with transparent-background's interface, ``remover.process(img, type="map")``
returning a 3-channel grayscale map (PIL image or numpy array; reference/dataset-tools.md §4). The real
one is built lazily by :func:`default_remover`, which installs the optional ``masks`` feature first
(``lora_bakery.deps.ensure_installed``) and accepts a local checkpoint for offline use. Masks are
written as ``<mask folder>/<image stem>.png`` — kohya matches masks by stem — and flagged when all
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

#: A pixel is "grey" (neither clearly subject nor background) between these levels.
GREY_LOW, GREY_HIGH = 32, 224
#: Flag "mostly grey" when more than this share of pixels is grey.
GREY_SHARE = 0.4
#: Flag "all black" when less than this share of pixels is above GREY_LOW.
BLACK_SHARE = 0.01


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
            plan.skipped.append((rel, f"{target} already exists"))
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


def default_remover(ckpt: str | os.PathLike | None = None, mode: str = "base", *, log=None, device: str | None = None):
    """The real transparent-background ``Remover``, installing the ``masks`` feature on first use.

    Args:
        ckpt (`str | os.PathLike`, *optional*): a local ``ckpt_base.pth`` (offline use; skips the download).
        mode (`str`, *optional*, defaults to ``"base"``): ``base``, ``fast`` or ``base-nightly``.
        log (`Callable[[str], None]`, *optional*): install progress lines.
        device (`str`, *optional*): e.g. ``"cpu"``; transparent-background's default picks CUDA first.

    Raises:
        RuntimeError: the feature could not be installed (the message says why).
    """
    from lora_bakery import deps

    if ckpt is not None:
        check_checkpoint(ckpt)
    ok, detail = deps.ensure_installed("masks", log=log)
    if not ok:
        raise RuntimeError(f"background masks are unavailable: {detail}")
    from transparent_background import Remover as TBRemover

    kwargs = {"mode": mode}
    if ckpt is not None:
        kwargs["ckpt"] = str(ckpt)
    if device is not None:
        kwargs["device"] = device
    return TBRemover(**kwargs)
