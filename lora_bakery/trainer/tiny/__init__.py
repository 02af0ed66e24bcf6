"""Tiny deterministic SD1.5 / SDXL checkpoints for tests, benchmarks and the standalone demo.

``tiny_checkpoint("sd15")`` writes (once) a single-file ``.safetensors`` in original key layout with
CLIP tokenizer folders beside it, exactly the shape of what a user's checkpoint folder holds, only
small: a few MB, built in about a second, no network.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import tempfile
from pathlib import Path
from typing import Literal

from .tokenizer import write_tokenizer
from .weights import ARCHITECTURES, tiny_configs, tiny_state_dict

TINY_VERSION = "v1"

__all__ = [
    "ARCHITECTURES",
    "TINY_VERSION",
    "default_cache_root",
    "tiny_checkpoint",
    "tiny_configs",
    "tiny_state_dict",
]


def default_cache_root() -> Path:
    """``$BAKERY_CACHE``, else ``~/.cache/lora-bakery``."""
    env = os.environ.get("BAKERY_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "lora-bakery"


def _serialise(state: dict, metadata: dict[str, str]) -> bytes:
    """safetensors bytes with the metadata keys in sorted order.

    safetensors 0.4.2 (A1111's pin) writes ``__metadata__`` in hash-map order, which changes from
    process to process; the JSON header is rewritten sorted (same length) so the file is byte-stable.
    """
    from safetensors.torch import save

    data = save(state, metadata=metadata)
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, separators=(",", ":")).encode()
    if len(text) > length:  # never expected: keep the library's own bytes
        return data
    return data[:8] + text.ljust(length, b" ") + data[8 + length :]


def _write(folder: Path, arch: str) -> None:
    metadata = {"bakery_tiny": TINY_VERSION, "arch": arch}
    (folder / f"tiny-{arch}.safetensors").write_bytes(_serialise(tiny_state_dict(arch), metadata))
    write_tokenizer(folder / "tokenizer")
    if arch == "sdxl":
        write_tokenizer(folder / "tokenizer_2", pad_token="!")  # SDXL's OpenCLIP tokenizer pads with "!"


def tiny_checkpoint(arch: Literal["sd15", "sdxl"], cache_dir: Path | None = None) -> Path:
    """The path of a tiny single-file checkpoint, written on first use.

    The folder ``<root>/tiny/v1/<arch>/`` holds ``tiny-<arch>.safetensors`` (metadata
    ``{"bakery_tiny": "v1", "arch": arch}``), ``tokenizer/`` and, for SDXL, ``tokenizer_2/``.
    It is built in a temporary sibling folder and renamed into place, so concurrent callers
    (pytest workers, two processes) never see a partial file; the loser of the race keeps the winner's.

    Args:
        arch (`str`): ``"sd15"`` or ``"sdxl"``.
        cache_dir (`Path`, *optional*): root folder; defaults to :func:`default_cache_root`.

    Returns:
        `Path`: the ``.safetensors`` file.
    """
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown tiny architecture {arch!r}; expected one of {sorted(ARCHITECTURES)}")
    folder = Path(cache_dir or default_cache_root()) / "tiny" / TINY_VERSION / arch
    target = folder / f"tiny-{arch}.safetensors"
    if target.is_file():
        return target
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{arch}-", dir=folder.parent))
    try:
        os.chmod(staging, 0o755)  # mkdtemp makes it private; the cache is not
        _write(staging, arch)
        try:
            os.replace(staging, folder)
        except OSError:
            if not target.is_file():  # not a lost race: a broken leftover folder
                raise RuntimeError(f"{folder} exists but holds no {target.name}; delete the folder") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
