"""Image prep plans: convert to PNG, remove alpha, trim uniform padding, pad to square.

Each function decodes the images, computes the new bytes and returns a
:class:`~lora_bakery.extension.dataset.safety.Plan` (with before/after thumbnails); nothing is written
until :func:`~lora_bakery.extension.dataset.safety.apply`. Decoding always applies the EXIF rotation
(kohya ignores it, so a rotated photo would train sideways) and brings 16-bit and CMYK images to 8-bit
RGB(A) — Pillow's plain ``convert("RGB")`` clips 16-bit values to white.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, ImageSequence

from lora_bakery.extension.dataset.names import PlannedPaths, name_groups
from lora_bakery.extension.dataset.safety import Change, Plan, Thumbnail
from lora_bakery.trainer.data.folders import CAPTION_EXTENSION, is_image_name
from lora_bakery.trainer.data.pixels import to_8bit  # the trainer decodes with the same conversion

THUMB = 128
#: Thumbnails are made for the first this-many changed images only (the preview pages the rest).
MAX_THUMBS = 60
Color = tuple[int, int, int]


def open_frames(path: str | os.PathLike) -> list[Image.Image]:
    """Every frame of an image, EXIF-rotated and 8-bit (one frame for still images)."""
    with Image.open(path) as im:
        if getattr(im, "n_frames", 1) == 1:
            im.load()
            return [to_8bit(ImageOps.exif_transpose(im))]
        # Pillow ≥ 10 gives later GIF frames as RGB(A) and the first as P: copy each frame as it is
        return [to_8bit(frame.copy()) for frame in ImageSequence.Iterator(im)]


def open_image(path: str | os.PathLike) -> Image.Image:
    """The first frame, EXIF-rotated and 8-bit."""
    return open_frames(path)[0]


def encode(img: Image.Image, fmt: str = "PNG") -> bytes:
    """Encode ``img``; PNG is lossless, JPEG quality 95 with 4:4:4, WebP lossless."""
    buf = io.BytesIO()
    if fmt == "JPEG":
        img.convert("RGB").save(buf, format="JPEG", quality=95, subsampling=0)
    elif fmt == "WEBP":
        img.save(buf, format="WEBP", lossless=True)
    else:
        img.save(buf, format=fmt)
    return buf.getvalue()


def thumbnail(img: Image.Image, size: int = THUMB) -> bytes:
    """Small PNG bytes of ``img`` for the preview."""
    t = img.copy()
    t.thumbnail((size, size))
    return encode(t, "PNG")


def _resolve(root: Path, paths: Iterable[str | os.PathLike]) -> list[tuple[str, Path]]:
    out = []
    for p in paths:
        full = Path(p) if Path(p).is_absolute() else root / p
        out.append((full.relative_to(root).as_posix(), full))
    return out


def _has_alpha(img: Image.Image) -> bool:
    return img.mode == "RGBA" and img.getextrema()[3][0] < 255


def plan_convert_to_png(root: str | os.PathLike, paths: Iterable[str | os.PathLike], *, thumbs: bool = True) -> Plan:
    """Convert images to PNG: every GIF/WebP/APNG frame as ``name_f000.png``…, EXIF rotation applied.

    The original moves into the backup (a ``delete`` change); a multi-frame image's caption is copied
    to each frame's caption (and removed once no image of that name is left). PNGs that need nothing
    (one frame, no rotation, 8-bit) are skipped. When a name is taken — on disk, or by another input
    of this plan (``anim.gif`` and ``anim.webp`` both want ``anim_f000.png``) — the new files are named
    after the source's extension (``anim_webp_f000.png``) with a copy of the caption, and the preview
    says so; no collision ever blocks the other conversions.

    Args:
        root (`str | os.PathLike`): the training folder.
        paths (`Iterable[str | os.PathLike]`): images, relative to ``root`` or absolute inside it.
        thumbs (`bool`, *optional*, defaults to True): add before/after thumbnails.

    Returns:
        `Plan`: ``create`` for new PNGs (and frame captions), ``delete`` for originals; ``skipped`` says why.
    """
    root = Path(os.path.abspath(root))
    plan = Plan("convert-png")
    planned = PlannedPaths(root)
    copied: dict[str, str] = {}  # caption copied to frames → the image it came from
    for rel, full in _resolve(root, paths):
        try:
            with Image.open(full) as im:
                fmt, mode, n = im.format, im.mode, getattr(im, "n_frames", 1)
                orient = im.getexif().get(0x0112, 1) if fmt != "PNG" else 1
            frames = open_frames(full)
        except Exception as exc:
            plan.skipped.append((rel, f"cannot read it: {exc}"))
            continue
        if fmt == "PNG" and n == 1 and orient == 1 and mode in ("RGB", "RGBA", "L", "P", "LA"):
            plan.skipped.append((rel, "already a PNG"))
            continue
        what = f"{fmt} {mode}" + (f", {len(frames)} frames" if len(frames) > 1 else "") + (
            f", EXIF orientation {orient} applied" if orient not in (0, 1) else "")
        if len(frames) == 1 and full.name == f"{full.stem}.png":  # a PNG that needs rewriting (16-bit, one-frame APNG)
            plan.changes.append(Change(rel, "write", new_bytes=encode(frames[0]), description=f"{what} → 8-bit PNG"))
        elif not _plan_new_pngs(plan, planned, root, rel, full, frames, what, copied):
            continue
        if thumbs and len(plan.thumbnails) < MAX_THUMBS:
            plan.thumbnails.append(Thumbnail(rel, thumbnail(frames[0]), thumbnail(frames[0]), what))
    for cap, source in copied.items():
        left = _images_named(planned, root, cap)
        if left:
            plan.skipped.append((cap, f"kept (copied to the frames of {source}): still the caption of {left[0]}"))
        else:
            plan.changes.append(Change(cap, "delete", description=f"replaced by the frame captions of {source}"))
            planned.remove(cap)
    return plan


def _plan_new_pngs(plan: Plan, planned: PlannedPaths, root: Path, rel: str, full: Path, frames: list[Image.Image],
                   what: str, copied: dict[str, str]) -> bool:
    """Plan the PNG(s) replacing ``rel`` under free names, caption copies, and the original's removal."""
    prefix = rel[: len(rel) - len(full.name)]
    cap = full.with_name(full.stem + CAPTION_EXTENSION)
    has_cap = cap.is_file()

    def names(base: str) -> list[str]:
        images = [f"{prefix}{base}.png"] if len(frames) == 1 else [f"{prefix}{base}_f{i:03d}.png" for i in range(len(frames))]
        caps = [p[:-4] + CAPTION_EXTENSION for p in images] if has_cap and (len(frames) > 1 or base != full.stem) else []
        return images + caps

    group = planned.first_free(name_groups(full.stem, full.suffix.lstrip(".").lower() or "img", names))
    if group is None:
        plan.skipped.append((rel, f"no free name for its PNG(s) beside {full.stem}*; rename it first"))
        return False
    images, caps = group[: len(frames)], group[len(frames):]
    wanted = names(full.stem)[0]
    renamed = "" if images[0] == wanted else (
        f"; {wanted.rsplit('/', 1)[-1]} is taken by {planned.who(wanted) or 'a file already there'}")
    for path, frame in zip(images, frames):
        plan.changes.append(Change(path, "create", new_bytes=encode(frame), description=f"from {rel} ({what}){renamed}"))
        planned.add(path, rel)
    plan.changes.append(Change(rel, "delete", description="original kept in the backup"))
    planned.remove(rel)
    if caps:
        data = cap.read_bytes()
        for path in caps:
            plan.changes.append(Change(path, "create", new_bytes=data, description=f"caption of {rel}, copied"))
            planned.add(path, rel)
        if len(frames) > 1:
            copied.setdefault(cap.relative_to(root).as_posix(), rel)
    return True


def _images_named(planned: PlannedPaths, root: Path, caption: str) -> list[str]:
    """Images that will use ``caption`` once the plan is made (same folder and stem, on disk or planned)."""
    folder, _, name = caption.rpartition("/")
    stem = os.path.splitext(name)[0]
    prefix = f"{folder}/" if folder else ""
    on_disk = [prefix + n for n in os.listdir(root / folder) if is_image_name(n) and os.path.splitext(n)[0] == stem]
    return [p for p in on_disk if planned.exists(p)] + [
        p for p in planned.owner
        if planned.exists(p) and p.startswith(prefix.lower()) and os.path.splitext(p[len(prefix):])[0] == stem.lower()
        and is_image_name(p) and p not in {d.lower() for d in on_disk}]


def _rewrite(plan: Plan, root: Path, rel: str, full: Path, fmt: str, new: Image.Image, before: Image.Image,
             description: str, thumbs: bool, planned: PlannedPaths) -> None:
    """Add the change writing ``new`` for ``rel``: same file for PNG/JPEG/WebP/BMP, else a PNG beside it
    (skipped with a message when that name is taken on disk or by another input of the plan)."""
    keep = {"PNG": "PNG", "JPEG": "JPEG", "WEBP": "WEBP", "BMP": "BMP"}.get(fmt)
    if keep == "JPEG" and new.mode == "RGBA":
        keep = None
    if keep:
        plan.changes.append(Change(rel, "write", new_bytes=encode(new, keep), description=description))
    else:
        png = full.with_suffix(".png").relative_to(root).as_posix()
        if planned.exists(png):
            by = planned.who(png)
            plan.skipped.append((rel, f"{png} {'is planned from ' + by if by else 'already exists'}; "
                                      "convert or rename one first"))
            return
        plan.changes.append(Change(png, "create", new_bytes=encode(new), description=description))
        plan.changes.append(Change(rel, "delete", description=f"{fmt} replaced by PNG (original kept in the backup)"))
        planned.add(png, rel)
        planned.remove(rel)
    if thumbs and len(plan.thumbnails) < MAX_THUMBS:
        plan.thumbnails.append(Thumbnail(rel, thumbnail(before), thumbnail(new), description))


def _each(root: str | os.PathLike, paths, plan: Plan):
    root = Path(os.path.abspath(root))
    for rel, full in _resolve(root, paths):
        try:
            with Image.open(full) as im:
                fmt, n = im.format or "", getattr(im, "n_frames", 1)
            if n > 1:
                plan.skipped.append((rel, f"{n} frames: run 'convert-png' (Convert to PNG) first, one file per frame"))
                continue
            img = open_image(full)
        except Exception as exc:
            plan.skipped.append((rel, f"cannot read it: {exc}"))
            continue
        yield root, rel, full, fmt, img


def plan_remove_alpha(root: str | os.PathLike, paths: Iterable[str | os.PathLike], color: Color = (255, 255, 255),
                      *, thumbs: bool = True) -> Plan:
    """Composite transparent images onto ``color`` (default white), as the guide's ``-alpha remove``.

    Returns:
        `Plan`: rewrites for images with any transparent pixel; opaque ones are skipped.
    """
    plan = Plan("remove-alpha")
    planned = PlannedPaths(root)
    for root_, rel, full, fmt, img in _each(root, paths, plan):
        if not _has_alpha(img):
            plan.skipped.append((rel, "no transparency"))
            continue
        bg = Image.new("RGBA", img.size, (*color, 255))
        flat = Image.alpha_composite(bg, img).convert("RGB")
        _rewrite(plan, root_, rel, full, fmt, flat, img, f"alpha removed onto rgb{tuple(color)}", thumbs, planned)
    return plan


def trim_box(img: Image.Image, fuzz: float = 20.0) -> tuple[int, int, int, int] | None:
    """Bounding box of what is not uniform padding, like ImageMagick ``-fuzz N% -trim``.

    The padding colour is the top-left pixel; a pixel is padding when its Euclidean distance to it over
    R, G, B (and alpha) is at most ``fuzz``% of 255 (ImageMagick 7's fuzzy colour match).

    Args:
        img (`PIL.Image.Image`): RGB or RGBA.
        fuzz (`float`, *optional*, defaults to 20.0): tolerance in percent.

    Returns:
        `tuple[int, int, int, int] | None`: (left, top, right, bottom), or None when the whole image is padding.
    """
    a = np.asarray(img.convert("RGBA") if img.mode not in ("RGB", "RGBA") else img, dtype=np.float32)
    d2 = ((a - a[0, 0]) ** 2).sum(axis=2)
    content = d2 > (fuzz / 100.0 * 255.0) ** 2
    rows, cols = np.flatnonzero(content.any(axis=1)), np.flatnonzero(content.any(axis=0))
    if rows.size == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def plan_trim(root: str | os.PathLike, paths: Iterable[str | os.PathLike], fuzz: float = 20.0, *,
              thumbs: bool = True) -> Plan:
    """Trim uniform padding (the guide: ``magick -fuzz 20% -trim``).

    Returns:
        `Plan`: rewrites for images with padding to remove; uniform or unpadded images are skipped.
    """
    if not 0 <= fuzz <= 100:
        raise ValueError(f"fuzz must be a percentage in [0, 100], got {fuzz}")
    plan = Plan("trim")
    planned = PlannedPaths(root)
    for root_, rel, full, fmt, img in _each(root, paths, plan):
        box = trim_box(img, fuzz)
        if box is None:
            plan.skipped.append((rel, "the whole image is one colour"))
        elif box == (0, 0, *img.size):
            plan.skipped.append((rel, "no padding to trim"))
        else:
            new = img.crop(box)
            _rewrite(plan, root_, rel, full, fmt, new, img,
                     f"trimmed {img.width}x{img.height} → {new.width}x{new.height} (fuzz {fuzz:g}%)", thumbs, planned)
    return plan


def plan_pad_square(root: str | os.PathLike, paths: Iterable[str | os.PathLike], color: Color = (255, 255, 255), *,
                    thumbs: bool = True) -> Plan:
    """Pad images to a centred square of side max(w, h) with ``color``.

    Returns:
        `Plan`: rewrites for non-square images.
    """
    plan = Plan("pad-square")
    planned = PlannedPaths(root)
    for root_, rel, full, fmt, img in _each(root, paths, plan):
        w, h = img.size
        if w == h:
            plan.skipped.append((rel, "already square"))
            continue
        side = max(w, h)
        fill = (*color, 255) if img.mode == "RGBA" else tuple(color)
        new = Image.new(img.mode, (side, side), fill)
        new.paste(img, ((side - w) // 2, (side - h) // 2))
        _rewrite(plan, root_, rel, full, fmt, new, img, f"padded {w}x{h} → {side}x{side}", thumbs, planned)
    return plan
