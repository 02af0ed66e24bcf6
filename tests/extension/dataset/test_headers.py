"""headers.py's fast PNG/JPEG parsers give exactly Pillow's facts, or step aside (None) for Pillow.

Every file is compared through ``read_header`` (fast path first) and ``pillow_header`` (Image.open only).
Runs under Pillow 9.5 (A1111 env) and 10.x (standalone), whose PNG/JPEG plugins differ in places.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from lora_bakery.extension.dataset.headers import fast_facts
from lora_bakery.extension.dataset.scan import pillow_header, read_header

from . import makers as mk


def _chunk(cid: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + cid + data + struct.pack(">I", zlib.crc32(cid + data) & 0xFFFFFFFF)


def _raw_png(w: int, h: int, bits: int, colour: int, extra: bytes = b"", samples: int = 1) -> bytes:
    """A valid PNG with any bit depth / colour type Pillow's encoder will not write (2-bit grey, 16-bit RGB…)."""
    row = b"\x00" + b"\x00" * ((w * bits * samples + 7) // 8)
    ihdr = struct.pack(">IIBBBBB", w, h, bits, colour, 0, 0, 0)
    return (PngImagePlugin._MAGIC + _chunk(b"IHDR", ihdr) + extra + _chunk(b"IDAT", zlib.compress(row * h))
            + _chunk(b"IEND", b""))


def _jpeg_bytes(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", **kw)
    return buf.getvalue()


def _insert_after_soi(jpeg: bytes, segment: bytes) -> bytes:
    return jpeg[:2] + segment + jpeg[2:]


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def _exif(orientation: int) -> bytes:
    ex = Image.Exif()
    ex[0x0112] = orientation
    return ex.tobytes()


def _files(root: Path) -> dict[str, tuple[Path, bool]]:
    """name -> (path, fast path expected to answer)."""
    out: dict[str, tuple[Path, bool]] = {}

    def put(name: str, fast: bool, img: Image.Image | None = None, data: bytes | None = None, **kw) -> None:
        path = root / name
        if data is not None:
            path.write_bytes(data)
        else:
            mk.save(img, path, **kw)
        out[name] = (path, fast)

    rgb = mk.pattern(40, 24)
    # PNG, every mode Pillow writes and a few it only reads
    put("rgb.png", True, rgb)
    put("rgba.png", True, rgb.convert("RGBA"))
    put("l.png", True, rgb.convert("L"))
    put("one.png", True, rgb.convert("1"))
    put("la.png", True, rgb.convert("LA"))
    put("p.png", True, rgb.quantize(16))
    put("p_trns.png", True, rgb.quantize(16), transparency=3)
    put("p_trns_bytes.png", True, rgb.quantize(4), transparency=bytes([0, 128, 255, 255]))
    put("p_4bit.png", True, rgb.quantize(16), bits=4)
    put("l_trns.png", True, rgb.convert("L"), transparency=7)
    put("rgb_trns.png", True, rgb, transparency=(1, 2, 3))
    put("interlaced.png", True, rgb, optimize=False)
    put("dpi_text.png", True, rgb, dpi=(300, 300), pnginfo=_pnginfo("parameters", "a prompt"))
    put("exif_rot.png", True, rgb, exif=_exif(6))
    put("grey2.png", True, data=_raw_png(9, 5, 2, 0))
    put("rgb16.png", True, data=_raw_png(7, 3, 16, 2, samples=3))
    put("rgba16.png", True, data=_raw_png(7, 3, 16, 6, samples=4))
    put("la16.png", True, data=_raw_png(7, 3, 16, 4, samples=2))
    put("private_chunk.png", True, data=_raw_png(5, 5, 8, 2, _chunk(b"prVt", b"hello"), samples=3))
    put("bkgd_time.png", True, data=_raw_png(5, 5, 8, 2, _chunk(b"bKGD", b"\0\1\0\2\0\3") + _chunk(b"tIME", bytes(7)),
                                              samples=3))
    put("i16.png", False, data=_raw_png(6, 4, 16, 0))  # "I" in Pillow 9.5, "I;16" in 10.x
    put("icc.png", False, rgb, icc_profile=b"\0" * 200)
    put("text_exif_key.png", False, rgb, pnginfo=_pnginfo("exif", "not really exif"))
    put("apng.png", False, rgb, save_all=True, append_images=[mk.pattern(40, 24, 1)])
    put("bad_crc.png", False, data=_corrupt_crc(_raw_png(5, 5, 8, 2, samples=3)))
    put("no_ihdr_first.png", False, data=PngImagePlugin._MAGIC + _chunk(b"gAMA", bytes(4)) + _raw_png(5, 5, 8, 2, samples=3)[8:])
    put("short_gama.png", False, data=_raw_png(5, 5, 8, 2, _chunk(b"gAMA", b"\0\0"), samples=3))
    put("bad_bits.png", False, data=_raw_png(5, 5, 3, 2, samples=3))
    put("iend_first.png", False, data=PngImagePlugin._MAGIC + _chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 4, 8, 2, 0, 0, 0))
        + _chunk(b"IEND", b""))
    put("bomb.png", False, data=mk.bomb_png(root / "_bomb_src.png").read_bytes())
    png = (root / "rgb.png").read_bytes()
    put("cut.png", True, data=png[: len(png) - 20])  # IDAT cut: header fine, tail says truncated
    put("header_only.png", False, data=png[:20])
    put("jpeg_named.png", False, data=_jpeg_bytes(rgb))
    # JPEG
    put("rgb.jpg", True, rgb, quality=90)
    put("l.jpg", True, rgb.convert("L"))
    put("cmyk.jpg", True, rgb.convert("CMYK"))
    put("progressive.jpeg", True, rgb, progressive=True)
    put("subsampled.jpg", True, rgb, subsampling=0, quality=95)
    put("exif_rot.jpg", True, rgb, exif=_exif(8))
    put("exif_icc_dpi.jpg", True, rgb, exif=_exif(3), icc_profile=b"\0" * 300, dpi=(72, 72))
    put("comment.jpg", True, data=_insert_after_soi(_jpeg_bytes(rgb), _segment(0xFE, b"made by hand")))
    put("xmp.jpg", True, data=_insert_after_soi(_jpeg_bytes(rgb), _segment(0xE1, b"http://ns.adobe.com/xap/1.0/\0<x/>")))
    put("two_exif.jpg", False, data=_insert_after_soi(_jpeg_bytes(rgb, exif=_exif(6)), _segment(0xE1, b"Exif\0\0" + _exif(3)[6:])))
    put("photoshop.jpg", False, data=_insert_after_soi(_jpeg_bytes(rgb), _segment(0xED, b"Photoshop 3.0\0" + b"8BIM\x04\x04")))
    put("short_jfif.jpg", False, data=_insert_after_soi(_jpeg_bytes(rgb), _segment(0xE0, b"JFIF\0")))
    put("padded.jpg", False, data=_insert_after_soi(_jpeg_bytes(rgb), b"\xff\xff"))
    put("bad_dqt.jpg", False, data=_insert_after_soi(_jpeg_bytes(rgb), _segment(0xDB, b"\0" + bytes(10))))
    put("mpo.jpg", False, rgb, format="MPO", save_all=True, append_images=[mk.pattern(40, 24, 2)])
    jpg = _jpeg_bytes(mk.pattern(256, 256))
    put("cut.jpg", True, data=jpg[: len(jpg) * 2 // 3])
    put("cut_header.jpg", False, data=jpg[:300])
    put("png_named.jpg", False, data=png)
    put("garbage.jpg", False, data=b"\xff\xd8\xff" + bytes(range(256)) * 4)
    return out


def _pnginfo(key: str, value: str) -> PngImagePlugin.PngInfo:
    info = PngImagePlugin.PngInfo()
    info.add_text(key, value)
    return info


def _corrupt_crc(data: bytes) -> bytes:
    # last byte of the IHDR chunk's CRC (8 signature + 4 length + 4 id + 13 data + 4 crc)
    pos = 8 + 4 + 4 + 13 + 3
    return data[:pos] + bytes([data[pos] ^ 0xFF]) + data[pos + 1:]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return _files(tmp_path_factory.mktemp("headers"))


def test_fast_path_equals_pillow_on_every_variant(files):
    for name, (path, _fast) in files.items():
        size = path.stat().st_size
        assert read_header(path, size) == pillow_header(path, size), name


def test_fast_path_answers_the_common_files_and_steps_aside_for_the_rest(files):
    for name, (path, fast) in files.items():
        with open(path, "rb") as f:
            got = fast_facts(f, path.stat().st_size, path.suffix.lower())
        assert (got is not None) == fast, name


def test_sanity_of_a_few_facts(files):
    def facts(name):
        p = files[name][0]
        return read_header(p, p.stat().st_size)
    assert facts("p_trns.png")["alpha"] and not facts("p.png")["alpha"]
    assert facts("rgb16.png")["mode"] == "RGB" and facts("la16.png")["mode"] == "RGBA"
    assert facts("exif_rot.jpg")["orientation"] == 8 and facts("exif_rot.png")["orientation"] == 6
    assert facts("cut.jpg")["truncated"] and facts("cut.png")["truncated"]
    assert facts("cmyk.jpg")["mode"] == "CMYK"
    assert "error" in facts("bad_crc.png") and "error" in facts("garbage.jpg")


def test_fuzzed_headers_agree_with_pillow(files, tmp_path):
    """Flip bytes in the first 300 bytes of valid files: whatever the fast path accepts, Pillow agrees with."""
    rng = random.Random(1234)
    sources = [files[n][0].read_bytes() for n in ("rgb.png", "p_trns.png", "exif_rot.png", "rgb.jpg", "exif_rot.jpg",
                                                     "cmyk.jpg", "progressive.jpeg")]
    answered = 0
    for i in range(400):
        src = sources[i % len(sources)]
        data = bytearray(src)
        for _ in range(rng.randint(1, 3)):
            pos = rng.randrange(2, min(300, len(data)))
            data[pos] = rng.randrange(256)
        ext = ".png" if src.startswith(PngImagePlugin._MAGIC) else ".jpg"
        path = tmp_path / f"fuzz{i}{ext}"
        path.write_bytes(bytes(data))
        size = len(data)
        with open(path, "rb") as f:
            answered += fast_facts(f, size, path.suffix) is not None
        assert read_header(path, size) == pillow_header(path, size), (i, path.name)
    assert answered > 50  # the fuzz reaches the fast path often, not only Pillow's


def test_deep_scan_always_uses_pillow(files):
    path = files["cut.jpg"][0]
    deep = read_header(path, path.stat().st_size, deep=True)
    assert "error" in deep and deep.get("truncated")


def test_bomb_limit_switched_off_still_reads(files, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    path = files["bomb.png"][0]
    facts = read_header(path, path.stat().st_size)
    assert facts["width"] == 100_000 and "bomb" not in facts


def test_random_pixels_make_no_difference(tmp_path):
    rng = np.random.default_rng(0)
    for i, (w, h) in enumerate([(1, 1), (3, 700), (1500, 2)]):
        img = Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
        for ext in (".png", ".jpg"):
            p = mk.save(img, tmp_path / f"r{i}{ext}")
            assert read_header(p, p.stat().st_size) == pillow_header(p, p.stat().st_size)
            assert read_header(p, p.stat().st_size)["width"] == w
