"""Writing a file whole or not at all: a temporary sibling, then ``os.replace``.

Every output of the project (LoRA previews, plots, latent caches, TOML, grids, captions, thumbnails)
goes through :func:`write_via_temp`, so a crash or an interrupt never leaves half a file under the
real name. Temp names are unique per call (threads write side by side) and end in
:data:`TEMP_SUFFIX`, the mark the reg-image resume uses to clear a killed run's leftovers.
Stdlib only: the dataset tools and the installer-free parts use it without torch.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

TEMP_SUFFIX = ".bakery-tmp"


def write_via_temp(path: str | os.PathLike, write: Callable[[BinaryIO], Any], *, fsync: bool = False) -> Path:
    """Create ``path``'s folder, let ``write`` fill a binary stream on a temp sibling, then move it into place.

    Args:
        path (`str | os.PathLike`): the final file.
        write (`Callable[[BinaryIO], Any]`): writes the content (``image.save(stream, format=…)``,
            ``fig.savefig(stream, …)``, ``np.savez(stream, …)``, ``stream.write(data)``).
        fsync (`bool`, defaults to False): flush to disk before the rename (users' own files).

    Returns:
        `Path`: ``path``. On any failure the temp file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}{TEMP_SUFFIX}")
    try:
        with open(tmp, "wb") as stream:
            write(stream)
            if fsync:
                stream.flush()
                os.fsync(stream.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_bytes_atomic(path: str | os.PathLike, data: bytes, *, fsync: bool = False) -> Path:
    return write_via_temp(path, lambda stream: stream.write(data), fsync=fsync)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """UTF-8, ``\\n`` line ends on every platform."""
    return write_via_temp(path, lambda stream: stream.write(text.encode("utf-8")))


def save_png_atomic(image: Any, path: str | os.PathLike) -> Path:
    """A PIL image as PNG."""
    return write_via_temp(path, lambda stream: image.save(stream, format="PNG"))
