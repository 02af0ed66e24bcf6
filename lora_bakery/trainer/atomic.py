"""Writing a file whole or not at all: a temporary sibling, then ``os.replace``.

Every output of the project (LoRA previews, plots, latent caches, TOML, grids, captions, thumbnails)
goes through :func:`write_via_temp`, so a crash or an interrupt never leaves half a file under the
real name. Temp names are unique per call (threads write side by side) and end in
:data:`TEMP_SUFFIX`, the mark the reg-image resume uses to clear a killed run's leftovers.
Stdlib only: the dataset tools and the installer-free parts use it without torch.

File modes: a new file gets the mode any program's ``open()`` gives it (``0o666`` less the umask,
``0o644`` under the usual ``022``), so other users and the webui's own processes can read it as they
read every other output; a file that is replaced keeps the mode it had (a caption the user made
private stays private, a group-writable image stays group-writable). :func:`new_file_mode` tells
writers that must create through ``mkstemp`` (``0o600``) which mode to give their file instead.
"""

from __future__ import annotations

import os
import stat
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

TEMP_SUFFIX = ".bakery-tmp"


def _umask() -> int:
    """The process umask, read without changing it where Linux shows it (``/proc/self/status``)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore at once (the only portable way to read it)
    os.umask(mask)
    return mask


def new_file_mode() -> int:
    """The permission bits ``open()`` gives a new file here: ``0o666`` less the umask (``0o644`` under ``022``)."""
    return 0o666 & ~_umask()


def target_mode(path: str | os.PathLike) -> int:
    """The mode a file written to ``path`` should have: the replaced file's own, else :func:`new_file_mode`."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return new_file_mode()


def write_via_temp(path: str | os.PathLike, write: Callable[[BinaryIO], Any], *, fsync: bool = False) -> Path:
    """Create ``path``'s folder, let ``write`` fill a binary stream on a temp sibling, then move it into place.

    Args:
        path (`str | os.PathLike`): the final file.
        write (`Callable[[BinaryIO], Any]`): writes the content (``image.save(stream, format=…)``,
            ``fig.savefig(stream, …)``, ``np.savez(stream, …)``, ``stream.write(data)``).
        fsync (`bool`, defaults to False): flush to disk before the rename (users' own files).

    Returns:
        `Path`: ``path``, with the replaced file's mode or, for a new file, the umask-derived one.
        On any failure the temp file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}{TEMP_SUFFIX}")
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode) if os.path.isfile(path) else None
        with open(tmp, "wb") as stream:
            write(stream)
            if fsync:
                stream.flush()
                os.fsync(stream.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
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
