"""The exact WD14 preprocessing of SmilingWolf's HF Space ``wd-tagger/app.py``.

reference/dataset-tools.md §1, in order:

1. alpha-composite onto opaque white, then RGB (palette images with ``transparency`` via RGBA);
2. pad to a square of side max(w, h) with white, pasted at ((side-w)//2, (side-h)//2);
3. resize to the model's input size with PIL BICUBIC, only when side != size;
4. float32 in 0..255, **no normalisation**, channels reversed RGB→BGR, NHWC.

Deliberately *not* done, to match the reference: EXIF orientation (the trainer does not apply it
either), upscaling-free padding (picobyte) and edge-repeat padding (toshiaki).

Speed without changing a single value: images without alpha skip step 1 (compositing an opaque
image onto white is the identity), and workers return uint8 arrays; the float32 batch is made
once per batch. :func:`reference_preprocess` is the plain transcription, kept as the test oracle
and the benchmark's one-at-a-time baseline.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from lora_bakery.extension.dataset.headers import has_alpha

WHITE = (255, 255, 255)


def to_rgb_on_white(image: Image.Image) -> Image.Image:
    """Step 1: RGB, with any transparency composited onto white."""
    if not has_alpha(image):
        return image if image.mode == "RGB" else image.convert("RGB")
    rgba = image.convert("RGBA")
    canvas = Image.new("RGBA", rgba.size, WHITE + (255,))
    canvas.alpha_composite(rgba)
    return canvas.convert("RGB")


def pad_square(image: Image.Image) -> Image.Image:
    """Step 2: centre on a white square of side max(w, h)."""
    w, h = image.size
    side = max(w, h)
    if w == h:
        return image
    canvas = Image.new("RGB", (side, side), WHITE)
    canvas.paste(image, ((side - w) // 2, (side - h) // 2))
    return canvas


def to_model_array(square: Image.Image, size: int) -> np.ndarray:
    """Steps 3-4 without the float cast: ``[size, size, 3]`` uint8, BGR, C-contiguous."""
    if square.size[0] != size:
        square = square.resize((size, size), Image.BICUBIC)
    return np.ascontiguousarray(np.asarray(square, dtype=np.uint8)[:, :, ::-1])


def open_square(path: str | Path) -> Image.Image:
    """Decode ``path`` fully and apply steps 1-2 (raises whatever Pillow raises on bad files)."""
    with Image.open(path) as image:
        image.load()
        square = pad_square(to_rgb_on_white(image))
        # closing the file destroys the decoded image too when no conversion made a new one
        return square.copy() if square is image else square


def load_arrays(path: str | Path, sizes: tuple[int, ...]) -> dict[int, np.ndarray]:
    """Decode once and make the uint8 BGR array for every model input size asked for.

    Args:
        path (`str` or `Path`): the image file.
        sizes (`tuple[int, ...]`): distinct input sizes of the taggers in use (448 for all real ones).

    Returns:
        `dict[int, np.ndarray]`: size → ``[size, size, 3]`` uint8 BGR.
    """
    square = open_square(path)
    return {size: to_model_array(square, size) for size in sizes}


def to_batch(arrays: list[np.ndarray]) -> np.ndarray:
    """Stack uint8 ``[H, W, 3]`` arrays into the float32 NHWC batch the model takes (0..255)."""
    return np.stack(arrays).astype(np.float32)


def reference_preprocess(image: Image.Image, size: int) -> np.ndarray:
    """The Space's preprocessing transcribed literally, one image → ``[1, size, size, 3]`` float32.

    Kept as the oracle the fast path is tested against and as the benchmark's baseline.
    """
    canvas = Image.new("RGBA", image.size, (255, 255, 255))
    canvas.alpha_composite(image.convert("RGBA"))
    image = canvas.convert("RGB")
    side = max(image.size)
    padded = Image.new("RGB", (side, side), (255, 255, 255))
    padded.paste(image, ((side - image.size[0]) // 2, (side - image.size[1]) // 2))
    if side != size:
        padded = padded.resize((size, size), Image.BICUBIC)
    array = np.asarray(padded, dtype=np.float32)[:, :, ::-1]
    return np.expand_dims(array, 0)
