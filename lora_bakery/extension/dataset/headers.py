"""Fast header facts for well-formed PNG and JPEG files, exactly as Pillow would report them.

Why: a cold scan of a 10,000-image dataset spends most of its time inside ``Image.open`` (plugin
dispatch, ``ImageFile`` set-up, JPEG quantisation tables turned into lists, EXIF parsed for DPI). The
scan needs only size, mode, alpha, EXIF orientation and frame count, which sit in the first few
hundred bytes of a PNG or JPEG.

The rule that keeps this honest: these parsers accept only files they fully understand and that Pillow
(9.5 in A1111 1.10, 10.x standalone) opens without complaint; for anything else — an unknown or
version-dependent mode, an APNG, an MPO, an ICC chunk, a bad checksum, a segment beyond the first
64 KiB, a size over Pillow's bomb limit — they return ``None`` and the caller asks Pillow. A test
compares both paths on every format and mode the dataset tests make.
"""

from __future__ import annotations

import re
import struct
import zlib

from PIL import Image, PngImagePlugin

HEAD_BYTES = 65536
FIRST_READ = 4096

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# (bit depth, colour type) -> Pillow mode; only combinations that map the same in Pillow 9.5 and 10.x
# (16-bit grey is "I" in 9.5 and "I;16" in 10.x, so Pillow answers for it).
_PNG_MODES = {
    (1, 0): "1", (2, 0): "L", (4, 0): "L", (8, 0): "L",
    (8, 2): "RGB", (16, 2): "RGB",
    (1, 3): "P", (2, 3): "P", (4, 3): "P", (8, 3): "P",
    (8, 4): "LA", (16, 4): "RGBA",
    (8, 6): "RGBA", (16, 6): "RGBA",
}
# Chunks whose Pillow handler cannot fail for the lengths checked below (min length), or that Pillow
# does not handle at all (read and checksum only).
_PNG_SAFE_MIN_LENGTH = {b"PLTE": 0, b"tRNS": 0, b"gAMA": 4, b"sRGB": 1, b"pHYs": 9, b"tEXt": 0, b"eXIf": 0,
                        b"cHRM": 0}
_IS_CHUNK_ID = re.compile(rb"\w\w\w\w").fullmatch
#: Modes with an alpha band (a "transparency" entry in ``info`` also counts as alpha).
ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})

_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_JPEG_SKIP = {0xC4, 0xCC, 0xDC, 0xDD, 0xDF, 0xFE}  # DHT DAC DNL DRI EXP COM: length + payload, no checks
_JPEG_LAYER_MODES = {1: "L", 3: "RGB", 4: "CMYK"}


def has_alpha(image: Image.Image) -> bool:
    """Whether an open Pillow image carries transparency: an alpha band or a ``transparency`` entry."""
    return image.mode in ALPHA_MODES or "transparency" in image.info


def exif_orientation(raw: bytes) -> int:
    """EXIF orientation tag (1 when absent); raises when Pillow cannot parse the block."""
    ex = Image.Exif()
    ex.load(raw)
    return int(ex.get(0x0112, 1) or 1)


def _pillow_handles(chunk_id: bytes) -> bool:
    return hasattr(PngImagePlugin.PngStream, "chunk_" + chunk_id.decode("ascii"))


def _too_big(width: int, height: int) -> bool:
    limit = Image.MAX_IMAGE_PIXELS
    return limit is not None and width * height > limit


class _Head:
    """The first bytes of an open file: 4 KiB at first (enough for almost every PNG/JPEG header), read
    further only when a segment needs it, never past :data:`HEAD_BYTES`."""

    def __init__(self, f, size: int):
        self.f, self.size = f, size
        self.buf = f.read(min(size, FIRST_READ))

    def get(self, pos: int, n: int) -> bytes | None:
        """``n`` bytes at ``pos``, or None when the file is shorter or the bytes lie beyond the head."""
        end = pos + n
        if end > len(self.buf):
            if end > self.size or end > HEAD_BYTES:
                return None
            self.buf += self.f.read(max(end - len(self.buf), FIRST_READ))
            if end > len(self.buf):  # the file shrank under us
                return None
        return self.buf[pos:end]


def png_facts(head: _Head) -> dict | None:
    """Header facts of a well-formed PNG (see module docstring), or None to let Pillow decide."""
    buf = head.buf
    if buf[:8] != PNG_SIGNATURE:
        return None
    pos, first = 8, True
    mode, width, height, transparent, exif = None, 0, 0, False, None
    while True:
        hdr = head.get(pos, 8)
        if hdr is None:
            return None
        length, cid = struct.unpack(">I", hdr[:4])[0], hdr[4:]
        if not _IS_CHUNK_ID(cid):
            return None
        if cid == b"IDAT":
            break
        data = head.get(pos + 8, length + 4)
        if data is None:
            return None
        body, crc = data[:length], data[length:]
        if zlib.crc32(body, zlib.crc32(cid)) != struct.unpack(">I", crc)[0]:
            return None
        if first:
            if cid != b"IHDR" or length < 13:
                return None
            width, height, bits, colour, _comp, filt, _interlace = struct.unpack(">IIBBBBB", body[:13])
            mode = _PNG_MODES.get((bits, colour))
            if mode is None or filt or width <= 0 or height <= 0:
                return None
            first = False
        elif cid in _PNG_SAFE_MIN_LENGTH:
            if length < _PNG_SAFE_MIN_LENGTH[cid]:
                return None
            if cid == b"tRNS":
                if mode == "P":
                    transparent = True
                elif mode in ("1", "L"):
                    if length < 2:
                        return None
                    transparent = True
                elif mode == "RGB":
                    if length < 6:
                        return None
                    transparent = True
            elif cid == b"eXIf":
                exif = b"Exif\x00\x00" + body
            elif cid == b"tEXt" and body.split(b"\0", 1)[0] == b"exif":
                return None  # Pillow keeps a tEXt "exif" value as EXIF bytes; rare, let Pillow do it
            elif cid == b"cHRM" and length % 4:
                return None
        elif cid == b"IHDR" or _pillow_handles(cid):
            return None  # iCCP, zTXt, iTXt, acTL (APNG), fcTL, fdAT, IEND before IDAT, a second IHDR
        pos += 12 + length
    if first or _too_big(width, height):
        return None
    facts = {"width": width, "height": height, "mode": mode, "format": "PNG",
             "alpha": mode in ALPHA_MODES or transparent, "orientation": 1, "frames": 1}
    if exif is not None and not _add_orientation(facts, exif):
        return None
    return facts


def jpeg_facts(head: _Head) -> dict | None:
    """Header facts of a well-formed single-frame JPEG, or None to let Pillow decide."""
    buf = head.buf
    if buf[:3] != b"\xff\xd8\xff":
        return None
    pos = 2
    mode, width, height, exif = None, 0, 0, None
    while True:
        marker = head.get(pos, 4)
        if marker is None or marker[0] != 0xFF:
            return None  # padding, junk between segments, or the end of the head
        code = marker[1]
        length = struct.unpack(">H", marker[2:])[0]
        if length < 2:
            return None
        n = length - 2
        start = pos + 4
        if code == 0xDA:  # start of scan: Pillow skips its header and stops
            if start + n > head.size:
                return None
            break
        if code in _JPEG_SKIP:
            if start + n > head.size:
                return None
        elif 0xE0 <= code <= 0xEF:
            s = head.get(start, n)
            if s is None:
                return None
            if code == 0xE0 and s[:4] == b"JFIF" and n < 7:
                return None
            if code == 0xE1 and s[:5] == b"Exif\0":
                if exif is not None or s[:6] != b"Exif\0\0":
                    return None  # a second EXIF block: Pillow 9.5 and 10.x disagree
                exif = s
            if code == 0xE2 and (s[:4] == b"MPF\0" or (s[:12] == b"ICC_PROFILE\0" and n < 14)):
                return None  # multi-picture (MPO) or a broken ICC fragment
            if code == 0xED and s[:14] == b"Photoshop 3.0\x00":
                return None  # Pillow parses image resources here and can fail on bad ones
            if code == 0xEE and s[:5] == b"Adobe" and n < 7:
                return None
        elif code == 0xDB:
            s = head.get(start, n)
            if s is None:
                return None
            while s:
                table = 1 + (64 if s[0] < 16 else 128)
                if len(s) < table:
                    return None
                s = s[table:]
        elif code in _JPEG_SOF:
            s = head.get(start, n)
            if s is None or mode is not None or n < 6 or (n - 6) % 3 or s[0] != 8:
                return None
            height, width = struct.unpack(">HH", s[1:5])
            mode = _JPEG_LAYER_MODES.get(s[5])
            if mode is None:
                return None
        else:
            return None  # SOI/EOI/RSTn/JPGn/DHP before the scan: unusual, let Pillow walk it
        pos = start + n
    if mode is None or width <= 0 or height <= 0 or _too_big(width, height):
        return None
    facts = {"width": width, "height": height, "mode": mode, "format": "JPEG", "alpha": False,
             "orientation": 1, "frames": 1}
    if exif is not None and not _add_orientation(facts, exif):
        return None
    return facts


def _add_orientation(facts: dict, raw: bytes) -> bool:
    try:
        facts["orientation"] = exif_orientation(raw)
    except Exception:
        return False
    return True


def fast_facts(f, size: int, ext: str) -> dict | None:
    """Facts for a ``.png``/``.jpg``/``.jpeg`` file opened at offset 0, or None (then ask Pillow)."""
    head = _Head(f, size)
    if ext == ".png":
        return png_facts(head)
    if ext in (".jpg", ".jpeg"):
        return jpeg_facts(head)
    return None
