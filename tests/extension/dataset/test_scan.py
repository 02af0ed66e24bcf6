"""Scan: header-only facts for every format and mode, problems, captions, folders, cache."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from lora_bakery.extension.dataset import scan as scan_mod
from lora_bakery.extension.dataset.scan import ScanOptions, scan

from . import makers as mk


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("ds")
    c = root / "10_chara"
    mk.save(mk.pattern(64, 48), c / "plain.png")
    (c / "plain.txt").write_text("1girl, solo", encoding="utf-8")
    mk.save(mk.pattern(64, 48), c / "photo.jpg", quality=90)
    (c / "photo.txt").write_bytes("caf\xe9, 1girl".encode("cp1252"))
    mk.save(mk.pattern(30, 20), c / "w.webp")
    (c / "w.txt").write_text("   \n", encoding="utf-8")
    mk.save(mk.pattern(30, 20), c / "b.bmp")
    (c / "b.txt").write_text(", ".join(f"tag{i}" for i in range(300)), encoding="utf-8")
    mk.rgba_png(c / "rgba.png")
    mk.la_png(c / "la.png")
    mk.p_transparent_png(c / "pal.png")
    mk.cmyk_jpeg(c / "cmyk.jpg")
    mk.png16(c / "deep.png")
    mk.animated(c / "anim.gif", "GIF")
    mk.animated(c / "anim2.webp", "WEBP")
    mk.exif_rotated_jpeg(c / "rot.jpg", 40, 20, 6)
    mk.truncated(c / "cut.jpg")
    mk.bomb_png(c / "bomb.png")
    (c / "zero.png").write_bytes(b"")
    (c / "junk.jpg").write_bytes(b"this is not a jpeg")
    (c / "bom.png").write_bytes((c / "plain.png").read_bytes())
    (c / "bom.txt").write_bytes(b"\xef\xbb\xbftrigger, 1girl")
    mk.save(mk.pattern(8, 8), c / "nested" / "lost.png")
    mk.save(mk.pattern(8, 8), root / "plain folder" / "p.png")
    mk.save(mk.pattern(8, 8), root / "0_zero" / "z.png")
    mk.save(mk.pattern(8, 8), root / "stray.png")
    mk.save(mk.pattern(8, 8), root / "5_dup" / "a.png")
    mk.save(mk.pattern(8, 8), root / "5_dup" / "a.jpg")
    return root


def _by_name(result):
    return {im.path.rsplit("/", 1)[-1]: im for _, im in result.images()}


def _codes(im):
    return {p.code for p in im.problems} | {p.code for p in (im.caption.problems if im.caption else [])}


def test_scan_reports_every_format_and_mode(dataset):
    ims = _by_name(scan(dataset, use_cache=False))
    assert (ims["plain.png"].width, ims["plain.png"].height, ims["plain.png"].format) == (64, 48, "PNG")
    assert ims["photo.jpg"].format == "JPEG" and ims["w.webp"].format == "WEBP" and ims["b.bmp"].format == "BMP"
    assert ims["rgba.png"].has_alpha and ims["la.png"].has_alpha and ims["pal.png"].has_alpha
    assert not ims["plain.png"].has_alpha
    assert ims["cmyk.jpg"].mode == "CMYK" and "cmyk" in _codes(ims["cmyk.jpg"])
    assert ims["deep.png"].mode.startswith("I") and "16-bit" in _codes(ims["deep.png"])
    assert ims["anim.gif"].frames == 3 and ims["anim2.webp"].frames == 3 and "animated" in _codes(ims["anim.gif"])
    rot = ims["rot.jpg"]
    assert rot.orientation == 6 and (rot.width, rot.height) == (40, 20) and rot.display_size == (20, 40)
    assert "exif-rotation" in _codes(rot)
    assert {"alpha"} <= _codes(ims["rgba.png"])


def test_bad_files_are_flagged_not_crashed(dataset):
    ims = _by_name(scan(dataset, use_cache=False))
    assert "truncated" in _codes(ims["cut.jpg"])
    assert "bomb" in _codes(ims["bomb.png"]) and not ims["bomb.png"].usable
    assert "zero-byte" in _codes(ims["zero.png"]) and not ims["zero.png"].usable
    assert "unreadable" in _codes(ims["junk.jpg"]) and not ims["junk.jpg"].usable
    assert ims["plain.png"].usable and _codes(ims["plain.png"]) == set()


def test_caption_problems(dataset):
    ims = _by_name(scan(dataset, ScanOptions(max_tags=80), use_cache=False))
    assert "caption-encoding" in _codes(ims["photo.jpg"]) and ims["photo.jpg"].caption.encoding == "cp1252"
    assert "caption-empty" in _codes(ims["w.webp"])
    assert {"caption-huge"} <= _codes(ims["b.bmp"])
    assert "caption-missing" in _codes(ims["rgba.png"])
    assert "caption-bom" in _codes(ims["bom.png"])
    small = _by_name(scan(dataset, ScanOptions(max_caption_bytes=10**6, max_tags=80), use_cache=False))
    assert "caption-many-tags" in _codes(small["b.bmp"])


def test_folder_problems(dataset):
    r = scan(dataset, use_cache=False)
    folders = {f.path: f for f in r.folders}
    assert folders["10_chara"].repeats == 10 and folders["10_chara"].concept == "chara"
    assert any(p.code == "nested" for p in folders["10_chara"].problems)
    assert folders["plain folder"].repeats is None and any("kohya skips" in p.message for p in folders["plain folder"].problems)
    assert any("trains none" in p.message for p in folders["0_zero"].problems)
    assert any(p.code == "root-images" for p in r.problems)
    dup = _by_name(scan(dataset, use_cache=False))
    assert "shared-caption" in _codes(dup["a.png"])
    assert "lost.png" not in dup  # subfolder images are not part of the concept


def test_cache_hit_and_invalidation(dataset):
    cold = scan(dataset)
    warm = scan(dataset)
    assert warm.cache_misses == 0 and warm.cache_hits == cold.cache_hits + cold.cache_misses
    assert [im.path for _, im in warm.images()] == [im.path for _, im in cold.images()]
    assert _by_name(warm)["rot.jpg"].orientation == 6
    data = json.loads(scan_mod.cache_path(dataset).read_text())
    assert data["version"] == scan_mod.CACHE_VERSION
    # change one file: only it is re-read
    p = dataset / "10_chara" / "plain.png"
    mk.save(mk.pattern(80, 40), p)
    again = scan(dataset)
    assert again.cache_misses == 1 and (_by_name(again)["plain.png"].width == 80)


def test_scan_never_decodes_pixels(dataset, monkeypatch):
    def boom(self, *a, **k):
        raise AssertionError("pixels decoded")

    from PIL import ImageFile

    monkeypatch.setattr(Image.Image, "load", boom)  # tripwires: header reads must not need them
    monkeypatch.setattr(ImageFile.ImageFile, "load", boom)
    r = scan(dataset, use_cache=False)
    assert r.image_count > 10
    assert not [p.message for _, im in r.images() for p in im.problems if "pixels decoded" in p.message]


def test_deep_scan_finds_truncated_pixels(tmp_path):
    mk.truncated(tmp_path / "1_a" / "cut.png", "PNG")
    shallow = _by_name(scan(tmp_path, use_cache=False))
    assert "truncated" in _codes(shallow["cut.png"])
    deep = _by_name(scan(tmp_path, ScanOptions(deep=True), use_cache=False))
    assert not deep["cut.png"].usable


def test_missing_root_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a folder"):
        scan(tmp_path / "nope")
