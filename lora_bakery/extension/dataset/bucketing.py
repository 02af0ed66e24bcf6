"""Bucket preview for a scanned dataset: kohya's exact bucket per image, flags, histogram, sort plan.

The bucket math lives in :mod:`lora_bakery.trainer.data.buckets` (shared with the trainer); this
module joins it to a :class:`~lora_bakery.extension.dataset.scan.ScanResult`, shows the image the
trainer will see (:func:`trainer_view`, the trainer's own resize and crop) and builds the optional
"sort into ``bucket_WxH`` subfolders" plan. (Sorted subfolders are for looking at, not training:
kohya reads only the concept folder itself, so the plan says so.)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from lora_bakery.extension.dataset.names import PlannedPaths
from lora_bakery.extension.dataset.safety import Change, Plan
from lora_bakery.extension.dataset.scan import ImageInfo, ScanResult
from lora_bakery.trainer.data.buckets import BucketChoice, BucketManager, BucketSettings, Size
from lora_bakery.trainer.data.folders import CAPTION_EXTENSION


@dataclass
class BucketRow:
    """One image's bucket preview."""

    path: str
    folder: str
    repeats: int
    choice: BucketChoice

    @property
    def flags(self) -> list[str]:
        c = self.choice
        out = []
        if c.problem:
            out.append(c.problem)
        if c.needs_upscale:
            out.append("needs upscale: fewer pixels than the training resolution")
        if c.loses_detail:
            out.append(f"loses detail: shrunk to {c.scale:.0%}; crop extra face/upper-body copies")
        return out


@dataclass
class DatasetBuckets:
    """All rows plus the histogram of samples per epoch (image count × repeats) per bucket."""

    settings: BucketSettings
    rows: list[BucketRow] = field(default_factory=list)
    histogram: dict[Size, int] = field(default_factory=dict)
    images_per_bucket: dict[Size, int] = field(default_factory=dict)

    def flagged(self) -> list[BucketRow]:
        return [r for r in self.rows if r.flags]


def bucket_dataset(result: ScanResult, settings: BucketSettings) -> DatasetBuckets:
    """Assign every usable scanned image to its kohya bucket.

    Args:
        result (`ScanResult`): from :func:`~lora_bakery.extension.dataset.scan.scan`.
        settings (`BucketSettings`): resolution (512² SD1.5, 1024² SDXL), min/max/step, no-upscale.

    Returns:
        `DatasetBuckets`: per-image rows (bucket, resized size, crop, flags) and the histograms.
    """
    mgr = BucketManager(settings)
    memo: dict[Size, BucketChoice] = {}
    out = DatasetBuckets(settings)
    for folder, im in result.images():
        if not im.usable or im.width <= 0:
            continue
        key = (im.width, im.height)
        c = memo.get(key)
        if c is None:
            c = memo[key] = mgr.choose(*key)
        reps = folder.repeats or 0
        out.rows.append(BucketRow(im.path, folder.path, reps, c))
        if not c.problem:
            out.histogram[c.bucket] = out.histogram.get(c.bucket, 0) + reps
            out.images_per_bucket[c.bucket] = out.images_per_bucket.get(c.bucket, 0) + 1
    out.histogram = dict(sorted(out.histogram.items()))
    out.images_per_bucket = dict(sorted(out.images_per_bucket.items()))
    return out


def plan_sort_into_buckets(result: ScanResult, buckets: DatasetBuckets) -> Plan:
    """Plan moving each image (and its caption) into ``<folder>/bucket_WxH/``.

    Kohya does not read subfolders, so this is for reviewing by bucket; undo puts everything back.
    An image whose name is taken in its bucket folder (an earlier sort), or which shares its caption
    with an image going to another bucket (``a.png`` + ``a.jpg``), is skipped with the reason; the
    others still move.
    """
    plan = Plan("sort-buckets")
    planned = PlannedPaths(result.root)
    images: dict[str, ImageInfo] = {im.path: im for _, im in result.images()}
    moved_caption: dict[str, tuple[str, str]] = {}  # caption → (its bucket folder, the image it moved with)
    for row in buckets.rows:
        if row.choice.problem:
            plan.skipped.append((row.path, row.choice.problem))
            continue
        w, h = row.choice.bucket
        parent, _, name = row.path.rpartition("/")
        dest_dir = f"{parent}/bucket_{w}x{h}" if parent else f"bucket_{w}x{h}"
        dest = f"{dest_dir}/{name}"
        im = images.get(row.path)
        stem = name.rsplit(".", 1)[0]
        cap = (f"{parent}/{stem}{CAPTION_EXTENSION}" if parent else f"{stem}{CAPTION_EXTENSION}") if (
            im is not None and im.caption is not None and im.caption.exists) else None
        cap_dest = f"{dest_dir}/{stem}{CAPTION_EXTENSION}"
        if planned.exists(dest):
            plan.skipped.append((row.path, f"{dest} already exists (an earlier sort?); undo it or move that file first"))
            continue
        if cap in moved_caption and moved_caption[cap][0] != dest_dir:
            plan.skipped.append((row.path, f"shares its caption {cap} with {moved_caption[cap][1]}, which goes to "
                                           f"{moved_caption[cap][0]}; rename one of them (scan: shared-caption)"))
            continue
        if cap is not None and cap not in moved_caption and planned.exists(cap_dest):
            plan.skipped.append((row.path, f"{cap_dest} already exists; undo the earlier sort or move that file first"))
            continue
        plan.changes.append(Change(row.path, "move", new_path=dest,
                                   description=f"bucket {w}x{h} (kohya does not read subfolders: for review only)"))
        planned.remove(row.path)
        planned.add(dest, row.path)
        if cap is not None and cap not in moved_caption:
            plan.changes.append(Change(cap, "move", new_path=cap_dest, description="caption follows its image"))
            planned.remove(cap)
            planned.add(cap_dest, row.path)
            moved_caption[cap] = (dest_dir, row.path)
    return plan


def trainer_view(root: str | os.PathLike, row: BucketRow):
    """The image exactly as the trainer will see it: read as kohya reads it (RGB, no EXIF rotation),
    resized and centre-cropped to its bucket by the trainer's own :func:`buckets.trainer_view`.

    Returns:
        `PIL.Image.Image | None`: ``row.choice.bucket`` in size; None when the file cannot be decoded
        or has no bucket.
    """
    from PIL import Image

    from lora_bakery.trainer.data.buckets import trainer_view as view

    if row.choice.problem:
        return None
    try:
        with Image.open(Path(root) / row.path) as im:
            return view(im.convert("RGB"), row.choice)
    except Exception:  # noqa: BLE001 - a broken image gets no preview (the scan already flags it)
        return None


def trainer_views(root: str | os.PathLike, buckets: DatasetBuckets, limit: int | None = None):
    """``(row, image)`` of the rows worth looking at first, flagged ones (upscaled, strongly shrunk) before
    the rest, each image as :func:`trainer_view` makes it; rows whose image cannot be decoded are left out.

    Args:
        limit (`int`, *optional*): look at no more than this many rows (all when None).
    """
    rows = buckets.flagged() + [r for r in buckets.rows if not r.flags]
    for row in rows[:limit]:
        image = trainer_view(root, row)
        if image is not None:
            yield row, image
