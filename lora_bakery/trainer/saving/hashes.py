"""The hashes kohya writes into LoRA metadata and A1111 shows, computed exactly as they do.

Sources: sd-scripts ``library/train_util.py`` (``precalculate_safetensors_hashes``,
``addnet_hash_safetensors``, ``addnet_hash_legacy``, ``model_hash``, ``calculate_sha256``);
reference/kohya-trainer.md §3.

- ``sshs_model_hash``: sha256 of the tensor-data part of the safetensors bytes (everything after
  the 8-byte header length and the JSON header). A1111 uses this "addnet" hash as the LoRA hash.
- ``sshs_legacy_hash``: sha256 of 64 KiB at offset 0x100000 of the bytes, first 8 hex digits.
- kohya hashes an in-memory serialisation holding only the ``ss_*`` metadata, so editing user
  metadata later does not change them.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

import torch

LEGACY_OFFSET = 0x100000
LEGACY_LENGTH = 0x10000
_BLOCK = 1024 * 1024


def addnet_hash_safetensors(stream: BinaryIO) -> str:
    """sha256 (hex) of the tensor-data part of a safetensors stream (kohya ``addnet_hash_safetensors``)."""
    digest = hashlib.sha256()
    stream.seek(0)
    header_length = int.from_bytes(stream.read(8), "little")
    stream.seek(8 + header_length)
    for chunk in iter(lambda: stream.read(_BLOCK), b""):
        digest.update(chunk)
    return digest.hexdigest()


def addnet_hash_legacy(stream: BinaryIO) -> str:
    """First 8 hex digits of sha256 of 64 KiB at 1 MiB (kohya ``addnet_hash_legacy``; empty read for small files)."""
    stream.seek(LEGACY_OFFSET)
    return hashlib.sha256(stream.read(LEGACY_LENGTH)).hexdigest()[:8]


def precalculate_safetensors_hashes(
    tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str]
) -> tuple[str, str]:
    """``(sshs_model_hash, sshs_legacy_hash)`` as kohya computes them before saving.

    Args:
        tensors (`Mapping[str, torch.Tensor]`): exactly the tensors that will be saved (after the precision cast).
        metadata (`Mapping[str, str]`): the file metadata; only ``ss_*`` keys take part.

    Returns:
        `tuple[str, str]`: full sha256 hex, and 8 hex digits.
    """
    from safetensors.torch import save

    training_only = {k: v for k, v in metadata.items() if k.startswith("ss_")}
    stream = io.BytesIO(save(dict(tensors), training_only))
    return addnet_hash_safetensors(stream), addnet_hash_legacy(stream)


def file_addnet_hash(path: str | Path) -> str:
    """The addnet hash of a safetensors file on disk (what A1111 computes when metadata has none)."""
    with open(path, "rb") as stream:
        return addnet_hash_safetensors(stream)


def model_hash(path: str | Path) -> str:
    """A1111's old checkpoint hash: sha256 of 64 KiB at 1 MiB, first 8 hex digits (kohya ``model_hash``)."""
    with open(path, "rb") as stream:
        return addnet_hash_legacy(stream)


def calculate_sha256(path: str | Path) -> str:
    """Full-file sha256 (kohya ``calculate_sha256``; A1111's new model hash is its first 10 digits)."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(_BLOCK), b""):
            digest.update(chunk)
    return digest.hexdigest()
