"""Real image and caption files for the dataset tests (every format and mode the tools must handle)."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def pattern(w: int, h: int, seed: int = 0) -> Image.Image:
    """A deterministic RGB image with structure (gradients + blocks), so hashes and trims are meaningful."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    a = np.stack([(x * 255 // max(w - 1, 1)), (y * 255 // max(h - 1, 1)), ((x // 8 + y // 8) % 2) * 200], -1)
    a = (a + rng.integers(0, 40, size=3)).clip(0, 255).astype(np.uint8)
    return Image.fromarray(a, "RGB")


def save(img: Image.Image, path: Path, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, **kw)
    return path


def exif_rotated_jpeg(path: Path, w: int = 40, h: int = 20, orientation: int = 6) -> Path:
    ex = Image.Exif()
    ex[0x0112] = orientation
    return save(pattern(w, h), path, format="JPEG", exif=ex.tobytes(), quality=95)


def rgba_png(path: Path, w: int = 32, h: int = 32) -> Path:
    im = pattern(w, h).convert("RGBA")
    a = np.array(im)
    a[: h // 2, :, 3] = 0
    a[: h // 2, :, :3] = (255, 0, 255)  # magenta hidden under the alpha
    return save(Image.fromarray(a, "RGBA"), path)


def la_png(path: Path) -> Path:
    a = np.zeros((16, 16, 2), np.uint8)
    a[..., 0] = 100
    a[4:12, 4:12, 1] = 255
    return save(Image.fromarray(a, "LA"), path)


def p_transparent_png(path: Path) -> Path:
    im = pattern(16, 16).quantize(8)
    im.info["transparency"] = 0
    return save(im, path, transparency=0)


def cmyk_jpeg(path: Path) -> Path:
    return save(pattern(24, 16).convert("CMYK"), path, format="JPEG")


def png16(path: Path) -> Path:
    a = (np.arange(16 * 16, dtype=np.uint16).reshape(16, 16) * 256).astype(np.uint16)
    return save(Image.fromarray(a, "I;16"), path)


def animated(path: Path, fmt: str, n: int = 3) -> Path:
    frames = [pattern(20, 20, seed=i) for i in range(n)]
    if fmt == "GIF":
        frames = [f.convert("P") for f in frames]
    kw = {"lossless": True} if fmt == "WEBP" else {}
    path.parent.mkdir(parents=True, exist_ok=True)
    frames[0].save(path, format=fmt, save_all=True, append_images=frames[1:], duration=100, loop=0, **kw)
    return path


def bomb_png(path: Path, w: int = 100_000, h: int = 100_000) -> Path:
    """A tiny PNG whose header claims w×h pixels (Pillow refuses to open it: decompression bomb)."""
    def chunk(t: bytes, d: bytes) -> bytes:
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 10)) + chunk(b"IEND", b"")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def truncated(path: Path, fmt: str = "JPEG") -> Path:
    buf = io.BytesIO()
    pattern(64, 64).save(buf, format=fmt)
    data = buf.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data[: len(data) * 2 // 3])
    return path


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` except LoRA Bakery's own ``.bakery`` folder."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and ".bakery" not in p.relative_to(root).parts:
            out[p.relative_to(root).as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out
