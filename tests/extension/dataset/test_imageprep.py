"""Image prep plans on real files: convert to PNG, remove alpha, trim, pad — then undo, byte for byte."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from lora_bakery.extension.dataset import imageprep, safety

from . import makers as mk


def _png(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


@pytest.fixture
def root(tmp_path):
    c = tmp_path / "1_a"
    mk.animated(c / "anim.gif", "GIF", 3)
    (c / "anim.txt").write_text("1girl")
    mk.animated(c / "anim2.webp", "WEBP", 2)
    mk.exif_rotated_jpeg(c / "rot.jpg", 40, 20, 6)
    mk.png16(c / "deep.png")
    mk.cmyk_jpeg(c / "cmyk.jpg")
    mk.rgba_png(c / "rgba.png")
    mk.la_png(c / "la.png")
    mk.p_transparent_png(c / "pal.png")
    mk.save(mk.pattern(30, 20), c / "ok.png")
    (c / "zero.png").write_bytes(b"")
    return tmp_path


def test_convert_to_png_frames_rotation_and_undo(root):
    before = mk.tree_digest(root)
    plan = imageprep.plan_convert_to_png(root, [p.relative_to(root) for p in sorted((root / "1_a").iterdir())])
    created = {c.path: c for c in plan.changes if c.kind == "create"}
    assert {"1_a/anim_f000.png", "1_a/anim_f001.png", "1_a/anim_f002.png", "1_a/anim2_f000.png", "1_a/anim2_f001.png",
            "1_a/rot.png", "1_a/cmyk.png"} <= set(created)
    assert created["1_a/anim_f001.txt"].new_bytes == b"1girl"
    assert _png(created["1_a/rot.png"].new_bytes).size == (20, 40)   # orientation 6 applied
    assert _png(created["1_a/cmyk.png"].new_bytes).mode == "RGB"
    writes = {c.path: c for c in plan.changes if c.kind == "write"}
    deep = _png(writes["1_a/deep.png"].new_bytes)
    assert deep.mode == "RGB" and np.asarray(deep).max() > 200   # scaled, not clipped to white everywhere
    assert np.asarray(deep).min() < 10
    skipped = dict(plan.skipped)
    assert skipped["1_a/ok.png"] == "already a PNG" and "cannot read" in skipped["1_a/zero.png"]
    assert plan.thumbnails
    rec = safety.apply(plan, root)
    assert not (root / "1_a" / "anim.gif").exists() and (root / "1_a" / "anim_f002.png").exists()
    safety.undo(rec)
    assert mk.tree_digest(root) == before


def test_convert_never_overwrites_it_picks_a_free_name(root):
    mk.save(mk.pattern(4, 4), root / "1_a" / "rot.png")
    plan = imageprep.plan_convert_to_png(root, ["1_a/rot.jpg"])
    created = [c for c in plan.changes if c.kind == "create"]
    assert [c.path for c in created] == ["1_a/rot_jpg.png"] and "rot.png is taken" in created[0].description
    assert not any(c.path == "1_a/rot.png" for c in plan.changes)


def test_remove_alpha_onto_white_and_colour(root):
    paths = ["1_a/rgba.png", "1_a/la.png", "1_a/pal.png", "1_a/ok.png"]
    plan = imageprep.plan_remove_alpha(root, paths)
    writes = {c.path: _png(c.new_bytes) for c in plan.changes}
    assert set(writes) == {"1_a/rgba.png", "1_a/la.png", "1_a/pal.png"}
    top = np.asarray(writes["1_a/rgba.png"])[0, 0]
    assert writes["1_a/rgba.png"].mode == "RGB" and tuple(top) == (255, 255, 255)  # not the hidden magenta
    red = imageprep.plan_remove_alpha(root, ["1_a/rgba.png"], color=(255, 0, 0))
    assert tuple(np.asarray(_png(red.changes[0].new_bytes))[0, 0]) == (255, 0, 0)
    assert dict(plan.skipped)["1_a/ok.png"] == "no transparency"
    before = mk.tree_digest(root)
    rec = safety.apply(plan, root)
    safety.undo(rec)
    assert mk.tree_digest(root) == before


def test_remove_alpha_on_gif_is_refused_with_a_reason(root):
    plan = imageprep.plan_remove_alpha(root, ["1_a/anim.gif"])
    assert "'convert-png' (Convert to PNG) first" in dict(plan.skipped)["1_a/anim.gif"]  # the operation by name


def _padded(path, pad_color=(250, 250, 250), noise=0):
    inner = np.asarray(mk.pattern(20, 10))
    a = np.zeros((30, 50, 3), np.uint8) + np.array(pad_color, np.uint8)
    if noise:
        a = (a.astype(int) + np.random.default_rng(0).integers(-noise, noise + 1, a.shape)).clip(0, 255).astype(np.uint8)
    a[7:17, 12:32] = inner
    return mk.save(Image.fromarray(a), path)


def test_trim_box_with_fuzz():
    a = np.full((30, 50, 3), 250, np.uint8)
    a[7:17, 12:32] = 0
    box = imageprep.trim_box(Image.fromarray(a), 20)
    assert box == (12, 7, 32, 17)
    a[0:3, 40:50] = 235  # a near-padding blotch: within 20% fuzz, outside 1%
    assert imageprep.trim_box(Image.fromarray(a), 20) == (12, 7, 32, 17)
    assert imageprep.trim_box(Image.fromarray(a), 1) == (12, 0, 50, 17)
    assert imageprep.trim_box(Image.new("RGB", (5, 5), "white"), 20) is None


def test_trim_plan_jpeg_and_png(tmp_path):
    _padded(tmp_path / "1_a" / "p.png", noise=10)
    _padded(tmp_path / "1_a" / "j.jpg")
    mk.save(mk.pattern(30, 20), tmp_path / "1_a" / "full.png")
    plan = imageprep.plan_trim(tmp_path, ["1_a/p.png", "1_a/j.jpg", "1_a/full.png"], fuzz=20)
    sizes = {c.path: _png(c.new_bytes).size for c in plan.changes}
    assert sizes["1_a/p.png"] == (20, 10)
    assert abs(sizes["1_a/j.jpg"][0] - 20) <= 2 and abs(sizes["1_a/j.jpg"][1] - 10) <= 2
    assert dict(plan.skipped)["1_a/full.png"] == "no padding to trim"
    with pytest.raises(ValueError, match="fuzz"):
        imageprep.plan_trim(tmp_path, [], fuzz=150)


def test_pad_square(tmp_path):
    mk.save(mk.pattern(30, 20), tmp_path / "1_a" / "w.png")
    mk.rgba_png(tmp_path / "1_a" / "t.png", 10, 16)
    plan = imageprep.plan_pad_square(tmp_path, ["1_a/w.png", "1_a/t.png"], color=(0, 0, 0))
    out = {c.path: _png(c.new_bytes) for c in plan.changes}
    assert out["1_a/w.png"].size == (30, 30) and tuple(np.asarray(out["1_a/w.png"])[0, 0]) == (0, 0, 0)
    assert out["1_a/t.png"].size == (16, 16) and out["1_a/t.png"].mode == "RGBA"
