"""Loading one training image (and its mask) the way kohya does: RGB, resized and cropped to the
bucket, scaled to [-1, 1]; masks in [0, 1] at pixel size.

kohya: ``load_image`` converts to RGB (RGBA when the alpha mask is used; here through :mod:`.pixels`, which
scales 16-bit images instead of clipping them, as "convert to PNG" does), ``trim_and_resize_if_required``
resizes (area when shrinking, Lanczos when enlarging) and centre-crops, ``IMAGE_TRANSFORMS`` maps to
[-1, 1]. The resize/crop is D1's :func:`buckets.trainer_view`, the same code the Dataset tab previews.
``random_crop`` / ``color_aug`` (latents not cached) come in as a :class:`augment.SampleAug`.
"""

from __future__ import annotations

import numpy as np
import torch

from . import augment, pixels
from .augment import SampleAug
from .dataset import DataError, TrainItem


def _open(path):
    from PIL import Image

    try:
        img = Image.open(path)
        img.load()
    except Exception as exc:  # damaged files raise OSError, SyntaxError, ValueError …
        raise DataError(
            f"{path}: cannot read image ({exc}); fix or remove it, or set training.skip_bad_images "
            "(bakery train --skip-bad-images), which decodes every image before caching and leaves such files out"
        ) from None
    return img


def load_pixels(item: TrainItem, flip: bool = False, aug: SampleAug = augment.NONE) -> torch.Tensor:
    """The image as a ``[3, H, W]`` float tensor in [-1, 1] at its bucket size.

    kohya's order: resize, crop (``aug.crop`` or the centre), colour augmentation, flip.

    Raises:
        DataError: the file cannot be decoded (the message names it).
    """
    from .buckets import trainer_view

    img = _open(item.image)
    if img.size != item.choice.size:
        raise DataError(
            f"{item.image}: changed size during training ({img.size}, planned {item.choice.size})"
        )
    arr = np.asarray(trainer_view(pixels.training_rgb(img), item.choice, aug.crop))
    if aug.changes_colour:
        arr = augment.apply_colour(arr, aug)
    if flip:
        arr = arr[:, ::-1]
    out = arr.astype(np.float32) / 127.5 - 1.0
    return torch.from_numpy(np.ascontiguousarray(out)).permute(2, 0, 1).contiguous()


def load_mask(item: TrainItem, flip: bool = False, aug: SampleAug = augment.NONE) -> torch.Tensor | None:
    """The loss mask as ``[H, W]`` in [0, 1] at the bucket size, or ``None`` when the item has none.

    From ``conditioning_data_dir`` (the mask image's red channel / 255: kohya maps it from [-1, 1]
    to [0, 1], the same thing) or from the image's alpha channel (alpha / 255).
    """
    from PIL import Image

    from .buckets import trainer_view

    if item.mask is not None:
        mask = _open(item.mask).convert("RGB").getchannel("R")
        if mask.size != item.choice.size:
            mask = mask.resize(item.choice.size, Image.BOX)
    elif item.alpha_mask:
        img = pixels.to_8bit(_open(item.image))
        mask = img.getchannel("A") if img.mode == "RGBA" else Image.new("L", img.size, 255)
    else:
        return None
    mask = trainer_view(mask, item.choice, aug.crop)
    if flip:
        mask = mask.transpose(0)
    return torch.from_numpy(np.asarray(mask, dtype=np.float32).copy() / 255.0)
