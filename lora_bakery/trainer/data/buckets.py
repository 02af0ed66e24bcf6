"""kohya's aspect-ratio buckets, reproduced exactly (pure Python; Pillow only for the preview image).

Sources (kohya-ss/sd-scripts @48d368f): ``library/model_util.py make_bucket_resolutions``,
``library/train_util.py BucketManager.select_bucket / round_to_steps / get_crop_ltrb``,
``BaseDataset.adjust_min_max_bucket_reso_by_steps`` and ``trim_and_resize_if_required``.
The Dataset tab uses this to show, per image, the bucket, the resized size, the crop box and "the
image the trainer will see"; the trainer uses the same functions, so the preview cannot drift.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

Size = tuple[int, int]

#: "loses detail": the trainer shrinks the image by more than this linear factor (e.g. a 4K full-body shot).
LOSES_DETAIL_SCALE = 0.5


@dataclass(frozen=True)
class BucketSettings:
    """The kohya options that decide buckets.

    Args:
        resolution (`tuple[int, int]`): ``--resolution`` as (width, height): 512² for SD1.5, 1024² for SDXL.
        min_reso (`int`, defaults to 256): ``--min_bucket_reso`` (snapped down to ``step``).
        max_reso (`int`, defaults to 1024): ``--max_bucket_reso`` (snapped up to ``step``).
        step (`int`, defaults to 64): ``--bucket_reso_steps``.
        no_upscale (`bool`, defaults to False): ``--bucket_no_upscale``.
        enable (`bool`, defaults to True): ``--enable_bucket``; off means one bucket equal to the resolution,
            every image scaled to cover it and centre-cropped (kohya's ``make_buckets`` without buckets:
            ``select_bucket`` over that one predefined size; ``bucket_no_upscale`` does not apply).
    """

    resolution: Size = (512, 512)
    min_reso: int = 256
    max_reso: int = 1024
    step: int = 64
    no_upscale: bool = False
    enable: bool = True

    def __post_init__(self) -> None:
        if self.step <= 0:
            raise ValueError(f"step must be positive, got {self.step}")
        if min(self.resolution) <= 0:
            raise ValueError(f"resolution must be positive, got {self.resolution}")

    @classmethod
    def for_family(cls, family: str, **overrides) -> BucketSettings:
        """Defaults for ``"sd15"`` (512², 256..1024) or ``"sdxl"`` (1024², 512..2048, the community SDXL range)."""
        base = {"sd15": dict(resolution=(512, 512)), "sd1": dict(resolution=(512, 512)),
                "sdxl": dict(resolution=(1024, 1024), min_reso=512, max_reso=2048)}
        if family not in base:
            raise ValueError(f"unknown family {family!r}; use 'sd15' or 'sdxl'")
        return cls(**{**base[family], **overrides})

    @property
    def max_area(self) -> int:
        return self.resolution[0] * self.resolution[1]

    def snapped(self) -> tuple[int, int]:
        """(min, max) snapped to the step as kohya's ``adjust_min_max_bucket_reso_by_steps`` does.

        Raises:
            ValueError: when the resolution lies outside [min, max] (kohya asserts the same).
        """
        lo = self.min_reso - self.min_reso % self.step
        hi = self.max_reso if self.max_reso % self.step == 0 else self.max_reso + self.step - self.max_reso % self.step
        if min(self.resolution) < lo:
            raise ValueError(f"min_reso {lo} must be at most the resolution {self.resolution}")
        if max(self.resolution) > hi:
            raise ValueError(f"max_reso {hi} must be at least the resolution {self.resolution}")
        return lo, hi


def make_bucket_resolutions(max_reso: Size, min_size: int = 256, max_size: int = 1024, divisible: int = 64) -> list[Size]:
    """kohya ``make_bucket_resolutions``: the sorted bucket list for a max area.

    Args:
        max_reso (`tuple[int, int]`): the training resolution (width, height); its area bounds every bucket.
        min_size (`int`, defaults to 256): smallest side.
        max_size (`int`, defaults to 1024): largest side.
        divisible (`int`, defaults to 64): every side is a multiple of this.

    Returns:
        `list[tuple[int, int]]`: (width, height) pairs, sorted.
    """
    max_area = max_reso[0] * max_reso[1]
    side = int(math.sqrt(max_area) // divisible) * divisible
    resos = {(side, side)}
    width = min_size
    while width <= max_size:
        height = min(max_size, int((max_area // width) // divisible) * divisible)
        if height >= min_size:
            resos.add((width, height))
            resos.add((height, width))
        width += divisible
    return sorted(resos)


@dataclass(frozen=True)
class BucketChoice:
    """Where one image lands and what the trainer does to it.

    Attributes:
        size: the image size as kohya reads it (no EXIF rotation).
        bucket: the bucket (width, height) = the size the trainer sees.
        resized: the size after scaling, before the crop.
        crop: the centre-crop box (left, top, right, bottom) in resized coordinates (``--random_crop``
            picks the offset at random in [0, excess] instead).
        ar_error: bucket aspect ratio minus image aspect ratio (kohya's ``ar_error``).
        scale: the linear resize factor (> 1 is an upscale).
        needs_upscale: the image has fewer pixels than the resolution's area.
        loses_detail: the trainer shrinks it by more than 2× (crop extra face/upper-body copies).
        problem: set when kohya cannot use the image at all (smaller than one bucket step under ``no_upscale``).
    """

    size: Size
    bucket: Size
    resized: Size
    crop: tuple[int, int, int, int]
    ar_error: float
    scale: float
    needs_upscale: bool
    loses_detail: bool
    problem: str | None = None


def round_to_steps(x: float, step: int) -> int:
    """kohya ``BucketManager.round_to_steps``: round half up, then floor to the step."""
    v = int(x + 0.5)
    return v - v % step


def center_crop(resized: Size, bucket: Size) -> tuple[int, int, int, int]:
    """kohya ``trim_and_resize_if_required``'s centre crop: offset = excess // 2 on each axis."""
    left = (resized[0] - bucket[0]) // 2 if resized[0] > bucket[0] else 0
    top = (resized[1] - bucket[1]) // 2 if resized[1] > bucket[1] else 0
    return left, top, left + min(bucket[0], resized[0]), top + min(bucket[1], resized[1])


def sdxl_crop_ltrb(bucket: Size, image_size: Size) -> tuple[float, float, float, float]:
    """kohya ``BucketManager.get_crop_ltrb``: the crop box fed to SDXL's size conditioning (floats, as kohya)."""
    bucket_ar = bucket[0] / bucket[1]
    image_ar = image_size[0] / image_size[1]
    if bucket_ar > image_ar:
        rw, rh = bucket[1] * image_ar, bucket[1]
    else:
        rw, rh = bucket[0], bucket[0] / image_ar
    left = (bucket[0] - rw) // 2
    top = (bucket[1] - rh) // 2
    return left, top, left + rw, top + rh


class BucketManager:
    """Assigns images to buckets exactly as kohya's ``BucketManager`` does.

    Args:
        settings (`BucketSettings`): resolution, min/max, step, no-upscale, enable.
    """

    def __init__(self, settings: BucketSettings) -> None:
        self.settings = settings
        self.step = settings.step
        self.max_area = settings.max_area
        if not settings.enable:
            self.resos: list[Size] = [tuple(settings.resolution)]  # type: ignore[list-item]
        elif settings.no_upscale:
            self.resos = []  # kohya: min/max ignored; the bucket comes from each image's own size
        else:
            lo, hi = settings.snapped()
            self.resos = make_bucket_resolutions(settings.resolution, lo, hi, settings.step)
        self._reso_set = set(self.resos)
        self._ars = [w / h for w, h in self.resos]

    def _closest(self, aspect: float) -> Size:
        """Bucket with the smallest |ar error|; ties go to the first in sorted order (numpy ``argmin``)."""
        ars = self._ars
        return self.resos[min(range(len(ars)), key=lambda i: abs(ars[i] - aspect))]

    def select(self, width: int, height: int) -> tuple[Size, Size, float]:
        """kohya ``select_bucket``: (bucket, resized size, ar error) for an image of ``width`` × ``height``."""
        if width <= 0 or height <= 0:
            raise ValueError(f"image size must be positive, got {width}x{height}")
        aspect = width / height
        if not self.settings.no_upscale or not self.settings.enable:
            reso = (width, height) if (width, height) in self._reso_set else self._closest(aspect)
            ar_reso = reso[0] / reso[1]
            scale = reso[1] / height if aspect > ar_reso else reso[0] / width
            resized = (int(width * scale + 0.5), int(height * scale + 0.5))
        else:
            if width * height > self.max_area:
                rw = math.sqrt(self.max_area * aspect)
                rh = self.max_area / rw
                bw = round_to_steps(rw, self.step)
                bh_in_w = round_to_steps(bw / aspect, self.step)
                ar_w = bw / bh_in_w if bh_in_w else math.inf
                bh = round_to_steps(rh, self.step)
                bw_in_h = round_to_steps(bh * aspect, self.step)
                ar_h = bw_in_h / bh if bh else math.inf
                if abs(ar_w - aspect) < abs(ar_h - aspect):
                    resized = (bw, int(bw / aspect + 0.5))
                else:
                    resized = (int(bh * aspect + 0.5), bh)
            else:
                resized = (width, height)
            reso = (resized[0] - resized[0] % self.step, resized[1] - resized[1] % self.step)
        return reso, resized, reso[0] / reso[1] - aspect if reso[1] else math.inf

    def choose(self, width: int, height: int) -> BucketChoice:
        """Everything the preview shows for one image (see :class:`BucketChoice`)."""
        size = (int(width), int(height))
        bucket, resized, ar_error = self.select(*size)
        scale = resized[0] / size[0]
        problem = None
        if bucket[0] <= 0 or bucket[1] <= 0:
            problem = f"{size[0]}x{size[1]} is smaller than one bucket step ({self.step}px) on a side: kohya cannot use it"
        return BucketChoice(
            size=size, bucket=bucket, resized=resized, crop=center_crop(resized, bucket), ar_error=ar_error,
            scale=scale, needs_upscale=size[0] * size[1] < self.max_area, loses_detail=scale < LOSES_DETAIL_SCALE,
            problem=problem,
        )


@dataclass
class BucketReport:
    """Bucket assignment for a set of images, with the histogram the UI plots."""

    choices: list[BucketChoice] = field(default_factory=list)
    histogram: dict[Size, int] = field(default_factory=dict)
    needs_upscale: int = 0
    loses_detail: int = 0
    unusable: int = 0


def assign(sizes: Iterable[Size], settings: BucketSettings, weights: Iterable[int] | None = None) -> BucketReport:
    """Assign many images at once.

    Args:
        sizes (`Iterable[tuple[int, int]]`): image sizes as kohya reads them.
        settings (`BucketSettings`): the bucket options.
        weights (`Iterable[int]`, *optional*): per-image repeats, so the histogram counts samples per epoch.

    Returns:
        `BucketReport`: per-image choices (same order), the bucket histogram and flag counts.
    """
    mgr = BucketManager(settings)
    memo: dict[Size, BucketChoice] = {}
    report = BucketReport()
    hist: Counter[Size] = Counter()
    ws = iter(weights) if weights is not None else None
    for s in sizes:
        key = (int(s[0]), int(s[1]))
        c = memo.get(key)
        if c is None:
            c = memo[key] = mgr.choose(*key)
        report.choices.append(c)
        w = next(ws) if ws is not None else 1
        if c.problem:
            report.unusable += 1
            continue
        hist[c.bucket] += w
        report.needs_upscale += c.needs_upscale
        report.loses_detail += c.loses_detail
    report.histogram = dict(sorted(hist.items()))
    return report


def trainer_view(image, choice: BucketChoice, crop: tuple[int, int, int, int] | None = None):
    """The image the trainer will see: resized (area when shrinking, Lanczos when enlarging) and centre-cropped
    (or cropped to ``crop``, a ``random_crop`` box from ``augment.random_crop_box``).

    PIL's ``BOX`` filter is the area average that kohya gets from cv2 ``INTER_AREA``.

    Args:
        image (`PIL.Image.Image`): the image as kohya loads it (RGB, no EXIF rotation).
        choice (`BucketChoice`): from :meth:`BucketManager.choose` for this image's size.

    Returns:
        `PIL.Image.Image`: exactly ``choice.bucket`` in size.
    """
    from PIL import Image

    if image.size != choice.size:
        raise ValueError(f"image is {image.size}, but the bucket choice was made for {choice.size}")
    img = image
    if choice.resized != choice.size:
        shrinking = choice.resized[0] * choice.resized[1] < choice.size[0] * choice.size[1]
        img = img.resize(choice.resized, Image.BOX if shrinking else Image.LANCZOS)
    return img.crop(crop if crop is not None else choice.crop)
