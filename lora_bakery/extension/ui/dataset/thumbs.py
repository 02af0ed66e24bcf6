"""Thumbnails for the Dataset tab, cached on disk by (path, mtime, size).

The caption gallery shows pages of 48 images; decoding a full-size image for every page view
would make 2,000-image datasets sluggish, so each image is decoded once into a small PNG under the
system temp folder (which gradio 3 and 4 both serve) and reused until the file changes. A page's
thumbnails are made on a few threads, and the next page's are made in the background while the
user looks at this one.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from pathlib import Path

from lora_bakery.extension.dataset.safety import atomic_write_bytes

#: Longest side of a gallery thumbnail.
SIZE = 256


def cache_dir() -> Path:
    """``$TMPDIR/lora-bakery-thumbs`` (created)."""
    path = Path(tempfile.gettempdir()) / "lora-bakery-thumbs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def thumbnail(path: str | os.PathLike, size: int = SIZE) -> str | None:
    """A cached PNG thumbnail of ``path`` (EXIF rotation applied, alpha kept), or ``None`` if unreadable.

    Args:
        path (`str | os.PathLike`): the image.
        size (`int`, *optional*, defaults to 256): longest side.

    Returns:
        `str | None`: the thumbnail file.
    """
    try:
        st = os.stat(path)
    except OSError:
        return None
    key = hashlib.sha1(f"{os.path.abspath(path)}|{st.st_mtime_ns}|{st.st_size}|{size}".encode()).hexdigest()
    target = cache_dir() / f"{key}.png"
    if target.is_file():
        return str(target)
    try:
        from PIL import Image, ImageOps

        with Image.open(path) as im:
            im.draft("RGB", (size, size))  # JPEG: decode at a reduced scale
            img = ImageOps.exif_transpose(im)
            img = img.convert("RGBA" if "A" in img.getbands() or "transparency" in img.info else "RGB")
            img.thumbnail((size, size))
            buf = io.BytesIO()
            img.save(buf, format="PNG", compress_level=1)
    except Exception:  # noqa: BLE001 - a broken image gets no thumbnail, never an error
        return None
    atomic_write_bytes(target, buf.getvalue())
    return str(target)


def from_bytes(data: bytes | None) -> str | None:
    """Store PNG bytes (a plan's before/after thumbnail) in the cache; returns the file or ``None``."""
    if not data:
        return None
    target = cache_dir() / f"b-{hashlib.sha1(data).hexdigest()}.png"
    if not target.is_file():
        atomic_write_bytes(target, data)
    return str(target)


def from_image(image) -> str:
    """Store a PIL image (a preview made in memory) in the cache as PNG; returns the file."""
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=1)
    return from_bytes(buf.getvalue()) or ""


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    """A small shared pool: Pillow decodes and resizes with the GIL released, so a page of thumbnails
    made on 2-4 threads arrives about that many times sooner."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=max(2, min(4, os.cpu_count() or 2)),
                                       thread_name_prefix="lora-bakery-thumbs")
        return _POOL


def thumbnails(paths: list[str | os.PathLike], size: int = SIZE) -> list[str | None]:
    """:func:`thumbnail` of every path, made in parallel, in order."""
    return list(_pool().map(lambda p: thumbnail(p, size), paths))


_PENDING: set[Future] = set()


def prefetch(paths: list[str | os.PathLike], size: int = SIZE) -> None:
    """Start making thumbnails in the background (the next page), returning at once."""
    pool = _pool()
    for p in paths:
        fut = pool.submit(thumbnail, p, size)
        with _POOL_LOCK:
            _PENDING.add(fut)
        fut.add_done_callback(_forget)


def _forget(fut: Future) -> None:
    with _POOL_LOCK:
        _PENDING.discard(fut)


def wait_prefetched(timeout: float | None = None) -> None:
    """Block until background thumbnails are made (benchmarks and tests time pages without them)."""
    with _POOL_LOCK:
        pending = list(_PENDING)
    futures_wait(pending, timeout=timeout)
