"""Per-sample image augmentations kohya applies when latents are not cached: ``random_crop`` and ``color_aug``.

kohya (library/train_util.py): after the resize, ``trim_and_resize_if_required`` crops the excess at
a random offset in ``[0, excess]`` (``random.randint``, both ends included) instead of the centre;
then ``AugHelper.color_aug`` runs with probability 0.33, choosing a hue shift (uniform ±8 on OpenCV's
0–180 hue scale) or a "gamma" of 0.95–1.05 with equal odds; the horizontal flip comes last.

kohya's gamma raises the 0–255 values themselves (``np.clip(image ** gamma, 0, 255)``), not values
scaled to 0–1, so it is a strong brightness change (255 ** 0.95 ≈ 193; anything above ≈ 195
saturates at 1.05). We keep that: LoRA makers' recipes were tuned on kohya's behaviour.

The random draws come from the sample's own ``random.Random`` (the batcher's ``sample_rng``), after the
caption and flip draws, so a run is reproducible and resumable and turning an augmentation on does
not change the caption shuffles.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

#: kohya ``AugHelper.color_aug`` constants.
COLOR_AUG_PROBABILITY = 0.33
HUE_SHIFT_LIMIT = 8.0  # OpenCV hue units (0–180 for a full turn)
GAMMA_RANGE = (0.95, 1.05)


@dataclass(frozen=True)
class SampleAug:
    """What one sample gets this step.

    Attributes:
        crop: the crop box (left, top, right, bottom) in resized coordinates, or None for the centre crop.
        hue_shift: a hue shift in OpenCV units (−8…8), or None.
        gamma: kohya's 0–255 gamma, or None.
    """

    crop: tuple[int, int, int, int] | None = None
    hue_shift: float | None = None
    gamma: float | None = None

    @property
    def changes_colour(self) -> bool:
        return self.hue_shift is not None or self.gamma is not None


NONE = SampleAug()


def random_crop_box(resized: tuple[int, int], bucket: tuple[int, int], rng: random.Random) -> tuple[int, int, int, int]:
    """kohya's random crop: offset ``randint(0, excess)`` on each axis with excess (width first)."""
    left = rng.randint(0, resized[0] - bucket[0]) if resized[0] > bucket[0] else 0
    top = rng.randint(0, resized[1] - bucket[1]) if resized[1] > bucket[1] else 0
    return left, top, left + min(bucket[0], resized[0]), top + min(bucket[1], resized[1])


def draw(random_crop: bool, color_aug: bool, resized: tuple[int, int], bucket: tuple[int, int],
         rng: random.Random) -> SampleAug:
    """The augmentation of one sample, drawn in kohya's order (crop, then colour)."""
    crop = random_crop_box(resized, bucket, rng) if random_crop else None
    hue = gamma = None
    if color_aug and rng.random() <= COLOR_AUG_PROBABILITY:
        if rng.random() > 0.5:
            hue = rng.uniform(-HUE_SHIFT_LIMIT, HUE_SHIFT_LIMIT)
        else:
            gamma = rng.uniform(*GAMMA_RANGE)
    return SampleAug(crop, hue, gamma)


def apply_colour(rgb: np.ndarray, aug: SampleAug) -> np.ndarray:
    """Apply ``aug``'s hue shift or gamma to an ``[H, W, 3]`` uint8 array (a new array; unchanged when none)."""
    if aug.gamma is not None:
        return np.clip(rgb.astype(np.float64) ** aug.gamma, 0, 255).astype(np.uint8)
    if aug.hue_shift is not None:
        return shift_hue(rgb, aug.hue_shift)
    return rgb


def shift_hue(rgb: np.ndarray, shift: float) -> np.ndarray:
    """Rotate the hue of a uint8 RGB array by ``shift`` OpenCV hue units (2° each), keeping saturation and value.

    Vectorised HSV in float (OpenCV's 8-bit hue rounding is not reproduced; the shift distribution is
    kohya's). Greys have no hue and stay exactly as they were.
    """
    x = rgb.astype(np.float64) / 255.0
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    v = x.max(-1)
    c = v - x.min(-1)
    safe = np.where(c > 0, c, 1.0)
    h = np.where(v == r, ((g - b) / safe) % 6.0, np.where(v == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0))
    h = np.where(c > 0, h, 0.0)
    h = (h + shift / 30.0) % 6.0  # 180 OpenCV units = 6 sextants
    # back to RGB from (h, chroma, value)
    k = np.stack([(5.0 + h) % 6.0, (3.0 + h) % 6.0, (1.0 + h) % 6.0], -1)
    out = v[..., None] - c[..., None] * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)
    return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)
