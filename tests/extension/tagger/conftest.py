"""Fixtures: tiny real ONNX taggers (written by ``tagger.tiny``) and small real image files."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from lora_bakery.extension.tagger.tiny import write_tiny_tagger

COLOURS = {
    "red": (255, 0, 0),
    "green": (0, 255, 0),
    "blue": (0, 0, 255),
    "yellow": (255, 255, 0),
    "white": (255, 255, 255),
    "black": (0, 0, 0),
}


@pytest.fixture(scope="session")
def tagger_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("taggers")


@pytest.fixture(scope="session")
def tiny_v3(tagger_root) -> Path:
    return write_tiny_tagger(tagger_root / "tiny-v3", "v3")


@pytest.fixture(scope="session")
def tiny_v2_b1(tagger_root) -> Path:
    """v2 names, batch dimension fixed to 1 (like the moat-v2 export)."""
    return write_tiny_tagger(tagger_root / "tiny-v2-b1", "v2", fixed_batch=True)


@pytest.fixture(scope="session")
def tiny_v2_seed7(tagger_root) -> Path:
    """A second, different tagger (other filler weights) for union tests."""
    return write_tiny_tagger(tagger_root / "tiny-v2-s7", "v2", seed=7)


def make_colour_images(folder: Path, size: int = 96) -> dict[str, Path]:
    """One square PNG per colour in COLOURS, named after the colour."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, rgb in COLOURS.items():
        path = folder / f"{name}.png"
        Image.new("RGB", (size, size), rgb).save(path)
        out[name] = path
    return out


@pytest.fixture
def colour_images(tmp_path) -> dict[str, Path]:
    return make_colour_images(tmp_path / "data")
