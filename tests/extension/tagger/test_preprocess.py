"""The fast preprocessing gives exactly the reference (SmilingWolf Space) arrays."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lora_bakery.extension.tagger.preprocess import load_arrays, reference_preprocess, to_batch


def _noise(mode: str, size: tuple[int, int], seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    rgba = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 4), dtype=np.uint8), "RGBA")
    if mode == "P+transparency":
        image = rgba.convert("RGB").quantize(16)
        image.info["transparency"] = 3
        return image
    return rgba.convert(mode) if mode != "RGBA" else rgba


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "LA", "L", "P", "P+transparency", "CMYK", "1"])
@pytest.mark.parametrize("size", [(64, 40), (30, 90), (448, 448)])
def test_fast_path_equals_reference(tmp_path, mode, size):
    image = _noise(mode, size)
    fmt = "TIFF" if mode == "CMYK" else "PNG"
    path = tmp_path / f"img.{fmt.lower()}"
    image.save(path, format=fmt, **({"transparency": 3} if mode == "P+transparency" else {}))
    with Image.open(path) as reopened:
        expected = reference_preprocess(reopened, 448)
    arrays = load_arrays(path, (448, 64))
    assert arrays[448].dtype == np.uint8 and arrays[448].shape == (448, 448, 3)
    np.testing.assert_array_equal(to_batch([arrays[448]]), expected)
    assert arrays[64].shape == (64, 64, 3)


def test_bgr_white_padding_and_centering(tmp_path):
    path = tmp_path / "red.png"
    Image.new("RGB", (40, 20), (255, 0, 0)).save(path)
    arr = load_arrays(path, (40,))[40]  # side 40 == size: no resize
    assert arr[0, 0].tolist() == [255, 255, 255]  # white pad above
    assert arr[10, 0].tolist() == [0, 0, 255]  # red is BGR (0, 0, 255)
    assert arr[9, 0].tolist() == [255, 255, 255] and arr[10 + 19, 39].tolist() == [0, 0, 255]
    assert arr[30, 0].tolist() == [255, 255, 255]


def test_transparent_pixels_become_white(tmp_path):
    path = tmp_path / "clear.png"
    Image.new("RGBA", (16, 16), (10, 200, 30, 0)).save(path)
    assert np.all(load_arrays(path, (16,))[16] == 255)


def test_first_frame_of_animation(tmp_path):
    path = tmp_path / "anim.gif"
    frames = [Image.new("RGB", (32, 32), c) for c in [(255, 0, 0), (0, 0, 255)]]
    frames[0].save(path, save_all=True, append_images=frames[1:])
    arr = load_arrays(path, (32,))[32]
    assert arr[16, 16].tolist()[2] > 200 and arr[16, 16].tolist()[0] < 50  # red, in BGR
