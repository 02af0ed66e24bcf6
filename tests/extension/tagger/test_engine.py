"""Tagging real image files with real onnxruntime sessions on the tiny taggers."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from lora_bakery.extension.host.base import NullProgress
from lora_bakery.extension.tagger.engine import tag_images
from lora_bakery.extension.tagger.postprocess import FormatOptions, Thresholds
from lora_bakery.extension.tagger.session import load_tagger


class StopAfter(NullProgress):
    """A Progress whose user presses Interrupt once ``limit`` images are done."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def step(self, n: int = 1, text: str | None = None) -> None:
        super().step(n, text)
        if self.done >= self.limit:
            self.interrupt()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _bomb_png(path) -> None:
    """A tiny file whose header claims 20000×20000 pixels (Pillow's decompression-bomb guard)."""
    ihdr = struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
    data += _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + _png_chunk(b"IEND", b"")
    path.write_bytes(data)


def test_colour_tags(colour_images, tiny_v3):
    run = tag_images(list(colour_images.values()), [load_tagger(tiny_v3)])
    captions = {p.stem: tags for p, tags in ((r.path, r.tags) for r in run.results)}
    assert captions["red"][:2] == ["hakurei reimu", "red theme"]
    assert captions["green"][:2] == ["hatsune miku", "green theme"]
    assert captions["blue"][:2] == ["saber (fate)", "blue theme"]
    assert "^_^" in captions["yellow"] and "yellow theme" in captions["yellow"]
    assert "red theme" not in captions["yellow"] and "white background" in captions["white"]
    assert "dark" in captions["black"]
    for tags in captions.values():
        assert "simple background" in tags and "1girl" in tags
    assert [r.path for r in run.results] == list(colour_images.values())  # input order
    assert not run.skipped and not run.interrupted


def test_batched_equals_one_at_a_time(colour_images, tiny_v3):
    tagger = load_tagger(tiny_v3)
    paths = list(colour_images.values())
    batched = tag_images(paths, [tagger], batch_size=4, workers=2)
    single = tag_images(paths, [tagger], batch_size=1, workers=0)
    assert [r.tags for r in batched.results] == [r.tags for r in single.results]
    for a, b in zip(batched.results, single.results):
        assert a.prediction.general == pytest.approx(b.prediction.general, abs=1e-5)


def test_fixed_batch_model_tags_one_at_a_time(colour_images, tiny_v3, tiny_v2_b1):
    paths = list(colour_images.values())
    fixed = tag_images(paths, [load_tagger(tiny_v2_b1)], batch_size=4)
    dynamic = tag_images(paths, [load_tagger(tiny_v3)], batch_size=4)
    assert [r.tags for r in fixed.results] == [r.tags for r in dynamic.results]


def test_union_of_two_taggers(colour_images, tiny_v3, tiny_v2_seed7):
    paths = list(colour_images.values())
    low = Thresholds(general=0.05)
    a, b = load_tagger(tiny_v3, thresholds=low), load_tagger(tiny_v2_seed7, thresholds=low)
    both = tag_images(paths, [a, b]).results
    only_a, only_b = tag_images(paths, [a]).results, tag_images(paths, [b]).results
    differs = False
    for u, x, y in zip(both, only_a, only_b):
        assert set(u.prediction.general) == set(x.prediction.general) | set(y.prediction.general)
        for name, p in u.prediction.general.items():
            assert p == max(x.prediction.general.get(name, 0), y.prediction.general.get(name, 0))
        assert len(u.tags) == len(set(u.tags))
        differs |= set(x.prediction.general) != set(y.prediction.general)
    assert differs  # the two taggers really disagree somewhere


def test_corrupt_files_are_skipped_with_a_reason(tmp_path, colour_images, tiny_v3):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("hello")
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "whole.png")
    data = (tmp_path / "whole.png").read_bytes()
    (tmp_path / "truncated.png").write_bytes(data[: len(data) // 2])
    _bomb_png(tmp_path / "bomb.png")
    bad = [tmp_path / n for n in ("empty.png", "text.jpg", "truncated.png", "bomb.png", "missing.png")]
    paths = [colour_images["red"], *bad, colour_images["blue"]]
    progress = NullProgress()
    run = tag_images(paths, [load_tagger(tiny_v3)], batch_size=2, progress=progress)
    assert [r.path.stem for r in run.results] == ["red", "blue"]
    reasons = dict(run.skipped)
    assert list(reasons) == bad
    assert all(why.startswith("cannot read image") for why in reasons.values())
    assert "DecompressionBomb" in reasons[tmp_path / "bomb.png"]
    assert progress.done == progress.total == len(paths)


def test_interrupt_keeps_what_was_done(tmp_path, tiny_v3):
    paths = []
    for i in range(9):
        paths.append(tmp_path / f"{i}.png")
        Image.new("RGB", (32, 32), (255, 0, 0) if i % 2 else (0, 0, 255)).save(paths[-1])
    progress = StopAfter(4)
    run = tag_images(paths, [load_tagger(tiny_v3)], batch_size=2, workers=2, progress=progress)
    assert run.interrupted
    assert [r.path for r in run.results] == paths[:4]
    assert run.results[1].tags[0] == "hakurei reimu"


def test_rating_and_format_options_reach_the_captions(colour_images, tiny_v3):
    opts = FormatOptions(rating="first", exclude=["simple_background", "1girl"], escape_parentheses=True)
    run = tag_images([colour_images["blue"]], [load_tagger(tiny_v3)], options=opts)
    assert run.results[0].caption == "general, saber \\(fate\\), blue theme"


def test_taggers_with_different_input_sizes(tmp_path, colour_images, tiny_v3):
    """Each image is decoded once and resized for every input size in use."""
    from lora_bakery.extension.tagger.tiny import write_tiny_tagger

    small = load_tagger(write_tiny_tagger(tmp_path / "small", "v2", size=64))
    assert small.size == 64
    paths = list(colour_images.values())
    mixed = tag_images(paths, [load_tagger(tiny_v3), small]).results
    alone = tag_images(paths, [load_tagger(tiny_v3)]).results
    assert [r.tags for r in mixed] == [r.tags for r in alone]  # same weights: same tags
